//! The `warroom.v1.WarRoom` gRPC service: Watch streams from the hub, the
//! queries read the source under the hub's read lock on a blocking thread
//! (a large query must not stall the async runtime).

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::hub::Hub;
use crate::api::{self, pb};
use crate::domain::MailboxState;
use crate::sources::{LookupHit, MailboxQuery};

/// Longest accepted filter or lookup query, in bytes.
pub const MAX_QUERY_BYTES: usize = 512;
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1_000;

pub struct WarRoomService {
    hub: Arc<Hub>,
}

impl WarRoomService {
    pub fn new(hub: Arc<Hub>) -> Self {
        WarRoomService { hub }
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

fn not_yet(what: &str, issue: u32) -> Status {
    Status::unimplemented(format!(
        "{what} is part of the warroom.v1 contract but this gateway does not implement it yet (tracked in issue #{issue})"
    ))
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl pb::war_room_server::WarRoom for WarRoomService {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // Subscribe before taking the snapshot, so no change falls between.
        let mut rx = self.hub.subscribe();
        let hub = self.hub.clone();
        let (tx, out) = mpsc::channel(8);
        tokio::spawn(async move {
            let mut seen = 0u64;
            let mut need_snapshot = true;
            loop {
                if need_snapshot {
                    let h = hub.clone();
                    let Ok(snap) = tokio::task::spawn_blocking(move || h.snapshot()).await else {
                        return;
                    };
                    seen = snap.version;
                    if tx.send(Ok(snap)).await.is_err() {
                        return;
                    }
                    need_snapshot = false;
                }
                // Also wake when the watcher goes away: without this a task
                // (and its Arc<Hub>) outlives its client until the next
                // update fails to send, and a stopped gateway never frees.
                let next = tokio::select! {
                    r = rx.recv() => r,
                    _ = tx.closed() => return,
                };
                match next {
                    Ok(u) if u.version > seen => {
                        seen = u.version;
                        if tx.send(Ok((*u).clone())).await.is_err() {
                            return; // the watcher went away
                        }
                    }
                    Ok(_) => {} // already in the snapshot
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(missed = n, "slow watcher resynchronised with a snapshot");
                        need_snapshot = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out))))
    }

    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
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

    async fn list_mailboxes(
        &self,
        request: Request<pb::ListMailboxesRequest>,
    ) -> Result<Response<pb::ListMailboxesResponse>, Status> {
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
        self.blocking(move |hub| {
            let view = hub.view();
            let matches = view
                .source()
                .lookup(&r.query, limit)
                .into_iter()
                .map(|hit| match hit {
                    LookupHit::Mailbox(m) => pb::LookupMatch {
                        kind: pb::MatchKind::Mailbox as i32,
                        mailbox: Some(api::mailbox_to_pb(&m)),
                        ..Default::default()
                    },
                    LookupHit::Domain { domain, tenant } => pb::LookupMatch {
                        kind: pb::MatchKind::Domain as i32,
                        tenant: Some(api::tenant_to_pb(&tenant)),
                        domain,
                        ..Default::default()
                    },
                    LookupHit::Tenant(t) => pb::LookupMatch {
                        kind: pb::MatchKind::Tenant as i32,
                        tenant: Some(api::tenant_to_pb(&t)),
                        ..Default::default()
                    },
                })
                .collect();
            Ok(Response::new(pb::LookupResponse {
                matches,
                version: view.version(),
            }))
        })
        .await
    }

    async fn set_tenant_priority(
        &self,
        _request: Request<pb::SetTenantPriorityRequest>,
    ) -> Result<Response<pb::SetTenantPriorityResponse>, Status> {
        Err(not_yet("SetTenantPriority", 4))
    }

    async fn preview_status_update(
        &self,
        _request: Request<pb::PreviewStatusUpdateRequest>,
    ) -> Result<Response<pb::PreviewStatusUpdateResponse>, Status> {
        Err(not_yet("PreviewStatusUpdate", 5))
    }

    async fn publish_status_update(
        &self,
        _request: Request<pb::PublishStatusUpdateRequest>,
    ) -> Result<Response<pb::PublishStatusUpdateResponse>, Status> {
        Err(not_yet("PublishStatusUpdate", 5))
    }

    async fn list_status_updates(
        &self,
        _request: Request<pb::ListStatusUpdatesRequest>,
    ) -> Result<Response<pb::ListStatusUpdatesResponse>, Status> {
        Err(not_yet("ListStatusUpdates", 5))
    }

    async fn list_audit_events(
        &self,
        _request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        Err(not_yet("ListAuditEvents", 4))
    }

    async fn who_am_i(
        &self,
        _request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        // Identity and roles arrive with issue #4; until then every caller
        // is an anonymous viewer, and nothing here can mutate state.
        Ok(Response::new(pb::WhoAmIResponse {
            name: "anonymous".into(),
            role: pb::Role::Viewer as i32,
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
