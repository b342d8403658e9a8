//! One call each to the gateway, with its deadline, its answer in domain
//! types and its failure in words: what the console's background tasks
//! (`events`) and the command line both run.

use super::types::{MailboxQuery, Me, PriorityRequest};
use super::{CallFailed, GatewayClient, refusal, within};
use crate::api::{self, pb};
use crate::domain::MailboxRow;
use crate::domain::priority::{AuditEvent, PriorityDecision};
use crate::domain::status::Draft;
use crate::domain::trends::History;

pub use super::draft::Finding;

fn findings_from_pb(f: &[pb::LintFinding]) -> Vec<Finding> {
    f.iter()
        .map(|f| Finding {
            error: f.error,
            field: f.field.clone(),
            message: f.message.clone(),
        })
        .collect()
}

/// The `field` of the last finding of a refusal that could not carry them
/// all: its message says how many more there are.
pub const MORE_FINDINGS: &str = "more";

/// Lint findings carried in a refusal's details, if any; when the gateway
/// left some out (the details must fit in the trailers), a last finding
/// with the field `MORE_FINDINGS` says how many.
fn refused_findings(s: &tonic::Status) -> Vec<Finding> {
    let Ok(r) = <pb::PreviewStatusUpdateResponse as prost::Message>::decode(s.details()) else {
        return Vec::new();
    };
    let mut out = findings_from_pb(&r.findings);
    if r.findings_left_out > 0 {
        out.push(Finding {
            error: out.last().is_some_and(|f| f.error),
            field: MORE_FINDINGS.into(),
            message: format!(
                "and {} more not shown here; a preview lists them all",
                r.findings_left_out
            ),
        });
    }
    out
}

/// A draft as the gateway takes it (the inverse of `api::draft_from_pb`):
/// no audience, every channel.
fn draft_to_pb(d: &Draft) -> pb::StatusUpdateDraft {
    pb::StatusUpdateDraft {
        state: api::incident_state_to_pb(d.state) as i32,
        title: d.title.clone(),
        body: d.body.clone(),
        components: d
            .components
            .iter()
            .map(|(component_id, status)| pb::ComponentStatus {
                component_id: component_id.clone(),
                status: status.clone(),
            })
            .collect(),
        next_update_at: d.next_update.map(api::ts),
        audience_tenant_id: String::new(),
        channels: Vec::new(),
    }
}

/// What each channel would receive for `draft`, and the lint findings.
pub async fn preview(client: &GatewayClient, draft: &Draft) -> Result<PreviewAnswer, String> {
    let request = pb::PreviewStatusUpdateRequest {
        draft: Some(draft_to_pb(draft)),
    };
    within(30, client.raw().preview_status_update(request))
        .await
        .map(|r| {
            (
                findings_from_pb(&r.findings),
                r.previews
                    .into_iter()
                    .map(|p| (p.channel, p.content_type, p.content))
                    .collect(),
            )
        })
        .map_err(|f| f.refusal())
}

/// Publishes once per operation id: a retry after a lost answer is safe.
pub async fn publish(
    client: &GatewayClient,
    draft: &Draft,
    operation_id: String,
    confirm_warnings: bool,
) -> Result<pb::StatusUpdate, (String, Vec<Finding>)> {
    let request = pb::PublishStatusUpdateRequest {
        draft: Some(draft_to_pb(draft)),
        operation_id,
        confirm_warnings,
    };
    match within(30, client.raw().publish_status_update(request)).await {
        Ok(r) => r.update.ok_or_else(|| {
            (
                "the gateway's answer has no update in it".to_string(),
                Vec::new(),
            )
        }),
        Err(CallFailed::Status(s)) => Err((refusal(&s), refused_findings(&s))),
        Err(silent) => Err((
            format!(
                "{}; publishing again with the same draft publishes once",
                silent.describe()
            ),
            Vec::new(),
        )),
    }
}

/// Lint findings and (channel, content type, content) per channel.
pub type PreviewAnswer = (Vec<Finding>, Vec<(String, String, String)>);

/// Why the gateway refused a priority, and (on a stale version) what the
/// priority is now.
#[derive(Debug, Clone)]
pub struct PriorityRefused {
    pub message: String,
    pub current: Option<PriorityDecision>,
}

/// One priority decision; a refusal says why, and on a stale version what
/// the priority is now (from the status details).
pub async fn set_priority(
    client: &GatewayClient,
    request: &PriorityRequest,
) -> Result<PriorityDecision, PriorityRefused> {
    match within(10, client.raw().set_tenant_priority(request.to_pb())).await {
        Ok(r) => r
            .priority
            .as_ref()
            .and_then(api::decision_from_pb)
            .ok_or_else(|| PriorityRefused {
                message: "the gateway's answer has no decision in it".into(),
                current: None,
            }),
        Err(CallFailed::Status(s)) => Err(PriorityRefused {
            message: refusal(&s),
            current: <pb::TenantPriority as prost::Message>::decode(s.details())
                .ok()
                .as_ref()
                .and_then(api::decision_from_pb),
        }),
        Err(silent) => Err(PriorityRefused {
            message: format!(
                "{}; the change may or may not have been made: check the timeline",
                silent.describe()
            ),
            current: None,
        }),
    }
}

/// Every audit event after the one with id `after_id` (0: all), oldest
/// first (at most 100,000).
pub async fn audit_events(
    client: &GatewayClient,
    after_id: u64,
) -> Result<Vec<AuditEvent>, String> {
    let mut raw = client.raw();
    let mut events = Vec::new();
    let mut token = String::new();
    loop {
        let request = pb::ListAuditEventsRequest {
            page_size: 1_000,
            page_token: token,
            after_id,
        };
        let page = within(10, raw.list_audit_events(request))
            .await
            .map_err(|f| f.describe())?;
        events.extend(page.events.iter().map(api::audit_from_pb));
        token = page.next_page_token;
        if token.is_empty() || events.len() >= 100_000 {
            return Ok(events);
        }
    }
}

/// One page of a tenant's mailboxes: the rows, the next page's token
/// (empty: the last page) and how many there are in all.
pub async fn mailboxes(
    client: &GatewayClient,
    query: MailboxQuery,
) -> Result<(Vec<MailboxRow>, String, u64), String> {
    within(10, client.raw().list_mailboxes(query.to_pb()))
        .await
        .map(|r| {
            (
                r.mailboxes.iter().map(api::mailbox_from_pb).collect(),
                r.next_page_token,
                r.total_size,
            )
        })
        .map_err(|f| f.describe())
}

/// Who the gateway says this client is.
pub async fn who_am_i(client: &GatewayClient) -> Result<Me, String> {
    within(10, client.raw().who_am_i(pb::WhoAmIRequest {}))
        .await
        .map(|r| Me {
            name: r.name,
            role: api::access_role_from_pb(r.role),
            authenticated: r.authenticated,
        })
        .map_err(|f| f.describe())
}

/// The trends, with `tenant_id`'s series unless it is empty.
pub async fn trends(client: &GatewayClient, tenant_id: String) -> Result<History, String> {
    let mut raw = client.raw();
    within(10, raw.get_trends(pb::GetTrendsRequest { tenant_id }))
        .await
        .map(|r| api::trends_from_pb(&r))
        .map_err(|f| f.describe())
}
