//! A generic webhook: one JSON POST per update, with a Slack-compatible
//! `text` field and the structured fields beside it. Receivers should use
//! `id` to drop a repeat (a retry after a time-out may deliver twice).

use std::time::Duration;

use serde_json::json;

use super::{Channel, Context, Delivery, Facts, Outcome, Preview, Update, plain_text};
use crate::domain::redact::{Redactor, secret_url_shown};

pub struct Webhook {
    url: String,
    client: reqwest::Client,
    /// The URL is the secret (Slack keeps its key in the path): what the
    /// channel says about a delivery never holds its path or query.
    redactor: Redactor,
}

/// Why a webhook is refused. The URL is shown without its secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("webhook url {url:?}: {why}")]
    NotAUrl { url: String, why: String },
    #[error("webhook url {0:?} must be http:// or https://")]
    Scheme(String),
    #[error("webhook client: {0}")]
    Client(String),
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &secret_url_shown(&self.url))
            .finish()
    }
}

impl Webhook {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, ConfigError> {
        let shown = secret_url_shown(url);
        let parsed = reqwest::Url::parse(url).map_err(|e| ConfigError::NotAUrl {
            url: shown.clone(),
            why: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::Scheme(shown));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        // As written and as the HTTP client prints it (normalised).
        let redactor = Redactor::new().secret_url(url).secret_url(parsed.as_str());
        Ok(Webhook {
            url: url.to_string(),
            client,
            redactor,
        })
    }

    /// Where updates go, as it may be shown: scheme and host.
    pub fn shown_url(&self) -> String {
        secret_url_shown(&self.url)
    }

    fn payload(update: &Update) -> serde_json::Value {
        json!({
            "text": plain_text(update),
            "id": update.id,
            "seq": update.seq,
            "state": update.state.as_str(),
            "title": update.title,
            "body": update.body,
            "components": update.components.iter().map(|(id, s)| json!({"id": id, "status": s})).collect::<Vec<_>>(),
            "next_update_at": update.next_update.map(|t| t.to_rfc3339()),
            "published_by": update.published_by,
            "published_at": update.published_at.to_rfc3339(),
            "simulated": update.simulated,
        })
    }
}

#[async_trait::async_trait]
impl Channel for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn preview(&self, update: &Update, _: &dyn Facts) -> Vec<Preview> {
        vec![Preview {
            channel: self.name().into(),
            content_type: "application/json".into(),
            content: serde_json::to_string_pretty(&Self::payload(update)).unwrap_or_default(),
        }]
    }

    async fn deliver(&self, update: &Update, _: &Delivery, _: &Context<'_>) -> Outcome {
        match self.attempt(update).await {
            Outcome::Sent(s) => Outcome::Sent(self.redactor.redact_owned(s)),
            Outcome::Retry {
                reason,
                after,
                maybe_applied,
            } => Outcome::Retry {
                reason: self.redactor.redact_owned(reason),
                after,
                maybe_applied,
            },
            Outcome::Failed(s) => Outcome::Failed(self.redactor.redact_owned(s)),
        }
    }

    fn redact(&self, text: String) -> String {
        self.redactor.redact_owned(text)
    }
}

impl Webhook {
    /// One POST, and what came of it in words that may hold the URL.
    async fn attempt(&self, update: &Update) -> Outcome {
        let sent = self
            .client
            .post(&self.url)
            .header("X-Warroom-Update", &update.id)
            .json(&Self::payload(update))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                Outcome::Sent(format!("HTTP {}", r.status().as_u16()))
            }
            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                let after = super::retry_after(r.headers());
                Outcome::Retry {
                    reason: format!("HTTP {}", r.status().as_u16()),
                    after,
                    maybe_applied: false,
                }
            }
            Ok(r) => Outcome::Failed(format!(
                "the webhook refused it: HTTP {}",
                r.status().as_u16()
            )),
            Err(e) if e.is_timeout() => Outcome::Retry {
                reason: "timed out".into(),
                after: None,
                maybe_applied: false,
            },
            Err(e) => Outcome::Retry {
                reason: format!(
                    "cannot reach the webhook: {}",
                    crate::domain::format::causes(&e)
                ),
                after: None,
                maybe_applied: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_url_that_is_not_http_is_refused_as_the_docs_quote_it() {
        let refused = |url: &str| {
            Webhook::new(url, Duration::from_secs(1))
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(
            refused("ftp://x").as_deref(),
            Some("webhook url \"ftp://x\" must be http:// or https://")
        );
        // What cannot be parsed may hold a secret anywhere: not echoed.
        assert_eq!(
            refused("not a url").as_deref(),
            Some("webhook url \"<redacted>\": relative URL without a base")
        );
        assert!(refused("https://hooks.example/T0/secret").is_none());
    }
}
