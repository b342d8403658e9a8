//! Where status updates go. The gateway publishes an update once: it is
//! stored with one outbox row ("delivery") per channel and target, and the
//! outbox worker hands each delivery to its channel until the channel says
//! it is sent or it has failed for good. A channel must make a retry safe:
//! the worker retries after errors and time-outs, and after a gateway
//! restart, so the same delivery can reach `deliver` more than once.
//!
//! Channels: the built-in status page (`page`, always on), Atlassian
//! Statuspage (`statuspage`), tenant notices by e-mail (`email`) and a
//! generic webhook (`webhook`).

pub mod email;
pub mod statuspage;
pub mod webhook;

use std::time::Duration;

use crate::domain::MailboxRow;
use crate::domain::forecast::EtaRange;

// The status-update data (published updates, the board every console
// shows, outbox rows) is domain data: the store, the API conversions and
// the console use it without depending on the channels.
pub use crate::domain::update::{ChannelSummary, Delivery, StatusBoard, Update};

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Delivered; the detail says where (an incident id, a message id).
    Sent(String),
    /// Try again: after `after` if the other side said when, else with the
    /// worker's backoff. `maybe_applied`: the attempt may have taken effect
    /// on the other side although it was not confirmed (a time-out after
    /// sending, a lost connection, a 5xx, an unreadable answer); it is
    /// stored with the delivery, so the next attempt (also after a restart)
    /// checks before it sends again. Decided by the channel, never read
    /// back from the words of `reason`.
    Retry {
        reason: String,
        after: Option<Duration>,
        maybe_applied: bool,
    },
    /// Will never work (bad credentials, a rejected address): stop.
    Failed(String),
}

/// What a channel would send, for the preview.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub channel: String,
    /// e.g. "text/plain", "application/json", "message/rfc822".
    pub content_type: String,
    pub content: String,
}

/// A tenant that is affected now, for tenant notices.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantNotice {
    pub tenant_id: String,
    pub name: String,
    /// Its emergency contacts (e-mail addresses).
    pub contacts: Vec<String>,
    pub affected: u64,
    /// Mailboxes that serve mail again but whose IMAP clients must resync
    /// (a lost uidlist was rebuilt with a new UIDVALIDITY).
    pub resync_needed: u64,
    pub eta: EtaRange,
}

impl TenantNotice {
    /// The tenant has something to be told: mailboxes without service, or
    /// mailboxes whose clients must resync.
    pub fn concerned(&self) -> bool {
        self.affected > 0 || self.resync_needed > 0
    }
}

/// The live facts a channel may need, read from the gateway's source.
pub trait Facts: Send + Sync {
    /// Every tenant with at least one mailbox without service now, or one
    /// whose IMAP clients must resync.
    fn affected_tenants(&self) -> Vec<TenantNotice>;
    /// One tenant, whether affected or not (None: unknown).
    fn tenant_notice(&self, tenant_id: &str) -> Option<TenantNotice> {
        self.affected_tenants()
            .into_iter()
            .find(|t| t.tenant_id == tenant_id)
    }
    /// One tenant's affected mailboxes (every page), in reindex order.
    fn affected_mailboxes(&self, tenant_id: &str) -> Vec<MailboxRow>;
    /// Where the built-in status page is served ("" while it is not).
    fn page_url(&self) -> String {
        String::new()
    }
    /// The incident's clock (a drill's simulated time): what "now" is in
    /// every message, as for the ETAs in it.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

/// Durable key/value memory of one channel (e.g. the Statuspage incident
/// id), kept in the gateway's state store.
pub trait Memory: Send + Sync {
    fn get(&self, key: &str) -> Option<String>;
    fn put(&self, key: &str, value: &str) -> Result<(), MemoryError>;
}

/// A channel's memory could not be written; the text is what the store
/// said. A channel that cannot remember a delivery does not count it done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MemoryError(pub String);

pub struct Context<'a> {
    pub facts: &'a dyn Facts,
    pub memory: &'a dyn Memory,
}

#[async_trait::async_trait]
pub trait Channel: Send + Sync {
    /// "page", "statuspage", "email", "webhook".
    fn name(&self) -> &'static str;
    /// The targets one update goes to (one delivery each); by default
    /// `[""]`, a single destination.
    fn targets(&self, _update: &Update, _facts: &dyn Facts) -> Vec<String> {
        vec![String::new()]
    }
    /// What it would send for `update` (at most a few samples for channels
    /// with many targets).
    fn preview(&self, update: &Update, facts: &dyn Facts) -> Vec<Preview>;
    /// One attempt. Must be safe to repeat for the same delivery.
    async fn deliver(&self, update: &Update, delivery: &Delivery, ctx: &Context<'_>) -> Outcome;
    /// `text` (a delivery's detail, as stored) without this channel's
    /// secrets. `deliver` already words its outcomes so; this also covers
    /// details stored before that, read back from an older state file.
    fn redact(&self, text: String) -> String {
        text
    }
}

/// The built-in status page: the gateway serves every stored update over
/// HTTP, so delivering is only recording where it is.
pub struct Page;

#[async_trait::async_trait]
impl Channel for Page {
    fn name(&self) -> &'static str {
        "page"
    }

    fn preview(&self, update: &Update, _: &dyn Facts) -> Vec<Preview> {
        vec![Preview {
            channel: self.name().into(),
            content_type: "text/plain".into(),
            content: text(update, false),
        }]
    }

    async fn deliver(&self, _: &Update, _: &Delivery, ctx: &Context<'_>) -> Outcome {
        match ctx.facts.page_url() {
            // The outbox can start before the page listener is bound.
            url if url.is_empty() => Outcome::Retry {
                reason: "the status page is not served yet".into(),
                after: Some(std::time::Duration::from_secs(1)),
                maybe_applied: false,
            },
            url => Outcome::Sent(format!("on {url}")),
        }
    }
}

/// The update as plain text: what a webhook's `text` and an e-mail say
/// before anything channel-specific, with who posted it (the war room's
/// own channels and the tenants' contacts may ask them).
pub fn plain_text(u: &Update) -> String {
    text(u, true)
}

/// The same text with or without the author: the public status page does
/// not name the person who posted, so neither does its preview.
fn text(u: &Update, author: bool) -> String {
    let mut s = String::new();
    if u.simulated {
        s.push_str("[SIMULATED — a drill, not production]\n");
    }
    s.push_str(&format!(
        "{} — {}\n",
        u.state.as_str().to_uppercase(),
        u.title
    ));
    s.push_str(&format!(
        "Posted {} UTC",
        u.published_at.format("%Y-%m-%d %H:%M")
    ));
    if author {
        s.push_str(&format!(" by {}", u.published_by));
    }
    s.push_str("\n\n");
    s.push_str(&u.body);
    s.push('\n');
    if !u.components.is_empty() {
        s.push('\n');
        for (id, status) in &u.components {
            s.push_str(&format!("- {id}: {}\n", status.replace('_', " ")));
        }
    }
    if let Some(next) = u.next_update {
        s.push_str(&format!(
            "\nNext update by {} UTC.\n",
            next.format("%Y-%m-%d %H:%M")
        ));
    }
    s
}

/// The longest wait a server may ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` in seconds or as an HTTP date; capped at an hour.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let after = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(secs) = v.parse::<f64>() {
        Duration::try_from_secs_f64(secs).ok()?
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
        (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(after.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let h = |v: &str| {
            let mut m = reqwest::header::HeaderMap::new();
            m.insert(
                reqwest::header::RETRY_AFTER,
                reqwest::header::HeaderValue::from_str(v).unwrap(),
            );
            retry_after(&m)
        };
        assert_eq!(h("1"), Some(Duration::from_secs(1)));
        assert_eq!(h(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(h("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(h("999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(h("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(h("soon"), None);
        assert_eq!(h("-1"), None);
        assert_eq!(retry_after(&reqwest::header::HeaderMap::new()), None);
    }
}
