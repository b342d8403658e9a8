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

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{Channel, Context, Delivery, Facts, Memory, Outcome, Preview, Update, retry_after};
use crate::domain::IncidentState;
use crate::domain::format;
use crate::domain::sanitize::sanitize;
use crate::domain::status::{COMPONENT_STATUSES, MAX_BODY_CHARS, MAX_TITLE_CHARS};

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

/// Answers larger than this are not read (an unresolved list is far smaller).
const MAX_RESPONSE_BYTES: usize = 4 << 20;
/// A Retry-After beyond this is taken as this.
/// How much of a server's message an outcome quotes.
const MAX_MESSAGE_CHARS: usize = 300;
const DRILL_TITLE: &str = "[SIMULATED] ";
const DRILL_BODY: &str = "[SIMULATED — a drill, not production]\n\n";

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
    pub fn new(cfg: StatuspageConfig) -> Result<Self, String> {
        let base = check_base_url(&cfg.base_url)?;
        if !is_token(&cfg.page_id) {
            return Err(format!(
                "statuspage page_id {:?} is not a Statuspage page id (letters, digits, - and _)",
                clip(&cfg.page_id, 80)
            ));
        }
        if cfg.api_key.is_empty() {
            return Err("statuspage api_key is empty".into());
        }
        if !cfg.api_key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "statuspage api_key contains spaces or characters that cannot go in an HTTP header"
                    .into(),
            );
        }
        for (ours, theirs) in &cfg.components {
            if ours.trim().is_empty() {
                return Err("statuspage components: an empty warroom component id".into());
            }
            if !is_token(theirs) {
                return Err(format!(
                    "statuspage components: {:?} maps to {:?}, which is not a Statuspage component id",
                    clip(ours, 80),
                    clip(theirs, 80)
                ));
            }
        }
        if cfg.timeout.is_zero() {
            return Err("statuspage timeout must be more than 0".into());
        }
        let client = crate::http::keyed_client(
            "statuspage",
            &format!("OAuth {}", cfg.api_key),
            cfg.timeout,
            cfg.timeout.min(Duration::from_secs(10)),
            false,
        )?;
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

    /// The request body for `u`, with what is left out and what is wrong.
    fn compose(&self, u: &Update) -> Composed {
        let mut notes = Vec::new();
        let mut problems = Vec::new();

        let drill = if u.simulated {
            " (with the drill marker)"
        } else {
            ""
        };
        let name = if u.simulated {
            format!("{DRILL_TITLE}{}", u.title)
        } else {
            u.title.clone()
        };
        let mut body = String::new();
        if u.simulated {
            body.push_str(DRILL_BODY);
        }
        body.push_str(&u.body);
        if let Some(next) = u.next_update {
            if !body.is_empty() {
                body.push_str("\n\n");
            }
            body.push_str(&format!(
                "Next update by {} UTC.",
                next.format("%Y-%m-%d %H:%M")
            ));
        }
        let name_chars = name.chars().count();
        if name.trim().is_empty() {
            problems.push("the title is empty; Statuspage requires an incident name".to_string());
        } else if name_chars > MAX_TITLE_CHARS {
            problems.push(format!(
                "the title is {name_chars} characters{drill}; Statuspage's limit is {MAX_TITLE_CHARS}"
            ));
        }
        let body_chars = body.chars().count();
        if body_chars > MAX_BODY_CHARS {
            problems.push(format!(
                "the body is {body_chars} characters{drill}; Statuspage's limit is {MAX_BODY_CHARS}"
            ));
        }

        let mut component_ids: Vec<String> = Vec::new();
        let mut components: BTreeMap<String, &'static str> = BTreeMap::new();
        let mut unmapped: Vec<String> = Vec::new();
        for (ours, status) in &u.components {
            let Some(known) = COMPONENT_STATUSES.iter().copied().find(|s| *s == status) else {
                problems.push(format!(
                    "component {} has status {:?}, which Statuspage does not know ({})",
                    clip(ours, 80),
                    clip(status, 80),
                    COMPONENT_STATUSES.join(", ")
                ));
                continue;
            };
            let Some(theirs) = self.cfg.components.get(ours) else {
                if !unmapped.contains(ours) {
                    unmapped.push(ours.clone());
                }
                continue;
            };
            match components.get(theirs) {
                // Two warroom components on one Statuspage component: the
                // worse status shows.
                Some(&before) if severity(before) >= severity(known) => {}
                _ => {
                    components.insert(theirs.clone(), known);
                }
            }
            if !component_ids.contains(theirs) {
                component_ids.push(theirs.clone());
            }
        }
        if !unmapped.is_empty() {
            notes.push(format!(
                "left out (no Statuspage component is configured for them): {}",
                unmapped
                    .iter()
                    .map(|c| sanitize(c).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if u.simulated {
            notes.push("a drill: marked as simulated, subscribers are not notified".into());
        }

        let request = IncidentRequest {
            incident: IncidentFields {
                name,
                status: u.state.as_str(),
                body,
                component_ids,
                components,
                deliver_notifications: !u.simulated,
                metadata: Metadata {
                    warroom: WarroomMetadata {
                        operation_id: u.id.clone(),
                    },
                },
            },
        };
        // Serialising strings and maps cannot fail; an empty body would be
        // refused by the server rather than panic here.
        let json = serde_json::to_string_pretty(&request).unwrap_or_default();
        Composed {
            json,
            notes,
            problems,
        }
    }

    /// Sends one request, at most one per `min_interval`, and reads the
    /// answer (capped).
    async fn send(
        &self,
        last: &mut Option<Instant>,
        method: Method,
        url: &str,
        body: Option<&str>,
    ) -> Result<Answer, Transport> {
        if let Some(t) = *last {
            tokio::time::sleep_until(t + self.min_interval).await;
        }
        let mut req = self.client.request(method, url);
        if let Some(b) = body {
            req = req
                .header(header::CONTENT_TYPE, "application/json")
                .body(b.to_owned());
        }
        let result = async {
            let mut resp = req.send().await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let mut bytes = Vec::new();
            let mut truncated = false;
            while let Some(chunk) = resp.chunk().await? {
                if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    truncated = true;
                    break;
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>(Answer {
                status,
                headers,
                body: bytes,
                truncated,
            })
        }
        .await;
        *last = Some(Instant::now());
        result.map_err(|e| {
            let what = error_chain(&e);
            if e.is_connect() {
                Transport::Connect(what)
            } else if e.is_timeout() {
                Transport::TimedOut(what)
            } else {
                Transport::Lost(what)
            }
        })
    }

    /// The incidents in which to look for unconfirmed writes: the unresolved
    /// ones, or all recent ones (`all`) when a doubted write opened an
    /// incident already resolved, which no unresolved list shows.
    async fn lookup(&self, last: &mut Option<Instant>, all: bool) -> Result<Vec<Listed>, Outcome> {
        let url = if all {
            self.incidents_url()
        } else {
            format!("{}/unresolved", self.incidents_url())
        };
        let unconfirmed = |what: String, after: Option<Duration>| Outcome::Retry {
            reason: format!(
                "unconfirmed: an earlier attempt may have reached Statuspage and {what}; \
                 the next attempt checks again before sending"
            ),
            after,
            maybe_applied: true,
        };
        let answer = match self.send(last, Method::GET, &url, None).await {
            Ok(a) => a,
            Err(Transport::TimedOut(e)) => {
                return Err(unconfirmed(
                    format!(
                        "looking for it timed out after {} ({e})",
                        ms(self.cfg.timeout)
                    ),
                    None,
                ));
            }
            Err(Transport::Connect(e) | Transport::Lost(e)) => {
                return Err(unconfirmed(format!("looking for it failed: {e}"), None));
            }
        };
        let status = answer.status;
        if status == StatusCode::TOO_MANY_REQUESTS {
            let after = retry_after(&answer.headers);
            return Err(unconfirmed(
                "looking for it was rate limited (HTTP 429)".into(),
                after,
            ));
        }
        if !status.is_success() {
            if let Some(failed) = self.permanent(&answer, "looking for the incident") {
                return Err(failed);
            }
            return Err(unconfirmed(
                format!(
                    "looking for it got HTTP {}: {}",
                    status.as_u16(),
                    describe(&answer)
                ),
                None,
            ));
        }
        parse_list(&answer).map_err(|e| {
            unconfirmed(
                format!("its answer to the lookup was unreadable: {e}"),
                None,
            )
        })
    }

    /// A final answer that no retry will change, as the outcome to report.
    fn permanent(&self, a: &Answer, doing: &str) -> Option<Outcome> {
        let code = a.status.as_u16();
        let text = match a.status {
            StatusCode::UNAUTHORIZED => format!(
                "Statuspage refused the API key (HTTP 401) while {doing}: check the statuspage \
                 api_key in the gateway's configuration ({})",
                describe(a)
            ),
            StatusCode::FORBIDDEN => format!(
                "Statuspage refused access (HTTP 403) while {doing}: the API key's user may not \
                 manage page {} ({})",
                self.cfg.page_id,
                describe(a)
            ),
            StatusCode::NOT_FOUND => format!(
                "Statuspage has no page {} for this API key (HTTP 404) while {doing}: check the \
                 statuspage page_id ({})",
                self.cfg.page_id,
                describe(a)
            ),
            s if s.is_redirection() => format!(
                "Statuspage answered HTTP {code} (a redirect{}) while {doing}: check the \
                 statuspage base_url",
                a.headers
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .map(|l| format!(" to {}", clip(l, 120)))
                    .unwrap_or_default()
            ),
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => return None,
            s if s.is_client_error() => format!(
                "Statuspage rejected the request (HTTP {code}) while {doing}: {}",
                describe(a)
            ),
            _ => return None,
        };
        Some(Outcome::Failed(text))
    }

    /// One attempt, under the gate.
    async fn attempt(
        &self,
        last: &mut Option<Instant>,
        u: &Update,
        d: &Delivery,
        memory: &dyn Memory,
    ) -> Outcome {
        let open_now = || remembered(memory, keys::INCIDENT_ID).filter(|id| is_token(id));
        let last_seq = || remembered(memory, keys::LAST_SEQ).and_then(|s| s.parse::<u64>().ok());
        let mut open = open_now();
        if let Some(done) = already(u, last_seq(), open.as_deref()) {
            return done;
        }

        let composed = self.compose(u);
        if !composed.problems.is_empty() {
            return Outcome::Failed(format!(
                "not sent to Statuspage: {}",
                composed.problems.join("; ")
            ));
        }

        // Writes that may have reached Statuspage without an answer: this
        // update's own earlier attempt, or another update's (the worker may
        // hand over update N+1 while N waits for its retry).
        let this = Write::of(u);
        let pending = remembered(memory, keys::PENDING).and_then(|p| Write::decode(&p));
        let own_doubt =
            pending.as_ref().is_some_and(|p| p.id == u.id) || (d.attempts > 0 && d.maybe_applied);
        let other = pending.filter(|p| p.id != u.id);
        if own_doubt || other.is_some() {
            let all = open.is_none()
                && (other.as_ref().is_some_and(|p| p.resolving) || (own_doubt && this.resolving));
            let list = match self.lookup(last, all).await {
                Ok(list) => list,
                Err(outcome) => return outcome,
            };
            if let Some(p) = &other {
                match settle(&list, all, p, open.as_deref()) {
                    Some(incident) => {
                        if let Err(e) = record(memory, p, &incident) {
                            return Outcome::Retry {
                                reason: format!(
                                    "unconfirmed: {} reached Statuspage (incident {}), but the \
                                     channel could not remember it ({e})",
                                    p.id, incident.id
                                ),
                                after: None,
                                maybe_applied: true,
                            };
                        }
                        tracing::info!(
                            update = %p.id,
                            incident = %incident.id,
                            "statuspage: an unconfirmed attempt of {} had reached Statuspage",
                            p.id
                        );
                        open = open_now();
                        if let Some(done) = already(u, last_seq(), open.as_deref()) {
                            return done;
                        }
                    }
                    None => forget_pending(memory),
                }
            }
            if own_doubt && let Some(incident) = settle(&list, all, &this, open.as_deref()) {
                return delivered(
                    memory,
                    &this,
                    &incident,
                    "found on Statuspage by its operation id after an unconfirmed attempt; not sent again",
                );
            }
        }

        if let Err(e) = memory.put(keys::PENDING, &this.encode()) {
            return Outcome::Retry {
                reason: format!("could not note the request before sending it ({e}); nothing sent"),
                after: None,
                maybe_applied: false,
            };
        }
        let (method, url, doing) = match &open {
            None => (Method::POST, self.incidents_url(), "opening the incident"),
            Some(id) => (
                Method::PATCH,
                format!("{}/{id}", self.incidents_url()),
                "updating the incident",
            ),
        };
        let answer = match self.send(last, method, &url, Some(&composed.json)).await {
            Ok(a) => a,
            Err(Transport::Connect(e)) => {
                forget_pending(memory);
                return Outcome::Retry {
                    reason: format!("could not connect to Statuspage ({e}); nothing sent"),
                    after: None,
                    maybe_applied: false,
                };
            }
            Err(Transport::TimedOut(e)) => {
                return Outcome::Retry {
                    reason: format!(
                        "timed out after {} waiting for Statuspage ({e}); the request may have been \
                         applied, the next attempt checks before sending again",
                        ms(self.cfg.timeout)
                    ),
                    after: None,
                    maybe_applied: true,
                };
            }
            Err(Transport::Lost(e)) => {
                return Outcome::Retry {
                    reason: format!(
                        "connection lost before Statuspage answered ({e}); the request may have been \
                         applied, the next attempt checks before sending again"
                    ),
                    after: None,
                    maybe_applied: true,
                };
            }
        };

        let status = answer.status;
        if status.is_success() {
            return match parse_incident(&answer) {
                Ok(incident) if open.as_ref().is_none_or(|t| *t == incident.id) => {
                    let how = if open.is_none() { "opened" } else { "updated" };
                    delivered(memory, &this, &incident, how)
                }
                Ok(incident) => Outcome::Retry {
                    reason: format!(
                        "unreadable response: HTTP {} to the update of incident {} names incident {}",
                        status.as_u16(),
                        open.as_deref().unwrap_or_default(),
                        incident.id
                    ),
                    after: None,
                    maybe_applied: true,
                },
                Err(e) => Outcome::Retry {
                    reason: format!(
                        "unreadable response: HTTP {} while {doing}, but {e}; the next attempt \
                         looks for the update before sending again",
                        status.as_u16()
                    ),
                    after: None,
                    maybe_applied: true,
                },
            };
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            forget_pending(memory);
            let after = retry_after(&answer.headers);
            return Outcome::Retry {
                reason: format!(
                    "rate limited by Statuspage (HTTP 429){}",
                    after
                        .map(|a| format!("; retry after {}", ms(a)))
                        .unwrap_or_default()
                ),
                after,
                maybe_applied: false,
            };
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            forget_pending(memory);
            return Outcome::Retry {
                reason: "Statuspage gave up waiting for the request (HTTP 408); nothing applied"
                    .into(),
                after: None,
                maybe_applied: false,
            };
        }
        if let (Some(id), StatusCode::NOT_FOUND) = (&open, status) {
            forget_pending(memory);
            let forgot = memory.put(keys::INCIDENT_ID, "").is_ok();
            return Outcome::Failed(format!(
                "Statuspage has no incident {id} on page {} (HTTP 404: {}); it may have been \
                 deleted{}",
                self.cfg.page_id,
                describe(&answer),
                if forgot {
                    " — the next update opens a new incident"
                } else {
                    ""
                }
            ));
        }
        if let Some(failed) = self.permanent(&answer, doing) {
            forget_pending(memory);
            return failed;
        }
        Outcome::Retry {
            reason: format!(
                "server error: Statuspage answered HTTP {} while {doing} ({}); the next attempt \
                 looks for the update before sending again",
                status.as_u16(),
                describe(&answer)
            ),
            after: None,
            maybe_applied: true,
        }
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

#[derive(Serialize)]
struct IncidentRequest {
    incident: IncidentFields,
}

#[derive(Serialize)]
struct IncidentFields {
    name: String,
    status: &'static str,
    body: String,
    component_ids: Vec<String>,
    components: BTreeMap<String, &'static str>,
    deliver_notifications: bool,
    metadata: Metadata,
}

#[derive(Serialize)]
struct Metadata {
    warroom: WarroomMetadata,
}

#[derive(Serialize)]
struct WarroomMetadata {
    operation_id: String,
}

struct Composed {
    /// Exactly the bytes sent.
    json: String,
    /// For the preview: what is left out, drills.
    notes: Vec<String>,
    /// Why it cannot be sent.
    problems: Vec<String>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    truncated: bool,
}

enum Transport {
    /// No connection: nothing was sent.
    Connect(String),
    TimedOut(String),
    /// Sent, perhaps, and no answer.
    Lost(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Incident {
    id: String,
    shortlink: Option<String>,
}

struct Listed {
    incident: Incident,
    operation_id: Option<String>,
}

/// A write to Statuspage, as the pending mark remembers it.
#[derive(Debug, Clone, PartialEq)]
struct Write {
    seq: u64,
    /// It resolves the incident (which then leaves the unresolved list).
    resolving: bool,
    /// The update's id: the operation id in the incident's metadata.
    id: String,
}

impl Write {
    fn of(u: &Update) -> Write {
        Write {
            seq: u.seq,
            resolving: u.state == IncidentState::Resolved,
            id: u.id.clone(),
        }
    }

    fn encode(&self) -> String {
        let state = if self.resolving { "resolved" } else { "open" };
        format!("{} {state} {}", self.seq, self.id)
    }

    fn decode(s: &str) -> Option<Write> {
        let mut parts = s.splitn(3, ' ');
        let seq = parts.next()?.parse().ok()?;
        let resolving = match parts.next()? {
            "resolved" => true,
            "open" => false,
            _ => return None,
        };
        let id = parts.next().filter(|id| !id.is_empty())?.to_string();
        Some(Write { seq, resolving, id })
    }
}

/// The update needs no request: it, or a newer one, is already on
/// Statuspage (`seq` grows over the memory's lifetime: both live in the
/// gateway's state store).
fn already(u: &Update, last_seq: Option<u64>, open: Option<&str>) -> Option<Outcome> {
    let on = open
        .map(|id| format!(" (incident {id})"))
        .unwrap_or_default();
    match last_seq {
        Some(s) if s == u.seq => Some(Outcome::Sent(format!(
            "{} already delivered{on}; not sent again",
            u.id
        ))),
        Some(s) if s > u.seq => Some(Outcome::Sent(format!(
            "{} skipped: the newer update #{s} is already on Statuspage{on}; not sent",
            u.id
        ))),
        _ => None,
    }
}

/// Where `w` landed, if `list` (all recent incidents when `listed_all`, else
/// the unresolved ones) shows that it was applied.
fn settle(list: &[Listed], listed_all: bool, w: &Write, open: Option<&str>) -> Option<Incident> {
    if let Some(found) = list
        .iter()
        .find(|i| i.operation_id.as_deref() == Some(w.id.as_str()))
    {
        return Some(found.incident.clone());
    }
    // Resolving: the open incident is no longer unresolved, so the write
    // (or someone on Statuspage) resolved it.
    match open {
        Some(open) if w.resolving && !listed_all && !list.iter().any(|i| i.incident.id == open) => {
            Some(Incident {
                id: open.to_string(),
                shortlink: None,
            })
        }
        _ => None,
    }
}

/// Remembers that `w` is on Statuspage in `incident`.
fn record(memory: &dyn Memory, w: &Write, incident: &Incident) -> Result<(), String> {
    if w.resolving {
        memory.put(keys::INCIDENT_ID, "")?;
    } else {
        memory.put(keys::INCIDENT_ID, &incident.id)?;
    }
    let before = remembered(memory, keys::LAST_SEQ)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    memory.put(keys::LAST_SEQ, &before.max(w.seq).to_string())?;
    forget_pending(memory);
    Ok(())
}

/// `w` is on Statuspage: remembered, reported sent.
fn delivered(memory: &dyn Memory, w: &Write, incident: &Incident, how: &str) -> Outcome {
    if let Err(e) = record(memory, w, incident) {
        return Outcome::Retry {
            reason: format!(
                "unconfirmed: Statuspage has {} in incident {}, but the channel could not \
                 remember it ({e})",
                w.id, incident.id
            ),
            after: None,
            maybe_applied: true,
        };
    }
    let link = incident
        .shortlink
        .as_deref()
        .map(|l| format!(" ({l})"))
        .unwrap_or_default();
    let closed = if w.resolving { "; resolved" } else { "" };
    Outcome::Sent(format!("incident {}{link} {how}{closed}", incident.id))
}

fn remembered(memory: &dyn Memory, key: &str) -> Option<String> {
    memory.get(key).filter(|v| !v.is_empty())
}

/// Best effort: a mark left behind only costs one lookup.
fn forget_pending(memory: &dyn Memory) {
    if let Err(e) = memory.put(keys::PENDING, "") {
        tracing::warn!("statuspage: could not clear the pending mark: {e}");
    }
}

/// Statuspage ids (pages, incidents, components): short, URL-safe.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_base_url(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|e| {
        format!(
            "statuspage base_url {:?} is not a URL: {e}",
            clip(&crate::domain::redact::url_shown(trimmed), 120)
        )
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("statuspage base_url must not contain credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "statuspage base_url {:?} must not have a query or fragment",
            clip(trimmed, 120)
        ));
    }
    let loopback = match url.host_str() {
        Some(host) => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || bare
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        None => {
            return Err(format!(
                "statuspage base_url {:?} has no host",
                clip(trimmed, 120)
            ));
        }
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "statuspage base_url {:?} is plain http: the API key would cross the network \
                 unencrypted; use https",
                clip(trimmed, 120)
            ));
        }
        other => {
            return Err(format!(
                "statuspage base_url {:?}: scheme {other} is not http(s)",
                clip(trimmed, 120)
            ));
        }
    }
    Ok(trimmed.to_string())
}

/// Higher is worse.
fn severity(status: &str) -> u8 {
    match status {
        "major_outage" => 4,
        "partial_outage" => 3,
        "degraded_performance" => 2,
        "under_maintenance" => 1,
        _ => 0,
    }
}

fn json_of(a: &Answer) -> Result<Value, String> {
    if a.truncated {
        return Err(format!(
            "the answer is larger than {MAX_RESPONSE_BYTES} bytes"
        ));
    }
    serde_json::from_slice(&a.body).map_err(|e| format!("the answer is not JSON ({e})"))
}

fn incident_of(v: &Value) -> Result<Incident, String> {
    let obj = v
        .as_object()
        .ok_or("the answer is not an incident object")?;
    let id = match obj.get("id") {
        Some(Value::String(id)) if is_token(id) => id.clone(),
        Some(Value::String(id)) => {
            return Err(format!(
                "the incident id {:?} is not a Statuspage id",
                clip(id, 80)
            ));
        }
        Some(_) => return Err("the incident id is not a string".into()),
        None => return Err("the answer has no incident id".into()),
    };
    let shortlink = obj
        .get("shortlink")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .map(|l| clip(l, 200));
    Ok(Incident { id, shortlink })
}

fn parse_incident(a: &Answer) -> Result<Incident, String> {
    incident_of(&json_of(a)?)
}

fn parse_list(a: &Answer) -> Result<Vec<Listed>, String> {
    let v = json_of(a)?;
    let items = v
        .as_array()
        .ok_or("the answer is not a list of incidents")?;
    // Entries without a usable id are skipped: they cannot be ours.
    Ok(items
        .iter()
        .filter_map(|item| {
            let incident = incident_of(item).ok()?;
            let operation_id = item
                .pointer("/metadata/warroom/operation_id")
                .and_then(Value::as_str)
                .map(str::to_string);
            Some(Listed {
                incident,
                operation_id,
            })
        })
        .collect())
}

/// The server's message (`{"message": ..}`, `{"error": ..}`), quoted inert
/// and short; or what the answer was instead.
fn describe(a: &Answer) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(&a.body) {
        let m = v
            .get("message")
            .or_else(|| v.get("error"))
            .or_else(|| v.get("errors"));
        let text = match m {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Some(other) => Some(other.to_string()),
            None => None,
        };
        if let Some(t) = text.filter(|t| !t.trim().is_empty()) {
            return clip(&t, MAX_MESSAGE_CHARS);
        }
    }
    if a.body.is_empty() {
        return "no message".into();
    }
    match std::str::from_utf8(&a.body) {
        Ok(text) if !text.trim_start().starts_with('<') => {
            format!("answer: {}", clip(text.trim(), 120))
        }
        _ => format!("an answer of {} bytes that is not a message", a.body.len()),
    }
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
    use chrono::TimeZone;

    fn cfg() -> StatuspageConfig {
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

    fn update() -> Update {
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

    use chrono::Utc;

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
            let e = Statuspage::new(c).unwrap_err();
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
    fn body_maps_components_and_leaves_out_unmapped_ones() {
        let s = Statuspage::new(cfg()).unwrap();
        let c = s.compose(&update());
        assert!(c.problems.is_empty());
        let v: Value = serde_json::from_str(&c.json).unwrap();
        let i = &v["incident"];
        assert_eq!(i["name"], "IMAP logins failing");
        assert_eq!(i["status"], "investigating");
        assert_eq!(i["component_ids"], serde_json::json!(["cmpimap"]));
        assert_eq!(
            i["components"],
            serde_json::json!({"cmpimap": "major_outage"})
        );
        assert_eq!(i["deliver_notifications"], true);
        assert_eq!(i["metadata"]["warroom"]["operation_id"], "su-000001");
        assert!(c.notes.iter().any(|n| n.contains("pop3")), "{:?}", c.notes);
    }

    #[test]
    fn two_components_on_one_statuspage_component_show_the_worse() {
        let s = Statuspage::new(cfg()).unwrap();
        let mut u = update();
        u.components = vec![
            ("smtp-in".into(), "degraded_performance".into()),
            ("smtp-out".into(), "major_outage".into()),
            ("smtp-in".into(), "operational".into()),
        ];
        let v: Value = serde_json::from_str(&s.compose(&u).json).unwrap();
        assert_eq!(
            v["incident"]["component_ids"],
            serde_json::json!(["cmpmail"])
        );
        assert_eq!(v["incident"]["components"]["cmpmail"], "major_outage");
    }

    #[test]
    fn limits_and_unknown_statuses_are_problems() {
        let s = Statuspage::new(cfg()).unwrap();
        let mut u = update();
        u.title = "x".repeat(255);
        assert!(s.compose(&u).problems.is_empty());
        u.title = "x".repeat(256);
        let p = s.compose(&u).problems;
        assert!(p[0].contains("256") && p[0].contains("255"), "{p:?}");
        u.title = "t".into();
        u.body = "é".repeat(MAX_BODY_CHARS);
        assert!(s.compose(&u).problems.is_empty(), "characters, not bytes");
        u.body.push('x');
        assert!(s.compose(&u).problems[0].contains("25000"));
        u.body = "b".into();
        u.components = vec![("imap".into(), "on_fire".into())];
        assert!(s.compose(&u).problems[0].contains("on_fire"));
        u.components.clear();
        u.title = " ".into();
        assert!(s.compose(&u).problems[0].contains("empty"));
    }

    #[test]
    fn drills_say_so_and_do_not_notify() {
        let s = Statuspage::new(cfg()).unwrap();
        let mut u = update();
        u.simulated = true;
        u.next_update = Some(Utc.with_ymd_and_hms(2026, 11, 30, 1, 30, 0).unwrap());
        let v: Value = serde_json::from_str(&s.compose(&u).json).unwrap();
        assert!(
            v["incident"]["name"]
                .as_str()
                .unwrap()
                .starts_with("[SIMULATED]")
        );
        let body = v["incident"]["body"].as_str().unwrap();
        assert!(body.starts_with("[SIMULATED"));
        assert!(body.ends_with("Next update by 2026-11-30 01:30 UTC."));
        assert_eq!(v["incident"]["deliver_notifications"], false);
        // The marker counts towards the limit.
        u.title = "x".repeat(250);
        assert!(s.compose(&u).problems[0].contains("drill marker"));
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

    #[test]
    fn pending_marks_round_trip_and_garbage_is_ignored() {
        let w = Write {
            seq: 12,
            resolving: true,
            id: "su-000012".into(),
        };
        assert_eq!(w.encode(), "12 resolved su-000012");
        assert_eq!(Write::decode(&w.encode()), Some(w));
        assert_eq!(
            Write::decode("3 open su-000003").map(|w| (w.seq, w.resolving)),
            Some((3, false))
        );
        for bad in [
            "",
            "su-000003",
            "x open su-1",
            "3 closed su-1",
            "3 open",
            "3 open ",
        ] {
            assert_eq!(Write::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn repeats_and_older_updates_send_nothing() {
        let mut u = update();
        u.seq = 3;
        assert_eq!(already(&u, None, None), None);
        assert_eq!(already(&u, Some(2), Some("abc")), None);
        let Some(Outcome::Sent(s)) = already(&u, Some(3), Some("abc")) else {
            panic!()
        };
        assert!(s.contains("already delivered") && s.contains("abc"), "{s}");
        let Some(Outcome::Sent(s)) = already(&u, Some(4), None) else {
            panic!()
        };
        assert!(s.contains("#4"), "{s}");
    }

    #[test]
    fn settling_an_unconfirmed_write() {
        let listed = |id: &str, op: Option<&str>| Listed {
            incident: Incident {
                id: id.into(),
                shortlink: None,
            },
            operation_id: op.map(str::to_string),
        };
        let w = |resolving| Write {
            seq: 2,
            resolving,
            id: "su-000002".into(),
        };
        let list = [
            listed("a", Some("su-000001")),
            listed("b", Some("su-000002")),
        ];
        assert_eq!(settle(&list, false, &w(false), Some("a")).unwrap().id, "b");
        let list = [listed("a", Some("su-000001"))];
        assert_eq!(settle(&list, false, &w(false), Some("a")), None);
        // Resolving "a": still unresolved, so not applied…
        assert_eq!(settle(&list, false, &w(true), Some("a")), None);
        // …gone from the unresolved list, so applied.
        assert_eq!(settle(&[], false, &w(true), Some("a")).unwrap().id, "a");
        // A list of all incidents says nothing by absence.
        assert_eq!(settle(&[], true, &w(true), Some("a")), None);
        assert_eq!(settle(&[], false, &w(true), None), None);
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            truncated: false,
        }
    }

    #[test]
    fn odd_answers_are_reasons_not_panics() {
        assert!(
            parse_incident(&answer(201, "<html>"))
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(
            parse_incident(&answer(201, "[]"))
                .unwrap_err()
                .contains("not an incident")
        );
        assert!(
            parse_incident(&answer(201, "{}"))
                .unwrap_err()
                .contains("no incident id")
        );
        assert!(
            parse_incident(&answer(201, r#"{"id": 7}"#))
                .unwrap_err()
                .contains("not a string")
        );
        assert!(
            parse_incident(&answer(201, r#"{"id": "../../x"}"#))
                .unwrap_err()
                .contains("not a Statuspage id")
        );
        assert_eq!(
            parse_incident(&answer(
                201,
                r#"{"id": "abc", "shortlink": "https://stspg.io/x"}"#
            )),
            Ok(Incident {
                id: "abc".into(),
                shortlink: Some("https://stspg.io/x".into())
            })
        );
        assert!(parse_list(&answer(200, "{}")).is_err());
        let l = parse_list(&answer(
            200,
            r#"[1, {"id": "a"}, {"id": "b", "metadata": {"warroom": {"operation_id": "su-1"}}}]"#,
        ))
        .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].operation_id.as_deref(), Some("su-1"));
        assert_eq!(
            describe(&answer(422, r#"{"message": "Name is too long"}"#)),
            "Name is too long"
        );
        assert_eq!(describe(&answer(422, r#"{"error": ["a", "b"]}"#)), "a; b");
        assert_eq!(describe(&answer(500, "")), "no message");
        assert!(describe(&answer(502, "<html>bad gateway</html>")).contains("not a message"));
        assert_eq!(describe(&answer(500, "\x1b[2Joops")), "answer: ␛[2Joops");
    }
}
