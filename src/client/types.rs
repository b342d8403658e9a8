//! What the client hands the console and takes from it, in domain types:
//! the wire's messages (`api::pb`) stop here.

use chrono::{DateTime, Utc};

use crate::api::{self, pb};
use crate::domain::priority::Role;
use crate::domain::update::StatusBoard;
use crate::domain::{MailboxState, Overview, Priority, TenantRow};

/// One Watch message, decoded: a snapshot (every tenant) or a delta (the
/// tenants that changed since `version - 1`).
#[derive(Debug, Clone, Default)]
pub struct Update {
    pub version: u64,
    pub snapshot: bool,
    /// The gateway run the data comes from; a snapshot carries it.
    pub run: Option<Run>,
    pub overview: Overview,
    /// The status board; None: unchanged since the last update (a delta
    /// without a board keeps the one held).
    pub board: Option<StatusBoard>,
    pub tenants: Vec<TenantRow>,
}

/// One run of a gateway process (`GatewayRun`).
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: String,
    pub started_at: Option<DateTime<Utc>>,
    /// When it became leader after following another replica: a new run
    /// with it is a takeover, not a restart.
    pub took_over_at: Option<DateTime<Utc>>,
}

impl Update {
    pub fn from_pb(u: &pb::WatchUpdate) -> Self {
        let overview = api::overview_from_pb(u);
        let board = (u.snapshot || u.status.is_some())
            .then(|| api::board_from_pb(u.status.as_ref(), overview.simulated()));
        Update {
            version: u.version,
            snapshot: u.snapshot,
            run: u.run.as_ref().map(|r| Run {
                id: r.id.clone(),
                started_at: api::from_ts(r.started_at.as_ref()),
                took_over_at: api::from_ts(r.took_over_at.as_ref()),
            }),
            overview,
            board,
            tenants: u.tenants.iter().map(api::tenant_from_pb).collect(),
        }
    }
}

/// Who the gateway says we are.
#[derive(Debug, Clone, PartialEq)]
pub struct Me {
    pub name: String,
    pub role: Role,
    pub authenticated: bool,
}

/// Which page of a tenant's mailboxes to fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct MailboxQuery {
    pub tenant_id: String,
    /// Empty: every mailbox not ok.
    pub states: Vec<MailboxState>,
    /// Reindex order (ETA) rather than by address.
    pub sort_by_eta: bool,
    pub page_size: u32,
    /// Empty: the first page.
    pub page_token: String,
}

impl MailboxQuery {
    pub(crate) fn to_pb(&self) -> pb::ListMailboxesRequest {
        pb::ListMailboxesRequest {
            tenant_id: self.tenant_id.clone(),
            states: self
                .states
                .iter()
                .map(|&s| api::mailbox_state_to_pb(s) as i32)
                .collect(),
            sort: if self.sort_by_eta {
                pb::MailboxSort::Eta
            } else {
                pb::MailboxSort::Address
            } as i32,
            page_size: self.page_size,
            page_token: self.page_token.clone(),
        }
    }
}

/// A page of mailboxes asked for by the console; `serial` tells its answer
/// from an older one.
#[derive(Debug, Clone)]
pub struct MailboxRequest {
    pub serial: u64,
    pub query: MailboxQuery,
}

/// One priority decision to make.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorityRequest {
    pub tenant_id: String,
    pub priority: Priority,
    /// Position within the priority (1 = first); 0 = the fair round-robin.
    pub rank: u32,
    pub reason: String,
    /// The version of the tenant's decision this one replaces (0: none).
    pub expected_version: u64,
}

impl PriorityRequest {
    pub(crate) fn to_pb(&self) -> pb::SetTenantPriorityRequest {
        pb::SetTenantPriorityRequest {
            tenant_id: self.tenant_id.clone(),
            priority: api::priority_to_pb(self.priority) as i32,
            rank: self.rank,
            reason: self.reason.clone(),
            expected_version: self.expected_version,
        }
    }
}
