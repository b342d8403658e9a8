//! Status updates, the status board, drafts and trends on the wire.

use super::*;

pub fn update_to_pb(u: &Update, deliveries: &[DeliveryStatus]) -> pb::StatusUpdate {
    pb::StatusUpdate {
        id: u.id.clone(),
        seq: u.seq,
        draft: Some(pb::StatusUpdateDraft {
            state: incident_state_to_pb(u.state) as i32,
            title: u.title.clone(),
            body: u.body.clone(),
            components: u
                .components
                .iter()
                .map(|(id, status)| pb::ComponentStatus {
                    component_id: id.clone(),
                    status: status.clone(),
                })
                .collect(),
            next_update_at: u.next_update.map(ts),
            audience_tenant_id: String::new(),
            channels: Vec::new(),
        }),
        rendered_body: u.body.clone(),
        published_by: u.published_by.clone(),
        published_at: Some(ts(u.published_at)),
        deliveries: deliveries
            .iter()
            .map(|d| pb::Delivery {
                channel: if d.target.is_empty() {
                    d.channel.clone()
                } else {
                    format!("{} {}", d.channel, d.target)
                },
                state: d.state.clone(),
                detail: d.detail.clone(),
                at: Some(ts(d.at)),
            })
            .collect(),
    }
}

/// None when the message is not a published update (no time).
pub fn update_from_pb(u: &pb::StatusUpdate, simulated: bool) -> Option<Update> {
    let d = u.draft.clone().unwrap_or_default();
    Some(Update {
        id: u.id.clone(),
        seq: u.seq,
        operation_id: String::new(),
        state: incident_state_from_pb(d.state),
        title: d.title,
        body: u.rendered_body.clone(),
        components: d
            .components
            .into_iter()
            .map(|c| (c.component_id, c.status))
            .collect(),
        next_update: from_ts(d.next_update_at.as_ref()),
        published_by: u.published_by.clone(),
        published_at: from_ts(u.published_at.as_ref())?,
        simulated,
    })
}

pub fn board_to_pb(b: &StatusBoard) -> pb::StatusBoard {
    pb::StatusBoard {
        latest: b.latest.as_ref().map(|u| update_to_pb(u, &[])),
        page_url: b.page_url.clone(),
        channels: b
            .channels
            .iter()
            .map(|c| pb::ChannelSummary {
                channel: c.channel.clone(),
                pending: c.pending,
                sent: c.sent,
                failed: c.failed,
                last_problem: c.last_problem.clone(),
            })
            .collect(),
        components: b
            .components
            .iter()
            .map(|(id, name)| pb::Component {
                id: id.clone(),
                name: name.clone(),
            })
            .collect(),
    }
}

pub fn board_from_pb(b: Option<&pb::StatusBoard>, simulated: bool) -> StatusBoard {
    let Some(b) = b else {
        return StatusBoard::default();
    };
    StatusBoard {
        latest: b.latest.as_ref().and_then(|u| update_from_pb(u, simulated)),
        page_url: b.page_url.clone(),
        channels: b
            .channels
            .iter()
            .map(|c| ChannelSummary {
                channel: c.channel.clone(),
                pending: c.pending,
                sent: c.sent,
                failed: c.failed,
                last_problem: c.last_problem.clone(),
            })
            .collect(),
        components: b
            .components
            .iter()
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect(),
    }
}

/// A draft as the author wrote it (the gateway lints it).
pub fn draft_from_pb(d: &pb::StatusUpdateDraft) -> crate::domain::status::Draft {
    crate::domain::status::Draft {
        state: incident_state_from_pb(d.state),
        title: d.title.clone(),
        body: d.body.clone(),
        components: d
            .components
            .iter()
            .map(|c| (c.component_id.clone(), c.status.clone()))
            .collect(),
        next_update: from_ts(d.next_update_at.as_ref()),
    }
}

/// The trends (and one tenant's series, aligned with the points).
pub fn trends_to_pb(
    t: &crate::domain::trends::Trends,
    tenant: Option<&[Option<u64>]>,
    tenant_id: &str,
) -> pb::GetTrendsResponse {
    pb::GetTrendsResponse {
        points: t
            .points()
            .iter()
            .enumerate()
            .map(|(i, p)| pb::TrendPoint {
                at: Some(ts(p.at)),
                queue_depth: p.queue_depth,
                affected_mailboxes: p.affected,
                restored_mailboxes: p.restored,
                tenant_affected: tenant.and_then(|s| s.get(i).copied().flatten()),
            })
            .collect(),
        step_seconds: u32::try_from(t.step().num_seconds()).unwrap_or(u32::MAX),
        tenant_id: tenant.map_or_else(String::new, |_| tenant_id.to_string()),
    }
}

/// A gateway's trends; points without a valid time are dropped, and the
/// rest kept in time order whatever order they came in.
pub fn trends_from_pb(r: &pb::GetTrendsResponse) -> crate::domain::trends::History {
    use crate::domain::trends::{History, TrendPoint};
    let mut points: Vec<(TrendPoint, Option<u64>)> = r
        .points
        .iter()
        .filter_map(|p| {
            let at = from_ts(p.at.as_ref())?;
            Some((
                TrendPoint {
                    at,
                    queue_depth: p.queue_depth,
                    affected: p.affected_mailboxes,
                    restored: p.restored_mailboxes,
                },
                p.tenant_affected,
            ))
        })
        .collect();
    points.sort_by_key(|(p, _)| p.at);
    let asked = !r.tenant_id.is_empty();
    History {
        tenant: if asked {
            points.iter().map(|(_, t)| *t).collect()
        } else {
            Vec::new()
        },
        points: points.into_iter().map(|(p, _)| p).collect(),
        tenant_id: r.tenant_id.clone(),
        step: chrono::Duration::seconds(i64::from(r.step_seconds)),
    }
}
