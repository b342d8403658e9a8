//! Exactly once: an attempt that first settles any write that may have
//! reached Statuspage without an answer (found by its operation id), then
//! opens or updates the incident, and remembers where each update landed.

use reqwest::{Method, StatusCode};
use tokio::time::Instant;

use super::api::{Incident, Listed, Transport, describe, parse_incident};
use super::{Statuspage, is_token, keys, ms};
use crate::channels::{Delivery, Memory, MemoryError, Outcome, Update, retry_after};
use crate::domain::IncidentState;

impl Statuspage {
    /// One attempt, under the gate.
    pub(super) async fn attempt(
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
}

/// A write to Statuspage, as the pending mark remembers it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Write {
    seq: u64,
    /// It resolves the incident (which then leaves the unresolved list).
    resolving: bool,
    /// The update's id: the operation id in the incident's metadata.
    id: String,
}

impl Write {
    pub(super) fn of(u: &Update) -> Write {
        Write {
            seq: u.seq,
            resolving: u.state == IncidentState::Resolved,
            id: u.id.clone(),
        }
    }

    pub(super) fn encode(&self) -> String {
        let state = if self.resolving { "resolved" } else { "open" };
        format!("{} {state} {}", self.seq, self.id)
    }

    pub(super) fn decode(s: &str) -> Option<Write> {
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
pub(super) fn already(u: &Update, last_seq: Option<u64>, open: Option<&str>) -> Option<Outcome> {
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
pub(super) fn settle(
    list: &[Listed],
    listed_all: bool,
    w: &Write,
    open: Option<&str>,
) -> Option<Incident> {
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
pub(super) fn record(
    memory: &dyn Memory,
    w: &Write,
    incident: &Incident,
) -> Result<(), MemoryError> {
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
pub(super) fn delivered(memory: &dyn Memory, w: &Write, incident: &Incident, how: &str) -> Outcome {
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

pub(super) fn remembered(memory: &dyn Memory, key: &str) -> Option<String> {
    memory.get(key).filter(|v| !v.is_empty())
}

/// Best effort: a mark left behind only costs one lookup.
pub(super) fn forget_pending(memory: &dyn Memory) {
    if let Err(e) = memory.put(keys::PENDING, "") {
        tracing::warn!("statuspage: could not clear the pending mark: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::update;
    use super::*;

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
}
