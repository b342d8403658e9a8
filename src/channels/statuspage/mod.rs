//! Atlassian Statuspage (manage API v1): the war room's updates become one
//! incident on a Statuspage page.
//!
//! The first update opens an incident (`POST /pages/{page_id}/incidents`);
//! later updates change that incident (`PATCH
//! /pages/{page_id}/incidents/{incident_id}`). The incident id is kept in the
//! channel's durable [`Memory`] as soon as it is known, and forgotten when a
//! `resolved` update has been delivered, so that a later update opens a new
//! incident.
//!
//! Exactly once without an idempotency key: Statuspage has none, so every
//! request carries the update's id in `metadata.warroom.operation_id`. Before
//! a write, if an earlier write may have reached Statuspage without an answer
//! (it timed out, the connection broke, the server answered 5xx or something
//! unreadable, or the gateway stopped mid-request), the channel looks for
//! that operation id in the page's unresolved incidents; if it is there, the
//! earlier write counts as delivered and is not sent again. Such writes are
//! recognised from the previous attempt's outcome (`Outcome::Retry` with
//! `maybe_applied`, stored with the delivery: rewording a message changes
//! nothing) and from a "pending" mark the channel puts in its memory before
//! every write; the mark also covers another update's
//! unconfirmed write when the outbox worker hands update N+1 over while N
//! waits for its retry.
//!
//! Order: the memory keeps the highest `seq` delivered. An update at or
//! below it (a repeat after a restart, or an older update handed over after
//! a newer one) sends nothing and is reported sent with a detail saying so,
//! so Statuspage never goes back to an older status. This relies on `seq`
//! growing over the memory's lifetime (both live in the gateway's state
//! store). Deliveries to one `Statuspage` value run one at a time.
//!
//! Here: the configuration and its checks, and the `Channel`. `compose.rs`
//! builds the request body; `api.rs` calls the API and reads its answers;
//! `once.rs` is the exactly-once attempt and what the memory keeps.

mod api;
mod compose;
mod once;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use reqwest::Url;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{Channel, Context, Delivery, Facts, Outcome, Preview, Update};
use crate::domain::format;
use crate::domain::sanitize::sanitize;

/// Statuspage's manage API.
pub const DEFAULT_BASE_URL: &str = "https://api.statuspage.io/v1";
/// How long one request may take, answer included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Statuspage allows one request per second per API key.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Keys this channel uses in its [`Memory`]. An empty value means "none"
/// (memory has no delete).
pub mod keys {
    /// The Statuspage id of the war room's open incident.
    pub const INCIDENT_ID: &str = "incident_id";
    /// The highest `seq` delivered (or skipped as superseded).
    pub const LAST_SEQ: &str = "last_seq";
    /// "SEQ STATE UPDATE_ID" of a write that was started and whose result is
    /// not known yet.
    pub const PENDING: &str = "pending";
}

/// How much of a server's message an outcome quotes.
const MAX_MESSAGE_CHARS: usize = 300;

/// How the gateway configures the channel.
#[derive(Clone)]
pub struct StatuspageConfig {
    /// Default [`DEFAULT_BASE_URL`]; plain http only to a loopback address.
    pub base_url: String,
    pub page_id: String,
    /// Sent as `Authorization: OAuth <api_key>`; never printed.
    pub api_key: String,
    /// warroom component id ("imap", "smtp-in") → Statuspage component id.
    /// Components without an entry are left out of the requests.
    pub components: BTreeMap<String, String>,
    /// For one request, answer included.
    pub timeout: Duration,
}

impl Default for StatuspageConfig {
    fn default() -> Self {
        StatuspageConfig {
            base_url: DEFAULT_BASE_URL.into(),
            page_id: String::new(),
            api_key: String::new(),
            components: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Debug for StatuspageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatuspageConfig")
            .field("base_url", &self.base_url)
            .field("page_id", &self.page_id)
            .field(
                "api_key",
                &if self.api_key.is_empty() {
                    "[empty]"
                } else {
                    "[redacted]"
                },
            )
            .field("components", &self.components)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a configuration is refused: the setting and what is wrong with it,
/// never the API key. Values are quoted clipped and inert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("statuspage base_url {url:?} is not a URL: {why}")]
    NotAUrl { url: String, why: String },
    #[error("statuspage base_url must not contain credentials")]
    Credentials,
    #[error("statuspage base_url {0:?} must not have a query or fragment")]
    QueryOrFragment(String),
    #[error("statuspage base_url {0:?} has no host")]
    NoHost(String),
    /// To anything but a loopback address.
    #[error(
        "statuspage base_url {0:?} is plain http: the API key would cross the network \
         unencrypted; use https"
    )]
    PlainHttp(String),
    #[error("statuspage base_url {url:?}: scheme {scheme} is not http(s)")]
    Scheme { url: String, scheme: String },
    #[error("statuspage page_id {0:?} is not a Statuspage page id (letters, digits, - and _)")]
    PageId(String),
    #[error("statuspage api_key is empty")]
    EmptyApiKey,
    #[error("statuspage api_key contains spaces or characters that cannot go in an HTTP header")]
    ApiKeyNotAHeader,
    #[error("statuspage components: an empty warroom component id")]
    EmptyComponent,
    #[error(
        "statuspage components: {ours:?} maps to {theirs:?}, which is not a Statuspage component id"
    )]
    ComponentId { ours: String, theirs: String },
    #[error("statuspage timeout must be more than 0")]
    ZeroTimeout,
    /// The HTTP client could not be built with this key.
    #[error(transparent)]
    Client(#[from] crate::http::ClientError),
}

/// The Statuspage channel: one page, one API key.
pub struct Statuspage {
    cfg: StatuspageConfig,
    /// `base_url` without its trailing slash.
    base: String,
    client: reqwest::Client,
    min_interval: Duration,
    /// Held for a whole delivery (one at a time: the memory's incident id is
    /// read, then written); holds when the last request ended.
    gate: Mutex<Option<Instant>>,
    /// The API key (the one rule: `domain::redact`).
    redactor: crate::domain::redact::Redactor,
}

impl fmt::Debug for Statuspage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Statuspage")
            .field("cfg", &self.cfg)
            .field("min_interval", &self.min_interval)
            .finish_non_exhaustive()
    }
}

impl Statuspage {
    /// Checks the configuration; the error names the setting (never the key).
    pub fn new(cfg: StatuspageConfig) -> Result<Self, ConfigError> {
        let base = check_base_url(&cfg.base_url)?;
        if !is_token(&cfg.page_id) {
            return Err(ConfigError::PageId(clip(&cfg.page_id, 80)));
        }
        if cfg.api_key.is_empty() {
            return Err(ConfigError::EmptyApiKey);
        }
        if !cfg.api_key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::ApiKeyNotAHeader);
        }
        for (ours, theirs) in &cfg.components {
            if ours.trim().is_empty() {
                return Err(ConfigError::EmptyComponent);
            }
            if !is_token(theirs) {
                return Err(ConfigError::ComponentId {
                    ours: clip(ours, 80),
                    theirs: clip(theirs, 80),
                });
            }
        }
        if cfg.timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        let client = crate::http::keyed_client(
            "statuspage",
            &format!("OAuth {}", cfg.api_key),
            cfg.timeout,
            cfg.timeout.min(Duration::from_secs(10)),
            false,
        )
        .map_err(ConfigError::Client)?;
        let redactor = crate::domain::redact::Redactor::new().secret(&cfg.api_key);
        Ok(Statuspage {
            cfg,
            base,
            client,
            min_interval: DEFAULT_MIN_INTERVAL,
            gate: Mutex::new(None),
            redactor,
        })
    }

    /// The least time between the end of one request and the start of the
    /// next ([`DEFAULT_MIN_INTERVAL`] unless changed; tests shorten it).
    pub fn with_min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }

    fn incidents_url(&self) -> String {
        format!("{}/pages/{}/incidents", self.base, self.cfg.page_id)
    }

    /// Replaces the API key wherever it might have been echoed.
    fn redact(&self, s: String) -> String {
        self.redactor.redact_owned(s)
    }
}

#[async_trait::async_trait]
impl Channel for Statuspage {
    fn name(&self) -> &'static str {
        "statuspage"
    }

    /// Two previews: the JSON body exactly as it is sent, then how it is
    /// sent (method, URL) and what is left out or wrong.
    fn preview(&self, update: &Update, _: &dyn Facts) -> Vec<Preview> {
        let composed = self.compose(update);
        let url = self.incidents_url();
        let mut how = if update.seq <= 1 {
            format!("POST {url}\n(the war room's first update opens an incident)\n")
        } else {
            format!(
                "PATCH {url}/{{incident_id}}\n(the war room's open incident; POST {url} if none is open)\n"
            )
        };
        how.push_str("Authorization: OAuth [redacted]\nContent-Type: application/json\n");
        for note in &composed.notes {
            how.push_str(&format!("Note: {note}\n"));
        }
        for problem in &composed.problems {
            how.push_str(&format!("Not sendable: {problem}\n"));
        }
        vec![
            Preview {
                channel: self.name().into(),
                content_type: "application/json".into(),
                content: composed.json,
            },
            Preview {
                channel: self.name().into(),
                content_type: "text/plain".into(),
                content: how,
            },
        ]
    }

    async fn deliver(&self, update: &Update, delivery: &Delivery, ctx: &Context<'_>) -> Outcome {
        let mut last = self.gate.lock().await;
        let outcome = match self.attempt(&mut last, update, delivery, ctx.memory).await {
            Outcome::Sent(s) => Outcome::Sent(self.redact(s)),
            Outcome::Retry {
                reason,
                after,
                maybe_applied,
            } => Outcome::Retry {
                reason: self.redact(reason),
                after,
                maybe_applied,
            },
            Outcome::Failed(s) => Outcome::Failed(self.redact(s)),
        };
        match &outcome {
            Outcome::Sent(s) => tracing::info!(update = %update.id, "statuspage: {s}"),
            Outcome::Retry { reason, .. } => {
                tracing::warn!(update = %update.id, attempts = delivery.attempts, "statuspage: {reason}")
            }
            Outcome::Failed(s) => tracing::error!(update = %update.id, "statuspage: {s}"),
        }
        outcome
    }

    fn redact(&self, text: String) -> String {
        Statuspage::redact(self, text)
    }
}

/// Statuspage ids (pages, incidents, components): short, URL-safe.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_base_url(raw: &str) -> Result<String, ConfigError> {
    let trimmed = raw.trim().trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|e| ConfigError::NotAUrl {
        url: clip(&crate::domain::redact::url_shown(trimmed), 120),
        why: e.to_string(),
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::Credentials);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::QueryOrFragment(clip(trimmed, 120)));
    }
    let loopback = match url.host_str() {
        Some(host) => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || bare
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        None => return Err(ConfigError::NoHost(clip(trimmed, 120))),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(ConfigError::PlainHttp(clip(trimmed, 120))),
        other => {
            return Err(ConfigError::Scheme {
                url: clip(trimmed, 120),
                scheme: other.to_string(),
            });
        }
    }
    Ok(trimmed.to_string())
}

/// `s`, inert in a terminal, at most `max` characters.
fn clip(s: &str, max: usize) -> String {
    format::clip(&sanitize(s), max)
}

fn ms(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    clip(&format::causes(e), MAX_MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IncidentState;
    use chrono::{TimeZone, Utc};

    pub(super) fn cfg() -> StatuspageConfig {
        StatuspageConfig {
            base_url: "https://api.statuspage.io/v1/".into(),
            page_id: "kctbh9vrtdwd".into(),
            api_key: "SECRET-KEY-0123456789".into(),
            components: BTreeMap::from([
                ("imap".into(), "cmpimap".into()),
                ("smtp-in".into(), "cmpmail".into()),
                ("smtp-out".into(), "cmpmail".into()),
            ]),
            timeout: Duration::from_secs(5),
        }
    }

    pub(super) fn update() -> Update {
        Update {
            id: "su-000001".into(),
            seq: 1,
            operation_id: "op-1".into(),
            state: IncidentState::Investigating,
            title: "IMAP logins failing".into(),
            body: "We are investigating.".into(),
            components: vec![
                ("imap".into(), "major_outage".into()),
                ("pop3".into(), "partial_outage".into()),
            ],
            next_update: None,
            published_by: "alice".into(),
            published_at: Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap(),
            simulated: false,
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let c = cfg();
        assert!(!format!("{c:?}").contains("SECRET-KEY"));
        assert!(format!("{c:?}").contains("[redacted]"));
        let s = Statuspage::new(c).unwrap();
        assert!(!format!("{s:?}").contains("SECRET-KEY"));
    }

    #[test]
    fn config_is_checked_without_echoing_the_key() {
        let bad = |f: fn(&mut StatuspageConfig)| {
            let mut c = cfg();
            f(&mut c);
            let e = Statuspage::new(c).unwrap_err().to_string();
            assert!(!e.contains("SECRET"), "{e}");
            e
        };
        assert!(bad(|c| c.base_url = "not a url".into()).contains("base_url"));
        assert!(bad(|c| c.base_url = "http://statuspage.example".into()).contains("plain http"));
        assert!(bad(|c| c.base_url = "ftp://x.example".into()).contains("scheme"));
        assert!(bad(|c| c.page_id = "../x".into()).contains("page_id"));
        assert!(bad(|c| c.api_key = String::new()).contains("api_key"));
        assert!(bad(|c| c.api_key = "SECRET with space".into()).contains("api_key"));
        assert!(bad(|c| c.timeout = Duration::ZERO).contains("timeout"));
        assert!(
            bad(|c| {
                c.components.insert("imap".into(), "a/b".into());
            })
            .contains("components")
        );
        // As docs/configuration.md quotes it.
        assert_eq!(
            bad(|c| c.base_url = "http://status.example.com/v1".into()),
            "statuspage base_url \"http://status.example.com/v1\" is plain http: the API key \
             would cross the network unencrypted; use https"
        );
        let mut local = cfg();
        local.base_url = "http://127.0.0.1:8080/v1".into();
        assert!(Statuspage::new(local).is_ok());
        assert!(
            Statuspage::new(StatuspageConfig {
                page_id: "p".into(),
                api_key: "k".into(),
                ..Default::default()
            })
            .is_ok()
        );
    }

    #[test]
    fn preview_is_the_body_and_the_request_line() {
        let s = Statuspage::new(cfg()).unwrap();
        let p = s.preview(&update(), &NoFacts);
        assert_eq!(p[0].content_type, "application/json");
        assert_eq!(p[0].content, s.compose(&update()).json);
        assert!(
            p[1].content
                .starts_with("POST https://api.statuspage.io/v1/pages/kctbh9vrtdwd/incidents\n")
        );
        assert!(p[1].content.contains("pop3"));
        assert!(!p[1].content.contains("SECRET"));
        let mut later = update();
        later.seq = 2;
        assert!(s.preview(&later, &NoFacts)[1].content.starts_with("PATCH "));
    }

    struct NoFacts;
    impl Facts for NoFacts {
        fn affected_tenants(&self) -> Vec<super::super::TenantNotice> {
            Vec::new()
        }
        fn affected_mailboxes(&self, _: &str) -> Vec<crate::domain::MailboxRow> {
            Vec::new()
        }
    }
}
