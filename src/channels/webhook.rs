//! A generic webhook: one JSON POST per update, with a Slack-compatible
//! `text` field and the structured fields beside it. Receivers should use
//! `id` to drop a repeat (a retry after a time-out may deliver twice).

use std::time::Duration;

use serde_json::json;

use super::{Channel, Context, Delivery, Facts, Outcome, Preview, Update, plain_text};

pub struct Webhook {
    url: String,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("webhook url {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("webhook url {url:?} must be http:// or https://"));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(Webhook {
            url: url.to_string(),
            client,
        })
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
