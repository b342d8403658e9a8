//! The `warroom.v1.WarRoom` gRPC service: Watch streams from the hub, the
//! queries read the source under the hub's read lock on a blocking thread
//! (a large query must not stall the async runtime).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt, future};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::auth::Access;
use super::hub::{DecisionError, Hub, PriorityRequest, SourceView};
use super::publish::{self, PublishError, finding_to_pb};
use crate::api::{self, pb};
use crate::domain::MailboxState;
use crate::domain::priority::Role;
use crate::sources::{LookupHit, LookupMatch, MailboxQuery};
use crate::store::StoreError;

/// Longest accepted filter or lookup query, in bytes.
pub(crate) const MAX_QUERY_BYTES: usize = 512;
pub(crate) const DEFAULT_PAGE: usize = 100;
pub(crate) const MAX_PAGE: usize = 1_000;

pub(crate) struct WarRoomService {
    hub: Arc<Hub>,
    access: Arc<Access>,
}

impl WarRoomService {
    pub(crate) fn new(hub: Arc<Hub>, access: Arc<Access>) -> Self {
        WarRoomService { hub, access }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Hub) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let hub = self.hub.clone();
        tokio::task::spawn_blocking(move || f(&hub))
            .await
            .map_err(|e| Status::internal(format!("query failed: {e}")))?
    }
}

fn page_size(requested: u32) -> usize {
    match requested as usize {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

/// Page tokens are opaque to clients; inside they are an offset.
fn parse_token(token: &str) -> Result<usize, Status> {
    if token.is_empty() {
        return Ok(0);
    }
    token
        .strip_prefix('o')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Status::invalid_argument("page_token is not one this gateway issued"))
}

fn next_token(offset: usize, returned: usize, total: usize) -> String {
    let next = offset + returned;
    if returned > 0 && next < total {
        format!("o{next}")
    } else {
        String::new()
    }
}

fn check_text(field: &str, value: &str) -> Result<(), Status> {
    if value.len() > MAX_QUERY_BYTES {
        return Err(Status::invalid_argument(format!(
            "{field} is {} bytes; the limit is {MAX_QUERY_BYTES}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

/// A refused decision as the caller should see it. A stale version carries
/// the current decision (encoded `TenantPriority`) in the status details, so
/// a client can show it and retry without another call.
fn decision_status(e: DecisionError) -> Status {
    match e {
        DecisionError::Invalid(why) => Status::invalid_argument(why),
        DecisionError::UnknownTenant(id) => {
            Status::invalid_argument(format!("unknown tenant {id:?}"))
        }
        DecisionError::Store(StoreError::Conflict { expected, current }) => {
            let (now, details) = match &current {
                Some(c) => (
                    format!(
                        "it is now {} (version {}), set by {} at {} UTC: {}",
                        c.label(),
                        c.version,
                        c.set_by,
                        c.set_at.format("%Y-%m-%d %H:%M:%S"),
                        c.reason
                    ),
                    prost::Message::encode_to_vec(&api::decision_to_pb(c)),
                ),
                None => ("nobody has set it yet (version 0)".to_string(), Vec::new()),
            };
            Status::with_details(
                tonic::Code::FailedPrecondition,
                format!(
                    "the priority changed since you saw it (you sent version {expected}); {now}"
                ),
                details.into(),
            )
        }
        DecisionError::Store(e) => Status::unavailable(e.to_string()),
    }
}

/// What the wire allows of a draft before the lint looks at it.
fn check_draft(d: Option<pb::StatusUpdateDraft>) -> Result<crate::domain::status::Draft, Status> {
    let d = d.ok_or_else(|| Status::invalid_argument("draft is required"))?;
    if !d.audience_tenant_id.is_empty() {
        return Err(Status::invalid_argument(
            "audience_tenant_id is not supported: every affected tenant gets its own slice by e-mail",
        ));
    }
    if !d.channels.is_empty() {
        return Err(Status::invalid_argument(
            "choosing channels per update is not supported: an update goes to every configured channel",
        ));
    }
    if pb::IncidentState::try_from(d.state).map_or(true, |s| s == pb::IncidentState::Unspecified) {
        return Err(Status::invalid_argument(format!(
            "state {} is out of range: investigating (1) to resolved (4)",
            d.state
        )));
    }
    if let Some(t) = d
        .next_update_at
        .as_ref()
        .filter(|t| api::from_ts(Some(t)).is_none())
    {
        return Err(Status::invalid_argument(format!(
            "next_update_at ({} s, {} ns) is out of range: give a time after now and at most 24 h ahead",
            t.seconds, t.nanos
        )));
    }
    Ok(api::draft_from_pb(&d))
}

/// Lint errors: a short summary as the message, the findings as details
/// (an encoded `PreviewStatusUpdateResponse`, bounded to fit the trailers).
fn publish_status(e: PublishError) -> Status {
    let with_findings = |code, msg: String, f: &[crate::domain::status::Finding]| {
        let details = prost::Message::encode_to_vec(&publish::refusal_details(f));
        Status::with_details(code, msg, details.into())
    };
    let msg = e.to_string();
    match e {
        PublishError::Lint(f) => with_findings(tonic::Code::InvalidArgument, msg, &f),
        PublishError::Unconfirmed(f) => with_findings(
            tonic::Code::FailedPrecondition,
            format!("{msg}; publish again with confirm_warnings to go ahead"),
            &f,
        ),
        PublishError::Invalid(why) => Status::invalid_argument(why),
        PublishError::Store(e) => Status::unavailable(e.to_string()),
    }
}

/// Tenants already converted for the answers of one `LookupMany` batch (a
/// bulk lookup's mailboxes mostly share a few tenants: each is read and
/// converted once).
type Tenants = HashMap<String, Option<pb::TenantSummary>>;

/// One query's answer. `tenants`: the batch's converted tenants, for
/// `LookupMany`; a single `Lookup` passes none, and a tenant that owns
/// several of its mailboxes is copied from the match that has it already
/// (no map to fill and drop for one answer of up to 20 rows).
fn lookup_answer(
    view: &SourceView<'_>,
    query: &str,
    limit: usize,
    mut tenants: Option<&mut Tenants>,
) -> pb::LookupResponse {
    let answer = view.source().lookup(query, limit);
    let mut matches: Vec<pb::LookupMatch> = Vec::with_capacity(answer.matches.len());
    for LookupMatch { hit, quality } in answer.matches {
        let quality = api::match_quality_to_pb(quality) as i32;
        let m = match hit {
            LookupHit::Mailbox(m) => {
                // The owner too, so an answer can name the tenant.
                let earlier = matches.iter().find_map(|x| {
                    x.tenant
                        .as_ref()
                        .filter(|t| x.kind == pb::MatchKind::Mailbox as i32 && t.id == m.tenant_id)
                });
                let tenant = match (earlier, tenants.as_deref_mut()) {
                    (Some(t), _) => Some(t.clone()),
                    (None, Some(cache)) => match cache.get(&m.tenant_id) {
                        Some(t) => t.clone(),
                        None => {
                            let t = mailbox_tenant(view, &m.tenant_id);
                            cache.insert(m.tenant_id.clone(), t.clone());
                            t
                        }
                    },
                    (None, None) => mailbox_tenant(view, &m.tenant_id),
                };
                pb::LookupMatch {
                    kind: pb::MatchKind::Mailbox as i32,
                    tenant,
                    mailbox: Some(api::mailbox_into_pb(m)),
                    quality,
                    ..Default::default()
                }
            }
            LookupHit::Domain { domain, tenant } => pb::LookupMatch {
                kind: pb::MatchKind::Domain as i32,
                tenant: Some(api::tenant_to_pb(&tenant)),
                domain,
                quality,
                ..Default::default()
            },
            LookupHit::Tenant(t) => pb::LookupMatch {
                kind: pb::MatchKind::Tenant as i32,
                tenant: Some(api::tenant_to_pb(&t)),
                quality,
                ..Default::default()
            },
        };
        matches.push(m);
    }
    pb::LookupResponse {
        matches,
        version: view.version(),
        total: Some(answer.total as u64),
        total_is_lower_bound: answer.total_is_lower_bound,
    }
}

/// The owner of a found mailbox, as an answer shows it.
fn mailbox_tenant(view: &SourceView<'_>, id: &str) -> Option<pb::TenantSummary> {
    view.source().tenant(id).map(|t| api::tenant_to_pb(&t))
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchUpdate, Status>> + Send>>;
type LookupManyStream = Pin<Box<dyn Stream<Item = Result<pb::LookupManyResponse, Status>> + Send>>;

/// Queries per `LookupManyRequest` message.
pub(crate) const MAX_LOOKUP_BATCH: usize = 1_000;
/// Matches per query in `LookupMany`.
const MAX_LOOKUP_MANY_LIMIT: usize = 20;

/// A batch's matches per query, or why the whole batch is refused.
fn check_batch(batch: &pb::LookupManyRequest) -> Result<usize, Status> {
    if batch.queries.len() > MAX_LOOKUP_BATCH {
        return Err(Status::invalid_argument(format!(
            "{} queries in one message; at most {MAX_LOOKUP_BATCH}: send more messages",
            batch.queries.len()
        )));
    }
    Ok(match batch.limit {
        0 => 1,
        n => (n as usize).min(MAX_LOOKUP_MANY_LIMIT),
    })
}

/// One query of a batch: its answer, or why it was not looked up.
fn lookup_result(
    view: &SourceView<'_>,
    query: &str,
    limit: usize,
    tenants: &mut Tenants,
) -> pb::LookupResult {
    let refused = if query.trim().is_empty() {
        Err(Status::invalid_argument("query is empty"))
    } else {
        check_text("query", query)
    };
    match refused {
        Ok(()) => pb::LookupResult {
            answer: Some(lookup_answer(view, query, limit, Some(tenants))),
            error: String::new(),
        },
        Err(status) => pb::LookupResult {
            answer: None,
            error: status.message().to_string(),
        },
    }
}

/// One batch of a `LookupMany` stream: one result per query, in order.
fn answer_batch(hub: &Hub, batch: &pb::LookupManyRequest, limit: usize) -> pb::LookupManyResponse {
    let view = hub.view();
    let mut tenants = Tenants::new();
    let results = batch
        .queries
        .iter()
        .map(|q| lookup_result(&view, q, limit, &mut tenants))
        .collect();
    pb::LookupManyResponse { results }
}

#[tonic::async_trait]
impl pb::war_room_server::WarRoom for WarRoomService {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // Served by `super::watch` (one encoding per update for every
        // stream); the router never sends Watch here.
        Err(Status::internal("Watch is served by the gateway's router"))
    }

    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        self.access.reader(request.metadata())?;
        let r = request.into_inner();
        check_text("filter", &r.filter)?;
        let offset = parse_token(&r.page_token)?;
        let limit = page_size(r.page_size);
        let sort = api::tenant_sort_from_pb(r.sort);
        self.blocking(move |hub| {
            let view = hub.view();
            let page = view.source().list_tenants(
                &r.filter,
                r.affected_only,
                sort,
                r.reverse,
                offset,
                limit,
            );
            Ok(Response::new(pb::ListTenantsResponse {
                next_page_token: next_token(offset, page.rows.len(), page.total),
                tenants: page.rows.iter().map(api::tenant_to_pb).collect(),
                total_size: page.total as u64,
                version: view.version(),
            }))
        })
        .await
    }

    async fn get_trends(
        &self,
        request: Request<pb::GetTrendsRequest>,
    ) -> Result<Response<pb::GetTrendsResponse>, Status> {
        self.access.reader(request.metadata())?;
        let r = request.into_inner();
        if !r.tenant_id.is_empty() {
            check_text("tenant_id", &r.tenant_id)?;
        }
        self.blocking(move |hub| {
            let view = hub.view();
            let trends = view.trends();
            let tenant =
                match r.tenant_id.as_str() {
                    "" => None,
                    id => Some(trends.tenant(id).ok_or_else(|| {
                        Status::not_found(format!("no tenant {id:?} in the trends"))
                    })?),
                };
            Ok(Response::new(api::trends_to_pb(
                trends,
                tenant.as_deref(),
                &r.tenant_id,
            )))
        })
        .await
    }

    async fn list_mailboxes(
        &self,
        request: Request<pb::ListMailboxesRequest>,
    ) -> Result<Response<pb::ListMailboxesResponse>, Status> {
        self.access.reader(request.metadata())?;
        let r = request.into_inner();
        if r.tenant_id.is_empty() {
            return Err(Status::invalid_argument("tenant_id is required"));
        }
        check_text("tenant_id", &r.tenant_id)?;
        let states = r
            .states
            .iter()
            .map(|&s| {
                api::mailbox_state_from_pb(s)
                    .ok_or_else(|| Status::invalid_argument(format!("unknown mailbox state {s}")))
            })
            .collect::<Result<Vec<MailboxState>, Status>>()?;
        let q = MailboxQuery {
            tenant_id: r.tenant_id,
            states,
            sort_by_eta: r.sort == pb::MailboxSort::Eta as i32,
            offset: parse_token(&r.page_token)?,
            limit: page_size(r.page_size),
        };
        self.blocking(move |hub| {
            let view = hub.view();
            let page = view
                .source()
                .mailboxes(&q)
                .map_err(|e| Status::not_found(e.to_string()))?;
            Ok(Response::new(pb::ListMailboxesResponse {
                next_page_token: next_token(q.offset, page.rows.len(), page.total),
                mailboxes: page.rows.iter().map(api::mailbox_to_pb).collect(),
                total_size: page.total as u64,
                version: view.version(),
            }))
        })
        .await
    }

    async fn lookup(
        &self,
        request: Request<pb::LookupRequest>,
    ) -> Result<Response<pb::LookupResponse>, Status> {
        self.access.reader(request.metadata())?;
        let r = request.into_inner();
        if r.query.trim().is_empty() {
            return Err(Status::invalid_argument(
                "query is empty: give a mailbox address, a domain, or a tenant id or name",
            ));
        }
        check_text("query", &r.query)?;
        let limit = match r.limit {
            0 => 20,
            n => (n as usize).min(100),
        };
        // A lookup takes microseconds (tens for a misspelling): answered
        // on the async thread when the source is free, which saves a
        // blocking-pool hand-off per call; behind a tick's write lock it
        // waits on the blocking pool instead, never stalling the runtime.
        if let Some(view) = self.hub.try_view() {
            let answer = lookup_answer(&view, &r.query, limit, None);
            return Ok(Response::new(answer));
        }
        self.blocking(move |hub| {
            let answer = lookup_answer(&hub.view(), &r.query, limit, None);
            Ok(Response::new(answer))
        })
        .await
    }

    type LookupManyStream = LookupManyStream;

    async fn lookup_many(
        &self,
        request: Request<tonic::Streaming<pb::LookupManyRequest>>,
    ) -> Result<Response<Self::LookupManyStream>, Status> {
        self.access.reader(request.metadata())?;
        let inbound = request.into_inner();
        let hub = self.hub.clone();
        // Two batches answered at once, each on a blocking thread (a bulk
        // lookup is bound by the source's lookups: one batch at a time left
        // the second core to the client alone), sent in order; the next is
        // read once an answer is queued, so a slow reader holds the sender
        // back, not memory (two batches in the works, one queued).
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            let answers = inbound.map(|batch| {
                let batch = batch.and_then(|b| check_batch(&b).map(|limit| (b, limit)));
                let (batch, limit) = match batch {
                    Ok(b) => b,
                    Err(status) => return future::Either::Left(future::ready(Err(status))),
                };
                let hub = hub.clone();
                let answering =
                    tokio::task::spawn_blocking(move || answer_batch(&hub, &batch, limit));
                future::Either::Right(async move {
                    answering
                        .await
                        .map_err(|e| Status::internal(format!("lookup failed: {e}")))
                })
            });
            let mut answers = std::pin::pin!(answers.buffered(2));
            while let Some(answered) = answers.next().await {
                let failed = answered.is_err();
                if tx.send(answered).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn set_tenant_priority(
        &self,
        request: Request<pb::SetTenantPriorityRequest>,
    ) -> Result<Response<pb::SetTenantPriorityResponse>, Status> {
        let who = self.access.require(
            request.metadata(),
            Role::can_prioritize,
            "setting priorities",
        )?;
        let r = request.into_inner();
        let priority = api::priority_from_pb(r.priority).ok_or_else(|| {
            Status::invalid_argument(format!(
                "priority {} is out of range: P0 ({}) to P3 ({})",
                r.priority,
                pb::Priority::P0 as i32,
                pb::Priority::P3 as i32
            ))
        })?;
        check_text("tenant_id", &r.tenant_id)?;
        let req = PriorityRequest {
            tenant_id: r.tenant_id,
            priority,
            rank: r.rank,
            reason: r.reason,
            expected_version: r.expected_version,
        };
        self.blocking(move |hub| {
            let (decision, row) = hub.set_priority(req, &who.name).map_err(decision_status)?;
            tracing::info!(tenant = %decision.tenant_id, by = %decision.set_by, priority = %decision.label(), version = decision.version, "priority set");
            Ok(Response::new(pb::SetTenantPriorityResponse {
                priority: Some(api::decision_to_pb(&decision)),
                eta: Some(api::eta_to_pb(&row.eta)),
            }))
        })
        .await
    }

    async fn preview_status_update(
        &self,
        request: Request<pb::PreviewStatusUpdateRequest>,
    ) -> Result<Response<pb::PreviewStatusUpdateResponse>, Status> {
        let who = self.access.require(
            request.metadata(),
            Role::can_publish,
            "publishing status updates",
        )?;
        let draft = check_draft(request.into_inner().draft)?;
        self.blocking(move |hub| {
            let (findings, previews) = hub.preview(&draft, &who.name).map_err(publish_status)?;
            Ok(Response::new(pb::PreviewStatusUpdateResponse {
                findings: findings.iter().map(finding_to_pb).collect(),
                previews: previews
                    .into_iter()
                    .map(|p| pb::ChannelPreview {
                        channel: p.channel,
                        content_type: p.content_type,
                        content: p.content,
                    })
                    .collect(),
                findings_left_out: 0,
            }))
        })
        .await
    }

    async fn publish_status_update(
        &self,
        request: Request<pb::PublishStatusUpdateRequest>,
    ) -> Result<Response<pb::PublishStatusUpdateResponse>, Status> {
        let who = self.access.require(
            request.metadata(),
            Role::can_publish,
            "publishing status updates",
        )?;
        let r = request.into_inner();
        let draft = check_draft(r.draft)?;
        self.blocking(move |hub| {
            let (update, deliveries, _fresh) = hub
                .publish(&draft, &r.operation_id, r.confirm_warnings, &who.name)
                .map_err(publish_status)?;
            Ok(Response::new(pb::PublishStatusUpdateResponse {
                update: Some(api::update_to_pb(&update, &deliveries)),
            }))
        })
        .await
    }

    async fn list_status_updates(
        &self,
        request: Request<pb::ListStatusUpdatesRequest>,
    ) -> Result<Response<pb::ListStatusUpdatesResponse>, Status> {
        self.access.reader(request.metadata())?;
        let r = request.into_inner();
        let offset = parse_token(&r.page_token)?;
        let limit = page_size(r.page_size);
        self.blocking(move |hub| {
            let all = hub
                .status_updates()
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let total = all.len();
            let updates: Vec<pb::StatusUpdate> = all
                .iter()
                .skip(offset)
                .take(limit)
                .map(|(u, d)| api::update_to_pb(u, d))
                .collect();
            Ok(Response::new(pb::ListStatusUpdatesResponse {
                next_page_token: next_token(offset, updates.len(), total),
                updates,
            }))
        })
        .await
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        self.access.reader(request.metadata())?;
        let r = request.into_inner();
        // Tokens are the id of the last event of the previous page.
        let after = if r.page_token.is_empty() {
            r.after_id
        } else {
            parse_token(&r.page_token)? as u64
        };
        let limit = page_size(r.page_size);
        self.blocking(move |hub| {
            let events = hub
                .audit_events(after, limit)
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let next_page_token = match events.last() {
                Some(last) if events.len() == limit => format!("o{}", last.id),
                _ => String::new(),
            };
            Ok(Response::new(pb::ListAuditEventsResponse {
                events: events.iter().map(api::audit_to_pb).collect(),
                next_page_token,
            }))
        })
        .await
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let id = self.access.reader(request.metadata())?;
        Ok(Response::new(pb::WhoAmIResponse {
            name: id.name,
            role: api::access_role_to_pb(id.role) as i32,
            authenticated: id.authenticated,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        assert_eq!(parse_token("").unwrap(), 0);
        assert_eq!(parse_token(&next_token(0, 100, 250)).unwrap(), 100);
        assert_eq!(next_token(200, 50, 250), "");
        assert!(parse_token("o-1").is_err());
        assert!(parse_token("garbage").is_err());
    }
}
