//! Arrivals and departures from successive listings of the queue.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::{QueuedMessage, recipient_domain};

/// What [`QueueFlow::observe`] saw change since the previous observation.
#[derive(Debug, Clone, PartialEq)]
pub enum Flow {
    /// The first observation: there is nothing to compare with yet. Not the
    /// same as "nothing arrived and nothing left".
    NotMeasuredYet,
    Measured(FlowStep),
}

/// Messages that entered and left the queue between two observations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowStep {
    /// Messages queued now under a queue id that was not queued before (or
    /// was, for a message with another arrival time).
    pub arrived: u64,
    /// `arrived` per recipient domain (a message to two domains counts for
    /// each, as in [`per_domain`]).
    pub arrived_per_domain: BTreeMap<String, u64>,
    /// Messages gone from the queue: absent from this observation and the
    /// one before (see [`QueueFlow`] for why two), or replaced under their
    /// queue id by another message. Delivered, bounced, expired or deleted:
    /// the queue does not say which.
    pub left: u64,
    /// `left` per recipient domain, from the recipients still queued when
    /// the message was last seen.
    pub left_per_domain: BTreeMap<String, u64>,
    /// Messages absent from this observation only: counted in `left` at the
    /// next observation if still absent, forgotten if they show again.
    pub missing: u64,
    /// Seconds since the previous observation; 0 when the clock went back.
    pub seconds: f64,
}

/// What the tracker remembers of one queued message.
#[derive(Debug, Clone)]
pub(super) struct Tracked {
    arrival_time: Option<DateTime<Utc>>,
    domains: BTreeSet<String>,
}

impl Tracked {
    fn of(m: &QueuedMessage) -> Self {
        Tracked {
            arrival_time: m.arrival_time,
            domains: m
                .recipients
                .iter()
                .filter_map(|r| recipient_domain(&r.address))
                .collect(),
        }
    }

    /// Whether `other`, seen under the same queue id, is the same message: a
    /// message keeps its arrival time; an unknown one is given the benefit
    /// of the doubt.
    fn same_message(&self, other: &Tracked) -> bool {
        match (self.arrival_time, other.arrival_time) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

pub(super) fn add_domains(to: &mut BTreeMap<String, u64>, domains: &BTreeSet<String>) {
    for d in domains {
        *to.entry(d.clone()).or_insert(0) += 1;
    }
}

/// Arrivals and departures of the queue, from successive `postqueue -j`
/// snapshots fed to [`QueueFlow::observe`]. A message is known by its queue
/// id and arrival time; moving between the incoming, active, deferred and
/// hold queues keeps both, so it is no flow.
///
/// What it cannot see:
/// - A message that arrives and leaves between two observations is counted
///   neither way; the rates are those of messages that stayed at least one
///   poll.
/// - The `maildrop` queue is left out: it holds local submissions (and all
///   of them while Postfix is down) under file names that pickup replaces by
///   new queue ids, so counting it would count every such message as having
///   left maildrop and arrived again. A message arrives when it is in the
///   queue proper.
/// - `postqueue` scans maildrop, incoming, active, deferred, hold in turn, so
///   a message moving to an earlier queue during the scan (deferred → active
///   at a queue run, hold → deferred on release) is missing from that one
///   snapshot, and one moving to a later queue may be listed twice (counted
///   once here). So a message is counted as left only when it is absent from
///   two observations in a row: departures are reported one poll late.
/// - Queue ids repeat. With `enable_long_queue_ids = no` (the default) an id
///   is 5 hex digits of the microsecond of creation plus the queue file's
///   inode number; inodes are reused as soon as files are deleted, so a
///   later message can get the id of one that left when the microseconds
///   match too (about 1 in 10^6 per reused inode). That is harmless unless it
///   happens between two observations; then the arrival time tells the two
///   apart when Postfix reports it. Long ids (seconds, microseconds, inode)
///   do not repeat. Changing the setting renames queued files (new ids: each
///   counts as left and arrived), as does `postsuper -r` (requeue).
/// - "Left" is not "delivered": bounced, expired and deleted messages leave
///   too, and a bounce notice arrives as a new message (null sender). A
///   message delivered to some recipients stays queued for the others and
///   does not count as left.
///
/// Memory: the ids (with their recipient domains) of the last snapshot and
/// of those missing from it only, so bounded by the queue size.
#[derive(Debug, Clone, Default)]
pub struct QueueFlow {
    last_at: Option<DateTime<Utc>>,
    /// In the last observation.
    queued: HashMap<String, Tracked>,
    /// In the one before, not in the last.
    missing: HashMap<String, Tracked>,
}

impl QueueFlow {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many messages it remembers (at most the last two queue sizes).
    pub fn tracked(&self) -> usize {
        self.queued.len() + self.missing.len()
    }

    /// Compares `msgs`, the queue as polled at `at`, with the previous
    /// observation. The first observation gives [`Flow::NotMeasuredYet`].
    pub fn observe(&mut self, at: DateTime<Utc>, msgs: &[QueuedMessage]) -> Flow {
        let mut now: HashMap<String, Tracked> = HashMap::with_capacity(msgs.len());
        for m in msgs.iter().filter(|m| m.queue_name != "maildrop") {
            now.entry(m.queue_id.clone())
                .or_insert_with(|| Tracked::of(m));
        }
        let Some(last_at) = self.last_at.replace(at) else {
            self.queued = now;
            self.missing.clear();
            return Flow::NotMeasuredYet;
        };

        let mut step = FlowStep {
            seconds: ((at - last_at).num_milliseconds().max(0) as f64) / 1000.0,
            ..FlowStep::default()
        };
        let mut queued = std::mem::take(&mut self.queued);
        let mut missing = std::mem::take(&mut self.missing);
        for (id, seen) in &now {
            let before = queued.remove(id).or_else(|| missing.remove(id));
            match before {
                Some(old) if old.same_message(seen) => {}
                Some(old) => {
                    step.left += 1;
                    add_domains(&mut step.left_per_domain, &old.domains);
                    step.arrived += 1;
                    add_domains(&mut step.arrived_per_domain, &seen.domains);
                }
                None => {
                    step.arrived += 1;
                    add_domains(&mut step.arrived_per_domain, &seen.domains);
                }
            }
        }
        // Missing twice in a row: gone.
        for old in missing.values() {
            step.left += 1;
            add_domains(&mut step.left_per_domain, &old.domains);
        }
        // Missing once (what is left of the previous snapshot).
        step.missing = queued.len() as u64;
        self.missing = queued;
        self.queued = now;
        Flow::Measured(step)
    }
}
#[cfg(test)]
mod tests {
    use super::super::tests::msg;
    use super::*;
    fn queued(queue: &str, id: &str, arrival: i64, rcpts: &[&str]) -> QueuedMessage {
        QueuedMessage {
            queue_id: id.into(),
            arrival_time: DateTime::from_timestamp(arrival, 0),
            ..msg(queue, rcpts)
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_985_000 + secs, 0).unwrap_or_default()
    }

    fn step(flow: Flow) -> FlowStep {
        match flow {
            Flow::Measured(step) => step,
            Flow::NotMeasuredYet => panic!("expected a measured step"),
        }
    }

    fn per(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(d, n)| (d.to_string(), *n)).collect()
    }

    #[test]
    fn flow_is_not_measured_on_the_first_observation() {
        let mut f = QueueFlow::new();
        let full = vec![queued("deferred", "A", 1, &["a@acme.test"])];
        assert_eq!(f.observe(at(0), &full), Flow::NotMeasuredYet);
        let mut g = QueueFlow::new();
        assert_eq!(g.observe(at(0), &[]), Flow::NotMeasuredYet);
        // The second one is measured, even when nothing changed.
        let s = step(g.observe(at(5), &[]));
        assert_eq!((s.arrived, s.left, s.missing, s.seconds), (0, 0, 0, 5.0));
    }

    #[test]
    fn flow_counts_arrivals_per_domain_and_ignores_moves_between_queues() {
        let mut f = QueueFlow::new();
        f.observe(at(0), &[queued("deferred", "A", 1, &["a@acme.test"])]);
        let s = step(f.observe(
            at(10),
            &[
                queued("hold", "A", 1, &["a@acme.test"]),
                queued("incoming", "B", 2, &["b@acme.test", "c@Globex.test"]),
                queued("active", "C", 3, &["d@globex.test"]),
                // Listed twice by a scan that raced a move: one message.
                queued("deferred", "C", 3, &["d@globex.test"]),
                // Waiting for pickup: not in the queue proper yet.
                queued("maildrop", "D", 4, &["e@acme.test"]),
            ],
        ));
        assert_eq!(s.arrived, 2);
        assert_eq!(
            s.arrived_per_domain,
            per(&[("acme.test", 1), ("globex.test", 2)])
        );
        assert_eq!((s.left, s.missing, s.seconds), (0, 0, 10.0));
        assert!(s.left_per_domain.is_empty());
    }

    #[test]
    fn flow_counts_a_departure_once_it_is_absent_twice() {
        let mut f = QueueFlow::new();
        let a = queued("deferred", "A", 1, &["a@acme.test", "x@globex.test"]);
        let b = queued("deferred", "B", 2, &["b@acme.test"]);
        let c = queued("deferred", "C", 3, &["c@initech.test"]);
        f.observe(at(0), &[a.clone(), b.clone(), c.clone()]);
        // A and B gone from this snapshot: not yet counted.
        let s = step(f.observe(at(5), std::slice::from_ref(&c)));
        assert_eq!((s.arrived, s.left, s.missing), (0, 0, 2));
        // Still gone: they left.
        let s = step(f.observe(at(10), std::slice::from_ref(&c)));
        assert_eq!((s.arrived, s.left, s.missing), (0, 2, 0));
        assert_eq!(
            s.left_per_domain,
            per(&[("acme.test", 2), ("globex.test", 1)])
        );
        assert_eq!(f.tracked(), 1, "memory follows the queue");
    }

    #[test]
    fn flow_forgives_a_message_missing_from_one_scan() {
        let mut f = QueueFlow::new();
        let a = queued("deferred", "A", 1, &["a@acme.test"]);
        let b = queued("deferred", "B", 2, &["b@acme.test"]);
        f.observe(at(0), &[a.clone(), b.clone()]);
        // A moved deferred → active while the scan was between the two.
        let s = step(f.observe(at(5), std::slice::from_ref(&b)));
        assert_eq!(s.missing, 1);
        let a_active = QueuedMessage {
            queue_name: "active".into(),
            ..a
        };
        let s = step(f.observe(at(10), &[a_active, b]));
        assert_eq!((s.arrived, s.left, s.missing), (0, 0, 0));
    }

    #[test]
    fn flow_tells_a_reused_queue_id_from_the_message_that_had_it() {
        let mut f = QueueFlow::new();
        let old = queued("deferred", "4C55C9D4159", 100, &["a@acme.test"]);
        f.observe(at(0), std::slice::from_ref(&old));
        f.observe(at(5), &[]);
        let s = step(f.observe(at(10), &[]));
        assert_eq!(s.left, 1);
        // Later another message gets the same queue id: it arrived.
        let new = queued("incoming", "4C55C9D4159", 200, &["b@globex.test"]);
        let s = step(f.observe(at(15), std::slice::from_ref(&new)));
        assert_eq!((s.arrived, s.left), (1, 0));
        assert_eq!(s.arrived_per_domain, per(&[("globex.test", 1)]));

        // Reused between two observations: the arrival time tells.
        let newer = queued("incoming", "4C55C9D4159", 300, &["c@initech.test"]);
        let s = step(f.observe(at(20), std::slice::from_ref(&newer)));
        assert_eq!((s.arrived, s.left, s.missing), (1, 1, 0));
        assert_eq!(s.left_per_domain, per(&[("globex.test", 1)]));
        assert_eq!(s.arrived_per_domain, per(&[("initech.test", 1)]));

        // Missing once, then back as another message: the old one left.
        f.observe(at(25), &[]);
        let other = queued("incoming", "4C55C9D4159", 400, &["d@acme.test"]);
        let s = step(f.observe(at(30), std::slice::from_ref(&other)));
        assert_eq!((s.arrived, s.left, s.missing), (1, 1, 0));
        assert_eq!(s.left_per_domain, per(&[("initech.test", 1)]));

        // Without arrival times the same id is taken for the same message.
        let unknown = QueuedMessage {
            arrival_time: None,
            ..other
        };
        let s = step(f.observe(at(35), &[unknown]));
        assert_eq!((s.arrived, s.left), (0, 0));
    }

    #[test]
    fn flow_seconds_never_go_negative() {
        let mut f = QueueFlow::new();
        f.observe(at(100), &[]);
        assert_eq!(step(f.observe(at(40), &[])).seconds, 0.0);
        assert_eq!(step(f.observe(at(41), &[])).seconds, 1.0);
    }

    #[test]
    fn flow_memory_is_bounded_by_the_queue() {
        let mut f = QueueFlow::new();
        let mut left = 0;
        for round in 0..50_i64 {
            // 1000 new messages every round; last round's are gone.
            let msgs: Vec<QueuedMessage> = (0..1000)
                .map(|i| queued("deferred", &format!("{round}-{i}"), round, &["a@acme.test"]))
                .collect();
            if let Flow::Measured(s) = f.observe(at(round), &msgs) {
                assert_eq!(s.arrived, 1000);
                left += s.left;
            }
            assert!(f.tracked() <= 2000, "{}", f.tracked());
        }
        assert_eq!(
            left,
            48 * 1000,
            "all but the last two rounds confirmed gone"
        );
    }
}
