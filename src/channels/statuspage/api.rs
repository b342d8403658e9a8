//! Statuspage's API as the channel calls it: one request at a time at the
//! rate limit, answers read capped, the incident and the list of incidents
//! parsed, and the answers no retry will change told from the others.

use std::time::Duration;

use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use super::{MAX_MESSAGE_CHARS, Statuspage, clip, error_chain, is_token, ms};
use crate::channels::{Outcome, retry_after};

/// Answers larger than this are not read (an unresolved list is far smaller).
const MAX_RESPONSE_BYTES: usize = 4 << 20;

impl Statuspage {
    /// Sends one request, at most one per `min_interval`, and reads the
    /// answer (capped).
    pub(super) async fn send(
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
    pub(super) async fn lookup(
        &self,
        last: &mut Option<Instant>,
        all: bool,
    ) -> Result<Vec<Listed>, Outcome> {
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
    pub(super) fn permanent(&self, a: &Answer, doing: &str) -> Option<Outcome> {
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
}

pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
    pub(super) truncated: bool,
}

pub(super) enum Transport {
    /// No connection: nothing was sent.
    Connect(String),
    TimedOut(String),
    /// Sent, perhaps, and no answer.
    Lost(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Incident {
    pub(super) id: String,
    pub(super) shortlink: Option<String>,
}

pub(super) struct Listed {
    pub(super) incident: Incident,
    pub(super) operation_id: Option<String>,
}

/// Why an answer of Statuspage's could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum AnswerError {
    #[error("the answer is larger than {} bytes", MAX_RESPONSE_BYTES)]
    TooLarge,
    #[error("the answer is not JSON ({0})")]
    NotJson(String),
    #[error("the answer is not an incident object")]
    NotAnIncident,
    #[error("the answer is not a list of incidents")]
    NotAList,
    #[error("the answer has no incident id")]
    NoId,
    #[error("the incident id is not a string")]
    IdNotAString,
    /// Quoted clipped and inert.
    #[error("the incident id {0:?} is not a Statuspage id")]
    NotAnId(String),
}

pub(super) fn json_of(a: &Answer) -> Result<Value, AnswerError> {
    if a.truncated {
        return Err(AnswerError::TooLarge);
    }
    serde_json::from_slice(&a.body).map_err(|e| AnswerError::NotJson(e.to_string()))
}

pub(super) fn incident_of(v: &Value) -> Result<Incident, AnswerError> {
    let obj = v.as_object().ok_or(AnswerError::NotAnIncident)?;
    let id = match obj.get("id") {
        Some(Value::String(id)) if is_token(id) => id.clone(),
        Some(Value::String(id)) => return Err(AnswerError::NotAnId(clip(id, 80))),
        Some(_) => return Err(AnswerError::IdNotAString),
        None => return Err(AnswerError::NoId),
    };
    let shortlink = obj
        .get("shortlink")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .map(|l| clip(l, 200));
    Ok(Incident { id, shortlink })
}

pub(super) fn parse_incident(a: &Answer) -> Result<Incident, AnswerError> {
    incident_of(&json_of(a)?)
}

pub(super) fn parse_list(a: &Answer) -> Result<Vec<Listed>, AnswerError> {
    let v = json_of(a)?;
    let items = v.as_array().ok_or(AnswerError::NotAList)?;
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
pub(super) fn describe(a: &Answer) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
                .to_string()
                .contains("not JSON")
        );
        assert!(
            parse_incident(&answer(201, "[]"))
                .unwrap_err()
                .to_string()
                .contains("not an incident")
        );
        assert!(
            parse_incident(&answer(201, "{}"))
                .unwrap_err()
                .to_string()
                .contains("no incident id")
        );
        assert!(
            parse_incident(&answer(201, r#"{"id": 7}"#))
                .unwrap_err()
                .to_string()
                .contains("not a string")
        );
        assert!(
            parse_incident(&answer(201, r#"{"id": "../../x"}"#))
                .unwrap_err()
                .to_string()
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
