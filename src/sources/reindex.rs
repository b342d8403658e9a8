//! The reindex executor behind the gateway's scheduler: repairs a queue of
//! mailboxes (one user each) in the order the caller gives, with bounded
//! concurrency that backs off when Dovecot slows down or fails, and that
//! waits out a Dovecot outage without losing or reordering work.
//!
//! * Order: repairs *start* in queue order. In-flight repairs are polled
//!   from one task (a `FuturesUnordered`, first polled in push order), so a
//!   [`Repairer`] sees its calls in queue order even with concurrency > 1.
//! * Back-off (AIMD): the limit starts at `max_concurrency`; a repair slower
//!   than `slow`, or an error, halves it (never below 1) — at most once per
//!   "generation", so the repairs already in flight when Dovecot slowed down
//!   do not halve it again each; after as many fast successes in a row as
//!   the current limit, it grows by one, up to `max_concurrency`.
//! * Outage ([`DoveError::is_outage`]: unreachable, time-out, refused
//!   credentials, HTTP 5xx): the mailbox goes back to its place at the head
//!   of the queue, dispatching pauses for `retry_after`, the limit drops to
//!   1 (the next call is a probe), and retrying goes on until Dovecot
//!   answers. Nothing is skipped.
//! * Retryable failures ([`DoveError::is_retryable`]: exit code 75, which
//!   Dovecot returns while rebuilding a corrupted log and also for calls
//!   caught by its shutdown, or a doveadm process that died mid-call) put
//!   the mailbox back in place and pause for `retry_after`, up to
//!   [`MAX_ATTEMPTS`] tries (an outage error in between starts the count
//!   again); other errors (unknown user, ...) mark the mailbox failed and
//!   the work goes on.
//!
//! What repairs a mailbox: on Dovecot 2.3 a stale index (docs/dovecot-damage.md) (a message
//! file added behind Dovecot's back) survives `index` and is fixed by
//! `forceResync`; so [`Doveadm`]'s repair is `forceResync` (fsck) of all
//! the user's mailboxes, then `index` (queued) to rebuild caches.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::Notify;

use super::dovecot::{DoveError, Doveadm};

/// How many times a mailbox is tried after retryable failures before it is
/// reported failed. Outages do not count.
pub const MAX_ATTEMPTS: u32 = 3;

/// Repairs one user's mailboxes; answers how long it took (the latency the
/// executor's back-off reacts to).
#[async_trait::async_trait]
pub trait Repairer: Send + Sync {
    async fn repair(&self, user: &str) -> Result<Duration, DoveError>;
}

/// `forceResync` (fsck) of every mailbox of the user, then `index` queued.
#[async_trait::async_trait]
impl Repairer for Doveadm {
    async fn repair(&self, user: &str) -> Result<Duration, DoveError> {
        let started = Instant::now();
        self.force_resync(user, "*").await?;
        self.index(user, "*").await?;
        Ok(started.elapsed())
    }
}

/// The executor's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Repairs in flight at most (and at the start); 0 counts as 1.
    pub max_concurrency: usize,
    /// A repair slower than this halves the concurrency.
    pub slow: Duration,
    /// How long to pause dispatching after an outage error.
    pub retry_after: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_concurrency: 4,
            slow: Duration::from_secs(2),
            retry_after: Duration::from_secs(5),
        }
    }
}

/// A snapshot of the executor's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Repaired users, in the order their repairs finished.
    pub done: Vec<String>,
    /// Users given up on, with why.
    pub failed: Vec<(String, String)>,
    /// Users waiting, in the order they will start.
    pub queued: Vec<String>,
    /// Users being repaired now, in the order they started.
    pub active: Vec<String>,
    /// `active.len()`.
    pub in_flight: usize,
    /// The current limit on repairs in flight.
    pub concurrency: usize,
    /// Dispatching is paused after an outage error.
    pub paused: bool,
    /// Calls that failed and were put back to try again.
    pub retries: u64,
    /// The latest error, `user: error` (kept after recovery; see `paused`).
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct Item {
    user: String,
    /// The dispatch number of its first attempt, if it was tried: items put
    /// back go back in the order they were first dispatched (a retried item
    /// stays ahead of the ones behind it, however often it is retried).
    rank: Option<u64>,
    attempts: u32,
}

impl Item {
    fn new(user: String) -> Self {
        Item {
            user,
            rank: None,
            attempts: 0,
        }
    }
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Item>,
    /// (dispatch number, user) of the repairs in flight.
    active: Vec<(u64, String)>,
    done: Vec<String>,
    failed: Vec<(String, String)>,
    concurrency: usize,
    /// Bumped at each decrease: a slow or failed repair dispatched in an
    /// older generation does not decrease again.
    generation: u64,
    fast_streak: usize,
    paused_until: Option<Instant>,
    retries: u64,
    last_error: Option<String>,
    stop: bool,
    next_dispatch: u64,
    /// When each mailbox's last repair ended (done or given up): damage a
    /// probe saw before then is what that repair was for.
    ended_at: HashMap<String, Instant>,
}

impl State {
    fn decrease(&mut self, generation: u64) {
        self.fast_streak = 0;
        if generation == self.generation {
            self.concurrency = (self.concurrency / 2).max(1);
            self.generation += 1;
        }
    }

    /// A fast success. Only repairs dispatched since the last decrease
    /// count towards growing again.
    fn fast(&mut self, generation: u64, max: usize) {
        if generation != self.generation {
            return;
        }
        self.fast_streak += 1;
        if self.fast_streak >= self.concurrency {
            self.fast_streak = 0;
            if self.concurrency < max {
                self.concurrency += 1;
            }
        }
    }

    /// Puts a tried item back at the head of the queue, after the items
    /// put back before it that were first dispatched before it.
    fn requeue(&mut self, item: Item) {
        let rank = item.rank.unwrap_or(0);
        let at = self
            .queue
            .iter()
            .take_while(|i| i.rank.is_some_and(|r| r < rank))
            .count();
        self.queue.insert(at, item);
        self.retries += 1;
    }

    fn pause(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |t| t.max(until)));
    }
}

/// The executor. Share it in an `Arc`: the scheduler pushes and reorders,
/// the console reads [`Reindexer::progress`], one task drives
/// [`Reindexer::run`].
#[derive(Debug)]
pub struct Reindexer {
    limits: Limits,
    state: Mutex<State>,
    wake: Notify,
    running: AtomicBool,
}

impl Reindexer {
    pub fn new(mut limits: Limits) -> Self {
        limits.max_concurrency = limits.max_concurrency.max(1);
        Reindexer {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                active: Vec::new(),
                done: Vec::new(),
                failed: Vec::new(),
                concurrency: limits.max_concurrency,
                generation: 0,
                fast_streak: 0,
                paused_until: None,
                retries: 0,
                last_error: None,
                stop: false,
                next_dispatch: 0,
                ended_at: HashMap::new(),
            }),
            limits,
            wake: Notify::new(),
            running: AtomicBool::new(false),
        }
    }

    /// A reindexer with `users` queued in that order.
    pub fn with_queue<I, S>(limits: Limits, users: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let r = Reindexer::new(limits);
        for u in users {
            r.push(u);
        }
        r
    }

    /// Takes back what an earlier run (before a gateway restart) had
    /// repaired and given up on, so progress counts from where the incident
    /// was, not from zero. Users later pushed again are repaired again.
    pub fn restore(&self, done: Vec<String>, failed: Vec<(String, String)>) {
        let mut st = self.lock();
        st.done = done;
        st.failed = failed;
    }

    /// Forgets the queue and what was done and given up on (the repairs in
    /// flight stay): before `restore` and `push` of what the journal says,
    /// when another gateway did the work meanwhile.
    pub fn reset(&self) {
        let mut st = self.lock();
        st.queue.clear();
        st.done.clear();
        st.failed.clear();
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `user` at the end. False if it is already queued.
    pub fn push(&self, user: impl Into<String>) -> bool {
        let user = user.into();
        let mut st = self.lock();
        if st.queue.iter().any(|i| i.user == user) {
            return false;
        }
        st.queue.push_back(Item::new(user));
        drop(st);
        self.wake.notify_one();
        true
    }

    /// Queues `user`, whose damage a probe that started at `probed_at`
    /// saw. False, as for `push`, and also when its repair is running or
    /// ended after the probe started: that repair was for this damage (a
    /// sweep's later pass finds it again if the repair did not fix it).
    pub fn push_found(&self, user: impl Into<String>, probed_at: Instant) -> bool {
        let user = user.into();
        {
            let st = self.lock();
            if st.active.iter().any(|(_, u)| *u == user)
                || st.ended_at.get(&user).is_some_and(|t| *t >= probed_at)
            {
                return false;
            }
        }
        self.push(user)
    }

    /// Reorders the queue: the queued users named in `order` first, in that
    /// order, then the queued users it leaves out, in their previous order.
    /// Names not queued (unknown, in flight, done) are ignored.
    pub fn reorder<I, S>(&self, order: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut st = self.lock();
        let mut slots: Vec<Option<Item>> = st.queue.drain(..).map(Some).collect();
        let index: HashMap<String, usize> = slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|it| (it.user.clone(), i)))
            .collect();
        let mut queue = VecDeque::with_capacity(slots.len());
        for name in order {
            if let Some(item) = index
                .get(name.as_ref())
                .and_then(|&i| slots.get_mut(i))
                .and_then(Option::take)
            {
                queue.push_back(item);
            }
        }
        queue.extend(slots.into_iter().flatten());
        st.queue = queue;
    }

    pub fn progress(&self) -> Progress {
        let st = self.lock();
        Progress {
            done: st.done.clone(),
            failed: st.failed.clone(),
            queued: st.queue.iter().map(|i| i.user.clone()).collect(),
            active: st.active.iter().map(|(_, u)| u.clone()).collect(),
            in_flight: st.active.len(),
            concurrency: st.concurrency,
            paused: st.paused_until.is_some_and(|t| t > Instant::now()),
            retries: st.retries,
            last_error: st.last_error.clone(),
        }
    }

    /// Makes the current (or next) `run` return once its in-flight repairs
    /// have finished; the queue is kept for a later `run`.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_one();
    }

    /// Works until the queue is empty and nothing is in flight, or until
    /// [`Reindexer::stop`]. Only one `run` works at a time: a second one
    /// returns at once.
    pub async fn run(self: Arc<Self>, repairer: Arc<dyn Repairer>) {
        if self.running.swap(true, Ordering::SeqCst) {
            tracing::warn!("reindexer: run called while already running");
            return;
        }
        let _guard = RunGuard(&self);
        let mut flights = FuturesUnordered::new();
        loop {
            let resume_at = {
                let mut st = self.lock();
                let now = Instant::now();
                if st.paused_until.is_some_and(|t| t <= now) {
                    st.paused_until = None;
                }
                if !st.stop && st.paused_until.is_none() {
                    while flights.len() < st.concurrency {
                        let Some(mut item) = st.queue.pop_front() else {
                            break;
                        };
                        let dispatch = st.next_dispatch;
                        st.next_dispatch += 1;
                        item.rank.get_or_insert(dispatch);
                        st.active.push((dispatch, item.user.clone()));
                        let generation = st.generation;
                        let repairer = Arc::clone(&repairer);
                        flights.push(async move {
                            let result = repairer.repair(&item.user).await;
                            (item, dispatch, generation, result)
                        });
                    }
                }
                if flights.is_empty() && (st.stop || st.queue.is_empty()) {
                    st.stop = false;
                    break;
                }
                st.paused_until
            };
            tokio::select! {
                biased;
                Some((item, dispatch, generation, result)) = flights.next(), if !flights.is_empty() => {
                    self.finish(item, dispatch, generation, result);
                }
                () = self.wake.notified() => {}
                () = sleep_until(resume_at) => {}
            }
        }
    }

    fn finish(
        &self,
        mut item: Item,
        dispatch: u64,
        generation: u64,
        result: Result<Duration, DoveError>,
    ) {
        let mut st = self.lock();
        st.active.retain(|(d, _)| *d != dispatch);
        if !matches!(&result, Err(e) if e.is_outage() || e.is_retryable()) {
            st.ended_at.insert(item.user.clone(), Instant::now());
        }
        let e = match result {
            Ok(latency) => {
                if latency > self.limits.slow {
                    st.decrease(generation);
                } else {
                    st.fast(generation, self.limits.max_concurrency);
                }
                st.done.push(item.user);
                return;
            }
            Err(e) => e,
        };
        st.last_error = Some(format!("{}: {e}", item.user));
        if e.is_outage() {
            tracing::warn!(user = %item.user, error = %e, "reindex: Dovecot outage, pausing");
            // Failures just before an outage (doveadm answers exit code 75
            // while Dovecot shuts down) were the outage's, not the mailbox's.
            item.attempts = 0;
            st.fast_streak = 0;
            st.concurrency = 1;
            st.generation += 1;
            st.requeue(item);
            st.pause(Instant::now() + self.limits.retry_after);
            return;
        }
        item.attempts += 1;
        if e.is_retryable() && item.attempts < MAX_ATTEMPTS {
            tracing::info!(user = %item.user, error = %e, attempt = item.attempts, "reindex: retrying");
            st.pause(Instant::now() + self.limits.retry_after);
            st.decrease(generation);
            st.requeue(item);
            return;
        }
        tracing::warn!(user = %item.user, error = %e, "reindex: failed");
        st.decrease(generation);
        st.failed.push((item.user, e.to_string()));
    }
}

/// Ends a `run`, also a cancelled one (its future dropped, or a panicking
/// repairer): the repairs it had in flight go back to the head of the
/// queue, in the order they started, so no mailbox is lost.
struct RunGuard<'a>(&'a Reindexer);

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        let mut active = std::mem::take(&mut st.active);
        active.sort_by_key(|(d, _)| *d);
        for (_, user) in active.into_iter().rev() {
            if !st.queue.iter().any(|i| i.user == user) {
                st.queue.push_front(Item::new(user));
            }
        }
        drop(st);
        self.0.running.store(false, Ordering::SeqCst);
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A fake Dovecot. What a user's repair does depends on its name:
    /// `slow*` takes (says it takes) a minute, `err*` is an unknown user,
    /// `temp*` always fails with exit code 75, `flaky*` fails once with 75;
    /// anything else takes a millisecond. While `down`, every call is
    /// unreachable. Calls yield a few times so that several are in flight.
    struct Fake {
        reindexer: Arc<Reindexer>,
        /// (user, the concurrency limit when the call started, up?)
        calls: Mutex<Vec<(String, usize, bool)>>,
        down: AtomicBool,
        /// Go down once this many repairs have succeeded.
        down_after: Option<usize>,
        ok: AtomicUsize,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
    }

    impl Fake {
        fn new(reindexer: &Arc<Reindexer>) -> Self {
            Fake {
                reindexer: Arc::clone(reindexer),
                calls: Mutex::new(Vec::new()),
                down: AtomicBool::new(false),
                down_after: None,
                ok: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
            }
        }

        fn calls(&self) -> Vec<(String, usize, bool)> {
            self.calls.lock().unwrap().clone()
        }

        fn users_called(&self) -> Vec<String> {
            self.calls().into_iter().map(|c| c.0).collect()
        }

        fn limits_seen(&self) -> Vec<usize> {
            self.calls().into_iter().map(|c| c.1).collect()
        }
    }

    #[async_trait::async_trait]
    impl Repairer for Fake {
        async fn repair(&self, user: &str) -> Result<Duration, DoveError> {
            let up = !self.down.load(Ordering::SeqCst);
            let limit = self.reindexer.progress().concurrency;
            let earlier = {
                let mut calls = self.calls.lock().unwrap();
                let earlier = calls.iter().filter(|c| c.0 == user && c.2).count();
                calls.push((user.to_string(), limit, up));
                earlier
            };
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            if user.starts_with("hang") {
                std::future::pending::<()>().await;
            }
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if !up {
                return Err(DoveError::Unreachable("connection refused".into()));
            }
            let result = if user.starts_with("slow") {
                Ok(Duration::from_secs(60))
            } else if user.starts_with("err") {
                Err(DoveError::Exit {
                    code: 67,
                    meaning: "unknown user",
                })
            } else if user.starts_with("temp") || (user.starts_with("flaky") && earlier == 0) {
                Err(DoveError::Exit {
                    code: 75,
                    meaning: "temporary failure",
                })
            } else {
                Ok(Duration::from_millis(1))
            };
            if result.is_ok() {
                let ok = self.ok.fetch_add(1, Ordering::SeqCst) + 1;
                if Some(ok) == self.down_after {
                    self.down.store(true, Ordering::SeqCst);
                }
            }
            result
        }
    }

    fn limits(max: usize) -> Limits {
        Limits {
            max_concurrency: max,
            slow: Duration::from_secs(1),
            retry_after: Duration::from_millis(10),
        }
    }

    fn users(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i:02}@t.test")).collect()
    }

    async fn run_all(r: &Arc<Reindexer>, fake: Arc<Fake>) {
        tokio::time::timeout(Duration::from_secs(20), Arc::clone(r).run(fake))
            .await
            .expect("the reindexer finishes");
    }

    /// A probe that started before a mailbox's repair ended saw the damage
    /// that repair was for: it is not queued again (a mailbox repaired
    /// twice). Damage a probe sees after the repair is queued again.
    #[tokio::test]
    async fn damage_seen_before_its_repair_ended_is_not_queued_again() {
        let r = Arc::new(Reindexer::with_queue(limits(1), ["bob@t.test"]));
        let probed_before = Instant::now();
        let fake = Arc::new(Fake::new(&r));
        run_all(&r, Arc::clone(&fake)).await;
        assert!(!r.push_found("bob@t.test", probed_before), "queued again");
        assert!(r.progress().queued.is_empty());
        let probed_after = Instant::now();
        assert!(
            r.push_found("bob@t.test", probed_after),
            "new damage ignored"
        );
        run_all(&r, Arc::clone(&fake)).await;
        assert_eq!(fake.users_called(), ["bob@t.test", "bob@t.test"]);
    }

    #[tokio::test]
    async fn repairs_follow_the_queue_order() {
        // Priority order is not alphabetical: the caller's order rules.
        let mut order = users("u", 12);
        order.reverse();
        order.swap(2, 7);
        for max in [1, 4] {
            let r = Arc::new(Reindexer::with_queue(limits(max), order.clone()));
            let fake = Arc::new(Fake::new(&r));
            run_all(&r, Arc::clone(&fake)).await;
            assert_eq!(
                fake.users_called(),
                order,
                "calls start in order (max {max})"
            );
            let p = r.progress();
            assert_eq!(p.done.len(), order.len());
            if max == 1 {
                assert_eq!(p.done, order);
                assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), 1);
            } else {
                assert!(fake.max_in_flight.load(Ordering::SeqCst) > 1);
            }
            assert!(fake.max_in_flight.load(Ordering::SeqCst) <= max);
            assert!(p.queued.is_empty() && p.active.is_empty() && p.failed.is_empty());
            assert_eq!((p.in_flight, p.paused, p.last_error), (0, false, None));
        }
    }

    #[tokio::test]
    async fn a_slow_call_halves_concurrency_then_fast_calls_grow_it_back() {
        let mut queue = users("a", 6);
        queue.push("slow@t.test".into());
        queue.extend(users("b", 30));
        let r = Arc::new(Reindexer::with_queue(limits(4), queue));
        let fake = Arc::new(Fake::new(&r));
        run_all(&r, Arc::clone(&fake)).await;
        let seen = fake.limits_seen();
        assert_eq!(seen[0], 4);
        let low = seen
            .iter()
            .position(|&c| c == 2)
            .unwrap_or_else(|| panic!("halved to 2: {seen:?} {:?}", fake.users_called()));
        assert!(!seen.contains(&1), "one slow call halves once: {seen:?}");
        assert!(
            seen[low..].windows(2).all(|w| w[0] <= w[1]),
            "then only grows: {seen:?}"
        );
        assert_eq!(r.progress().concurrency, 4, "grown back: {seen:?}");
        assert!(seen.contains(&3));
    }

    #[tokio::test]
    async fn slow_calls_in_flight_together_halve_once_and_later_ones_again() {
        // Four slow calls dispatched together: one halving (4 -> 2) ...
        let mut queue = users("slow-a", 4);
        queue.extend(users("f", 2));
        // ... slow calls dispatched after it halve again, never below 1.
        queue.extend(users("slow-b", 6));
        let r = Arc::new(Reindexer::with_queue(limits(4), queue.clone()));
        let fake = Arc::new(Fake::new(&r));
        run_all(&r, Arc::clone(&fake)).await;
        let seen = fake.limits_seen();
        assert_eq!(&seen[..4], &[4, 4, 4, 4]);
        assert_eq!(seen[4], 2, "{seen:?}");
        assert!(
            seen.contains(&1) && seen.iter().all(|&c| c >= 1),
            "{seen:?}"
        );
        let p = r.progress();
        assert_eq!(p.concurrency, 1);
        assert_eq!(p.done.len(), queue.len());
    }

    #[tokio::test]
    async fn an_error_halves_concurrency_and_fails_only_that_mailbox() {
        let mut queue = vec!["err@t.test".to_string()];
        queue.extend(users("f", 30));
        let r = Arc::new(Reindexer::with_queue(limits(4), queue.clone()));
        let fake = Arc::new(Fake::new(&r));
        run_all(&r, Arc::clone(&fake)).await;
        let seen = fake.limits_seen();
        assert!(seen.contains(&2) && !seen.contains(&1), "{seen:?}");
        let p = r.progress();
        assert_eq!(p.concurrency, 4);
        assert_eq!(p.failed.len(), 1);
        assert_eq!(p.failed[0].0, "err@t.test");
        assert!(p.failed[0].1.contains("67"), "{:?}", p.failed);
        let mut done = p.done.clone();
        done.sort();
        assert_eq!(done, queue[1..].to_vec());
        let last = p.last_error.expect("last error");
        assert!(last.starts_with("err@t.test: ") && last.contains("unknown user"));
        assert_eq!(fake.users_called(), queue, "never retried");
    }

    #[tokio::test]
    async fn temporary_failures_are_retried_in_place_a_few_times() {
        let queue: Vec<String> = ["a@t", "flaky@t", "temp@t", "b@t", "c@t"]
            .map(String::from)
            .to_vec();
        let r = Arc::new(Reindexer::with_queue(limits(1), queue));
        let fake = Arc::new(Fake::new(&r));
        run_all(&r, Arc::clone(&fake)).await;
        assert_eq!(
            fake.users_called(),
            [
                "a@t", "flaky@t", "flaky@t", "temp@t", "temp@t", "temp@t", "b@t", "c@t"
            ]
        );
        let p = r.progress();
        assert_eq!(p.done, ["a@t", "flaky@t", "b@t", "c@t"]);
        assert_eq!(p.failed.len(), 1);
        assert_eq!(p.failed[0].0, "temp@t");
        assert_eq!(p.retries, 3);
    }

    /// Waits (polling) until `cond` holds on the progress.
    async fn until(r: &Reindexer, what: &str, cond: impl Fn(&Progress) -> bool) -> Progress {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let p = r.progress();
            if cond(&p) {
                return p;
            }
            assert!(Instant::now() < deadline, "never {what}: {p:?}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test]
    async fn an_outage_pauses_without_losing_or_reordering_work() {
        for max in [1, 3] {
            let queue = users("m", 10);
            let r = Arc::new(Reindexer::with_queue(limits(max), queue.clone()));
            let mut fake = Fake::new(&r);
            fake.down_after = Some(3);
            let fake = Arc::new(fake);
            let run = tokio::spawn(Arc::clone(&r).run(Arc::clone(&fake) as Arc<dyn Repairer>));

            // Down: nothing is dropped, what is left keeps its order.
            let p = until(&r, "paused with nothing in flight", |p| {
                p.paused && p.in_flight == 0 && p.last_error.is_some()
            })
            .await;
            assert!(p.failed.is_empty(), "{p:?}");
            assert_eq!(p.concurrency, 1);
            assert!(
                p.last_error.as_deref().unwrap().contains("unreachable"),
                "{p:?}"
            );
            let mut seen_done = p.done.clone();
            seen_done.sort();
            assert_eq!(seen_done, queue[..p.done.len()].to_vec(), "{p:?}");
            assert_eq!(p.queued, queue[p.done.len()..].to_vec(), "{p:?}");

            // It keeps trying the head of the queue (only) while down.
            let head = p.queued[0].clone();
            let fake2 = Arc::clone(&fake);
            let h = head.clone();
            let retries = move || fake2.calls().iter().filter(|c| c.0 == h && !c.2).count();
            while retries() < 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let p2 = r.progress();
            let down_calls: Vec<String> = fake
                .calls()
                .into_iter()
                .filter(|c| !c.2)
                .map(|c| c.0)
                .collect();
            // The calls in flight when it went down failed once each; from
            // then on, only the head is tried (a probe at concurrency 1).
            let second = down_calls
                .iter()
                .enumerate()
                .filter(|(_, u)| **u == head)
                .nth(1)
                .map(|(i, _)| i)
                .expect("the head was retried");
            assert!(
                down_calls[second..].iter().all(|u| *u == head),
                "only the head is retried: {down_calls:?}"
            );
            assert_eq!(p2.done, p.done);
            assert!(p2.failed.is_empty());
            assert_eq!(p2.queued.len() + p2.active.len(), p.queued.len());

            // Back up: it finishes the rest.
            fake.down.store(false, Ordering::SeqCst);
            tokio::time::timeout(Duration::from_secs(20), run)
                .await
                .expect("finishes")
                .expect("no panic");
            let p = r.progress();
            assert!(p.failed.is_empty() && p.queued.is_empty(), "{p:?}");
            let mut done = p.done.clone();
            done.sort();
            assert_eq!(done, queue);
            if max == 1 {
                assert_eq!(p.done, queue);
            }
            assert!(p.retries >= 3);
            assert!(!p.paused);
            // Every mailbox was first tried in queue order.
            let mut first = Vec::new();
            for u in fake.users_called() {
                if !first.contains(&u) {
                    first.push(u);
                }
            }
            assert_eq!(first, queue);
        }
    }

    #[tokio::test]
    async fn push_reorder_and_stop() {
        let r = Arc::new(Reindexer::new(limits(2)));
        for u in ["a", "b", "c", "d"] {
            assert!(r.push(u));
        }
        assert!(!r.push("b"), "already queued");
        r.reorder(["d", "nobody", "b"]);
        assert_eq!(r.progress().queued, ["d", "b", "a", "c"]);

        // Stopped before it starts: returns at once, the queue is kept.
        r.stop();
        let fake = Arc::new(Fake::new(&r));
        run_all(&r, Arc::clone(&fake)).await;
        assert!(fake.calls().is_empty());
        assert_eq!(r.progress().queued, ["d", "b", "a", "c"]);

        // The next run does the work in the new order.
        run_all(&r, Arc::clone(&fake)).await;
        assert_eq!(fake.users_called(), ["d", "b", "a", "c"]);
        assert_eq!(r.progress().concurrency, 2);
    }

    #[tokio::test]
    async fn a_cancelled_run_puts_its_repairs_in_flight_back() {
        let queue: Vec<String> = ["a@t", "hang1@t", "hang2@t", "b@t", "c@t"]
            .map(String::from)
            .to_vec();
        let r = Arc::new(Reindexer::with_queue(limits(2), queue));
        let fake = Arc::new(Fake::new(&r));
        let run = tokio::spawn(Arc::clone(&r).run(Arc::clone(&fake) as Arc<dyn Repairer>));
        until(&r, "stuck on the hanging calls", |p| {
            p.active == ["hang1@t", "hang2@t"]
        })
        .await;
        run.abort();
        assert!(run.await.unwrap_err().is_cancelled());
        let p = r.progress();
        assert_eq!(p.done, ["a@t"]);
        assert_eq!(p.queued, ["hang1@t", "hang2@t", "b@t", "c@t"]);
        assert_eq!(p.in_flight, 0);
        // A new run may start (and gets stuck the same way).
        let run = tokio::spawn(Arc::clone(&r).run(fake as Arc<dyn Repairer>));
        until(&r, "running again", |p| p.in_flight == 2).await;
        run.abort();
    }

    #[tokio::test]
    async fn stop_during_an_outage_keeps_the_queue() {
        let queue = users("s", 5);
        let r = Arc::new(Reindexer::with_queue(limits(2), queue.clone()));
        let fake = Arc::new(Fake::new(&r));
        fake.down.store(true, Ordering::SeqCst);
        let run = tokio::spawn(Arc::clone(&r).run(Arc::clone(&fake) as Arc<dyn Repairer>));
        until(&r, "paused", |p| p.paused && p.in_flight == 0).await;
        r.stop();
        tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .expect("stops")
            .expect("no panic");
        let p = r.progress();
        assert_eq!(p.queued, queue);
        assert!(p.done.is_empty() && p.failed.is_empty());
    }
}
