//! The inbound mail queue of a Postfix instance, read with `postqueue -j`.
//!
//! `postqueue -j` (Postfix 3.1 and later) prints one JSON object per queued
//! message:
//!
//! ```text
//! {"queue_name": "deferred", "queue_id": "4C55C9D4159", "arrival_time": 1795985896,
//!  "message_size": 285, "forced_expire": false, "sender": "ops@warroom.test",
//!  "recipients": [{"address": "alice@acme.test", "delay_reason": "deferred transport"}]}
//! ```
//!
//! Fields this module does not know are ignored; `delay_reason` is absent
//! for recipients that have not been tried yet. A line that cannot be read is
//! reported and skipped, never fatal: one odd message must not hide the rest
//! of the queue during an incident.
//!
//! [`Postqueue`] runs the command (on a blocking thread, killed when it takes
//! longer than its timeout) and parses what it prints. Run it as root or as a
//! member of the `postdrop` group (postqueue is set-gid `postdrop`); a
//! non-default `-c CONFIG_DIR` must be listed in `alternate_config_directories`
//! of the default `main.cf` unless the caller is root.
//!
//! As root, `postqueue` reads the queue directory itself and exits 0 while
//! Postfix is stopped, so a queue listing is no sign of life:
//! [`PostfixStatus`] checks liveness with `postfix status`. [`QueueFlow`]
//! turns successive listings into arrivals and departures (per recipient
//! domain); [`per_domain`] and [`per_address`] count what is queued.
//!
//! Here: the listing parsed and counted. `command.rs` runs `postqueue`,
//! `flow.rs` is [`QueueFlow`], `status.rs` is [`PostfixStatus`].

mod command;
mod flow;
mod status;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Deserialize;

pub use command::{ConfigError, Postqueue, RunError};
pub use flow::{Flow, FlowStep, QueueFlow};
pub use status::{Liveness, PostfixStatus, read_status, status_command_for};

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    /// Why delivery to this recipient was deferred; `None` when it has not
    /// been tried yet.
    pub delay_reason: Option<String>,
}

/// One message in a Postfix queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// `active`, `deferred`, `hold`, `incoming` or `maildrop`.
    pub queue_name: String,
    pub queue_id: String,
    /// When the message entered the queue; `None` when Postfix did not say
    /// (or said something that is not a Unix time).
    pub arrival_time: Option<DateTime<Utc>>,
    /// Bytes; 0 when Postfix did not say.
    pub message_size: u64,
    /// Envelope sender; empty for bounces (the null sender `<>`).
    pub sender: String,
    pub recipients: Vec<Recipient>,
}

#[derive(Deserialize)]
struct RawMessage {
    queue_name: String,
    queue_id: String,
    #[serde(default)]
    arrival_time: Option<serde_json::Value>,
    #[serde(default)]
    message_size: Option<u64>,
    #[serde(default)]
    sender: Option<String>,
    #[serde(default)]
    recipients: Vec<RawRecipient>,
}

#[derive(Deserialize)]
struct RawRecipient {
    address: String,
    #[serde(default)]
    delay_reason: Option<String>,
}

/// How much of a bad line a problem report quotes.
const QUOTE_CHARS: usize = 120;

/// Parses the output of `postqueue -j`: one JSON object per line. Unknown
/// fields are ignored and a missing `delay_reason` is fine. Blank lines are
/// skipped; every other line that cannot be read is reported in the second
/// list (`line N: why: the line`) and skipped.
pub fn parse_postqueue(text: &str) -> (Vec<QueuedMessage>, Vec<String>) {
    let mut messages = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<RawMessage>(line) {
            Ok(raw) => messages.push(QueuedMessage {
                queue_name: raw.queue_name,
                queue_id: raw.queue_id,
                arrival_time: raw.arrival_time.as_ref().and_then(unix_time),
                message_size: raw.message_size.unwrap_or(0),
                sender: raw.sender.unwrap_or_default(),
                recipients: raw
                    .recipients
                    .into_iter()
                    .map(|r| Recipient {
                        address: r.address,
                        delay_reason: r.delay_reason,
                    })
                    .collect(),
            }),
            Err(e) => problems.push(format!("line {}: {e}: {}", index + 1, quote(line))),
        }
    }
    (messages, problems)
}

/// A Unix time in seconds (integer or fractional) as a UTC time.
fn unix_time(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    if let Some(secs) = value.as_i64() {
        return DateTime::from_timestamp(secs, 0);
    }
    let secs = value.as_f64()?;
    if !secs.is_finite() {
        return None;
    }
    // `as` saturates; out-of-range values give None below.
    DateTime::from_timestamp_millis((secs * 1000.0).round() as i64)
}

fn quote(line: &str) -> String {
    crate::domain::format::clip(line, QUOTE_CHARS + 1)
}

/// Messages per Postfix queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub active: u64,
    pub deferred: u64,
    pub hold: u64,
    pub incoming: u64,
    pub maildrop: u64,
}

impl QueueCounts {
    /// Messages in all five queues.
    pub fn total(&self) -> u64 {
        self.active + self.deferred + self.hold + self.incoming + self.maildrop
    }

    /// Adds `n` messages to the queue named `queue`; a queue Postfix does
    /// not document (none today) is not counted.
    pub fn add(&mut self, queue: &str, n: u64) {
        match queue {
            "active" => self.active += n,
            "deferred" => self.deferred += n,
            "hold" => self.hold += n,
            "incoming" => self.incoming += n,
            "maildrop" => self.maildrop += n,
            _ => {}
        }
    }
}

/// Counts messages per queue.
pub fn counts(msgs: &[QueuedMessage]) -> QueueCounts {
    let mut c = QueueCounts::default();
    for m in msgs {
        c.add(&m.queue_name, 1);
    }
    c
}

/// The domain of an address, lower-cased and without a trailing dot; `None`
/// when there is no `@` or nothing after it. The last `@` counts, so a quoted
/// local part holding `@` is handled.
pub fn recipient_domain(address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (_, domain) = address.rsplit_once('@')?;
    let domain = domain.trim_end_matches('.');
    if domain.is_empty() {
        None
    } else {
        Some(domain.to_lowercase())
    }
}

/// Messages queued per recipient domain (lower-cased); a message to two
/// domains counts once for each, a message to two addresses of one domain
/// once. Recipients without a domain are not counted.
pub fn per_domain(msgs: &[QueuedMessage]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for m in msgs {
        let domains: BTreeSet<String> = m
            .recipients
            .iter()
            .filter_map(|r| recipient_domain(&r.address))
            .collect();
        for d in domains {
            *out.entry(d).or_insert(0) += 1;
        }
    }
    out
}

/// An address as a mailbox key: trimmed, without `<>`, lower-cased, without
/// a trailing dot; `None` when nothing is left.
fn mailbox_key(address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let address = address.trim_end_matches('.');
    if address.is_empty() {
        None
    } else {
        Some(address.to_lowercase())
    }
}

/// Messages queued per recipient address (lower-cased, so per mailbox): a
/// message to two addresses counts once for each, a message listing one
/// address twice (in any case) once. Postfix lists only the recipients not
/// yet delivered, so a message half delivered counts only for the rest.
pub fn per_address(msgs: &[QueuedMessage]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for m in msgs {
        let addresses: BTreeSet<String> = m
            .recipients
            .iter()
            .filter_map(|r| mailbox_key(&r.address))
            .collect();
        for a in addresses {
            *out.entry(a).or_insert(0) += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {

    use super::*;

    /// Lines as Postfix 3.7 prints them (`postqueue -j`).
    pub(super) const REAL: &str = r#"{"queue_name": "deferred", "queue_id": "4C55C9D4159", "arrival_time": 1795985896, "message_size": 285, "forced_expire": false, "sender": "ops@warroom.test", "recipients": [{"address": "alice@acme.test", "delay_reason": "deferred transport"}, {"address": "bob@Globex.test", "delay_reason": "deferred transport"}]}
{"queue_name": "active", "queue_id": "4E0A39D4158", "arrival_time": 1795985897, "message_size": 1024, "forced_expire": false, "sender": "", "recipients": [{"address": "carol@acme.test"}]}
"#;

    #[test]
    fn parses_real_lines() {
        let (msgs, problems) = parse_postqueue(REAL);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(msgs.len(), 2);
        let m = &msgs[0];
        assert_eq!(m.queue_name, "deferred");
        assert_eq!(m.queue_id, "4C55C9D4159");
        assert_eq!(m.arrival_time, DateTime::from_timestamp(1_795_985_896, 0));
        assert_eq!(m.message_size, 285);
        assert_eq!(m.sender, "ops@warroom.test");
        assert_eq!(
            m.recipients,
            vec![
                Recipient {
                    address: "alice@acme.test".into(),
                    delay_reason: Some("deferred transport".into()),
                },
                Recipient {
                    address: "bob@Globex.test".into(),
                    delay_reason: Some("deferred transport".into()),
                },
            ]
        );
        // Not yet tried: no delay_reason. A bounce: null sender.
        assert_eq!(msgs[1].recipients[0].delay_reason, None);
        assert_eq!(msgs[1].sender, "");
    }

    #[test]
    fn ignores_unknown_fields() {
        let line = r#"{"queue_name":"hold","queue_id":"A1","arrival_time":1,"message_size":3,"sender":"s@x.test","recipients":[{"address":"r@y.test","delay_reason":"x","orig_rcpt":"o@y.test","dsn":{"a":[1]}}],"future_field":{"nested":[1,2,3]},"forced_expire":true}"#;
        let (msgs, problems) = parse_postqueue(line);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].queue_name, "hold");
        assert_eq!(msgs[0].recipients[0].address, "r@y.test");
    }

    #[test]
    fn tolerates_missing_optional_fields() {
        let line =
            r#"{"queue_name":"maildrop","queue_id":"B2","recipients":[{"address":"r@y.test"}]}"#;
        let (msgs, problems) = parse_postqueue(line);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(msgs[0].arrival_time, None);
        assert_eq!(msgs[0].message_size, 0);
        assert_eq!(msgs[0].sender, "");
        assert_eq!(msgs[0].recipients[0].delay_reason, None);
    }

    #[test]
    fn odd_arrival_times_are_none_not_errors() {
        for t in [r#""yesterday""#, "null", "1e300", "-1e300", "true"] {
            let line = format!(
                r#"{{"queue_name":"active","queue_id":"C3","arrival_time":{t},"sender":"","recipients":[]}}"#
            );
            let (msgs, problems) = parse_postqueue(&line);
            assert!(problems.is_empty(), "{t}: {problems:?}");
            assert_eq!(msgs[0].arrival_time, None, "{t}");
        }
        let line = r#"{"queue_name":"active","queue_id":"C3","arrival_time":1795985896.5,"sender":"","recipients":[]}"#;
        let (msgs, _) = parse_postqueue(line);
        assert_eq!(
            msgs[0].arrival_time,
            DateTime::from_timestamp_millis(1_795_985_896_500)
        );
    }

    #[test]
    fn reports_garbage_lines_and_keeps_the_rest() {
        let text = format!(
            "postqueue: warning: Mail system is down -- accessing queue directly\n\
             {}\n\
             \n\
             {{\"queue_name\":\"deferred\"}}\n\
             [1,2,3]\n\
             {{\"queue_name\":\"deferred\",\"queue_id\":\"D4\",\"message_size\":-5,\"recipients\":[]}}\n\
             {{\"queue_name\":\"deferred\",\"queue_id\":\"E5\",\"recipients\":[{{\"address\":\"a@b.test\"\n\
             {}\n\
             \u{0}\u{fffd}{}\n",
            REAL.lines().next().unwrap_or_default(),
            REAL.lines().nth(1).unwrap_or_default(),
            "x".repeat(500),
        );
        let (msgs, problems) = parse_postqueue(&text);
        assert_eq!(msgs.len(), 2);
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems[0].starts_with("line 1: "), "{}", problems[0]);
        assert!(problems[1].starts_with("line 4: "), "{}", problems[1]);
        assert!(problems[1].contains("queue_id"), "{}", problems[1]);
        // Long lines are quoted, not copied whole.
        assert!(problems[5].chars().count() < 300, "{}", problems[5]);
    }

    #[test]
    fn empty_output_is_an_empty_queue() {
        let (msgs, problems) = parse_postqueue("");
        assert!(msgs.is_empty() && problems.is_empty());
        assert_eq!(counts(&msgs), QueueCounts::default());
        assert!(per_domain(&msgs).is_empty());
    }

    pub(super) fn msg(queue: &str, rcpts: &[&str]) -> QueuedMessage {
        QueuedMessage {
            queue_name: queue.into(),
            queue_id: "X".into(),
            arrival_time: None,
            message_size: 1,
            sender: "s@x.test".into(),
            recipients: rcpts
                .iter()
                .map(|a| Recipient {
                    address: (*a).into(),
                    delay_reason: None,
                })
                .collect(),
        }
    }

    #[test]
    fn counts_per_queue() {
        let msgs = vec![
            msg("active", &[]),
            msg("deferred", &[]),
            msg("deferred", &[]),
            msg("hold", &[]),
            msg("incoming", &[]),
            msg("maildrop", &[]),
            msg("maildrop", &[]),
            msg("corrupt", &[]),
        ];
        let c = counts(&msgs);
        assert_eq!(
            c,
            QueueCounts {
                active: 1,
                deferred: 2,
                hold: 1,
                incoming: 1,
                maildrop: 2,
            }
        );
        assert_eq!(c.total(), 7);
    }

    #[test]
    fn per_domain_counts_messages_not_recipients() {
        let msgs = vec![
            msg("deferred", &["a@acme.test"]),
            msg("deferred", &["b@ACME.test", "c@globex.test"]),
            msg("deferred", &["d@globex.test", "e@Globex.Test."]),
            msg(
                "deferred",
                &["\"odd@local\"@initech.test", "<f@initech.test>"],
            ),
            msg("deferred", &["postmaster", "g@"]),
        ];
        let d = per_domain(&msgs);
        let want: BTreeMap<String, u64> =
            [("acme.test", 2), ("globex.test", 2), ("initech.test", 1)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        assert_eq!(d, want);
    }

    #[test]
    fn per_address_counts_messages_per_mailbox() {
        let msgs = vec![
            msg("deferred", &["Alice@Acme.test"]),
            msg(
                "deferred",
                &["alice@acme.test", "<ALICE@acme.test>", "bob@acme.test"],
            ),
            msg("hold", &["bob@acme.test.", "carol@globex.test"]),
            msg("deferred", &["postmaster", " ", "<>"]),
            msg("deferred", &[]),
        ];
        let want: BTreeMap<String, u64> = [
            ("alice@acme.test", 2),
            ("bob@acme.test", 2),
            ("carol@globex.test", 1),
            ("postmaster", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(per_address(&msgs), want);
        assert!(per_address(&[]).is_empty());
    }
}
