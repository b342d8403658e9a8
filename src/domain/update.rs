//! Status updates as data: a published update, the board every console
//! shows, and one outbox row. The channels deliver them (`channels`), the
//! store keeps them, the API carries them, the console draws them; none of
//! those needs another to know their shape.

use chrono::{DateTime, Utc};

use super::IncidentState;

/// A published status update as every channel sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// "su-000001": the gateway's id, stable across retries and restarts.
    pub id: String,
    /// 1 for the first update of this war room, then 2, 3...
    pub seq: u64,
    /// The publisher's operation id (publishing twice with it publishes once).
    pub operation_id: String,
    pub state: IncidentState,
    pub title: String,
    /// The body with its placeholders filled from the figures at publish time.
    pub body: String,
    /// (component id, status) as the author set them.
    pub components: Vec<(String, String)>,
    pub next_update: Option<DateTime<Utc>>,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
    /// A drill: channels should say so.
    pub simulated: bool,
}

/// Deliveries of one channel, counted, for every console's header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelSummary {
    pub channel: String,
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
    pub last_problem: String,
}

/// What every console shows of status updates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusBoard {
    pub latest: Option<Update>,
    pub page_url: String,
    pub channels: Vec<ChannelSummary>,
    /// (id, name) of the components an update may name.
    pub components: Vec<(String, String)>,
}

impl StatusBoard {
    /// When the latest update promised the next one (None when nothing is
    /// promised: no update yet, or the incident is resolved).
    pub fn promised_update(&self) -> Option<DateTime<Utc>> {
        let latest = self.latest.as_ref()?;
        if latest.state == super::IncidentState::Resolved {
            return None;
        }
        latest.next_update
    }
}

/// One outbox row: this update, to this channel, for this target.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: u64,
    pub update_id: String,
    pub channel: String,
    /// Channel-specific; "" for channels with a single destination. For
    /// e-mail: "TENANT_ID CONTACT_ADDRESS".
    pub target: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// What the last attempt said (e.g. "timed out"), "" on the first.
    pub last_detail: String,
    /// The last attempt may have taken effect on the other side although
    /// it was not confirmed (see `channels::Outcome::Retry`).
    pub maybe_applied: bool,
}

/// Where one delivery stands.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryStatus {
    pub id: u64,
    pub update_id: String,
    pub channel: String,
    pub target: String,
    /// pending, sent or failed.
    pub state: String,
    pub attempts: u32,
    pub detail: String,
    pub at: DateTime<Utc>,
}
