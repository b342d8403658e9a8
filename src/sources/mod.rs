//! Where facts come from. A source is advanced (or polled) once per gateway
//! tick, whatever the number of consoles, and answers the queries that are
//! too large to stream.

pub mod dovecot;
pub mod platform;
pub mod postfix;
pub mod probe;
pub mod prometheus;
pub mod reindex;
pub mod simulator;

use std::sync::Arc;

use crate::domain::priority::PriorityDecision;
use crate::domain::tenants::TenantSort;
use crate::domain::{MailboxRow, MailboxState, Overview, TenantRow};
use crate::lookup::MatchQuality;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceError {
    #[error("no tenant with id {0:?}")]
    UnknownTenant(String),
    #[error("{0}")]
    Invalid(String),
}

/// Which mailboxes of one tenant to list.
#[derive(Debug, Clone, Default)]
pub struct MailboxQuery {
    pub tenant_id: String,
    /// Empty: every state except ok.
    pub states: Vec<MailboxState>,
    pub sort_by_eta: bool,
    pub offset: usize,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LookupHit {
    Mailbox(MailboxRow),
    Domain { domain: String, tenant: TenantRow },
    Tenant(TenantRow),
}

/// One lookup result and how it matched the query.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupMatch {
    pub hit: LookupHit,
    pub quality: MatchQuality,
}

/// A lookup's answer: the first matches, ranked (exact, prefix, then
/// approximate; affected first within each), and how many matched in all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LookupAnswer {
    pub matches: Vec<LookupMatch>,
    /// Matches in all, of which `matches` are the first.
    pub total: usize,
    /// `total` is a lower bound: the search stopped counting.
    pub total_is_lower_bound: bool,
}

impl From<crate::lookup::Ranked<LookupHit>> for LookupAnswer {
    /// A search's ranked hits, each with how it matched, and the total.
    fn from(found: crate::lookup::Ranked<LookupHit>) -> Self {
        LookupAnswer {
            matches: found
                .hits
                .into_iter()
                .map(|(hit, quality)| LookupMatch { hit, quality })
                .collect(),
            total: found.total,
            total_is_lower_bound: found.total_is_lower_bound,
        }
    }
}

impl LookupAnswer {
    /// An exact address, domain or tenant id: the answer, alone.
    pub fn exact(hit: LookupHit) -> Self {
        LookupAnswer {
            matches: vec![LookupMatch {
                hit,
                quality: MatchQuality::Exact,
            }],
            total: 1,
            total_is_lower_bound: false,
        }
    }

    /// The hits alone, in order (tests, benchmarks).
    pub fn hits(self) -> Vec<LookupHit> {
        self.matches.into_iter().map(|m| m.hit).collect()
    }
}

/// One page of rows plus how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub total: usize,
}

/// A source of war-room facts, driven by the gateway's hub.
pub trait Source: Send + Sync {
    /// Advances the source by one tick of `dt_seconds` source time (a
    /// simulator steps its model; a real adapter polls its backend).
    fn advance(&mut self, dt_seconds: f64);
    /// How many times `advance` ran: lets tests prove one advance per tick.
    fn advances(&self) -> u64;
    /// Applies a war-room decision to the reindex order. Afterwards
    /// `changed_tenants` returns the rows it changed (the tenant, and every
    /// tenant whose place or ETA moved).
    fn set_priority(&mut self, decision: Arc<PriorityDecision>) -> Result<(), SourceError>;
    /// Everything but the tenant rows.
    fn overview(&self) -> Overview;
    /// The incident's clock: what "now" is for every time this source
    /// gives, and so for every time the war room stamps (decisions,
    /// updates). The wall clock, except in a drill.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
    /// Every tenant row.
    fn tenants(&self) -> Vec<TenantRow>;
    /// A tenant's emergency contacts (e-mail addresses) for tenant notices.
    fn contacts(&self, _tenant_id: &str) -> Vec<String> {
        Vec::new()
    }
    /// One tenant's row.
    fn tenant(&self, id: &str) -> Option<TenantRow> {
        self.tenants().into_iter().find(|t| &*t.id == id)
    }
    /// Rows of the tenants that changed during the last `advance`.
    fn changed_tenants(&self) -> Vec<TenantRow>;
    /// Tenants filtered and sorted; `filter` is matched case-insensitively.
    fn list_tenants(
        &self,
        filter: &str,
        affected_only: bool,
        sort: TenantSort,
        reverse: bool,
        offset: usize,
        limit: usize,
    ) -> Page<TenantRow> {
        let needle = filter.to_lowercase();
        let mut rows: Vec<TenantRow> = self
            .tenants()
            .into_iter()
            .filter(|t| crate::domain::tenants::matches(t, &needle, affected_only))
            .collect();
        crate::domain::tenants::sort_rows(&mut rows, sort, reverse);
        let total = rows.len();
        let rows = rows.into_iter().skip(offset).take(limit).collect();
        Page { rows, total }
    }
    fn mailboxes(&self, q: &MailboxQuery) -> Result<Page<MailboxRow>, SourceError>;
    /// Up to `limit` matches of an address, domain or tenant (id or name),
    /// exact, prefix or misspelt, ranked (see `crate::lookup`): an exact
    /// address, domain or tenant id is answered alone.
    fn lookup(&self, query: &str, limit: usize) -> LookupAnswer;
}
