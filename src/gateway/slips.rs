//! Slips and the reindex ETA's history, kept by the gateway for whatever
//! source it serves: every row any client receives (Watch, ListTenants,
//! Lookup) passes through here, so a slip is computed once, from the same
//! baselines, and shown the same on every console, script and report.
//!
//! [`Tracked`] wraps the hub's source. After each advance and each priority
//! decision it shows the changed rows to a `domain::slip::SlipTracker` (on
//! the source clock), samples each cluster's reindex ETA into a
//! `domain::slip::EtaHistory`, and hands every row out with its
//! `eta_slip` set. A published status update moves the baselines
//! (`published`); the rows whose slip that changed go out with the next
//! change. It also keeps the incident's `domain::trends::Trends` (queue
//! depth and affected mailboxes over time, per tenant too) for the trends
//! view.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::priority::PriorityDecision;
use crate::domain::slip::{EtaHistory, SlipTracker};
use crate::domain::tenants::TenantSort;
use crate::domain::trends::Trends;
use crate::domain::{MailboxRow, Overview, TenantRow};
use crate::sources::{LookupAnswer, LookupHit, MailboxQuery, Page, Source, SourceError};

/// A source, with the slips of its tenants and the history of its
/// clusters' reindex ETAs.
pub(crate) struct Tracked {
    inner: Box<dyn Source>,
    slips: SlipTracker,
    /// Reindex ETA history by cluster id.
    history: HashMap<String, EtaHistory>,
    /// The rows of the last change, with their slips.
    changed: Vec<TenantRow>,
    /// Tenants whose slip a publish changed: sent with the next change.
    resend: Vec<Arc<str>>,
    trends: Trends,
}

/// The source clock, or the wall clock for a source without one.
fn now_of(o: &Overview) -> DateTime<Utc> {
    o.incident.now.unwrap_or_else(Utc::now)
}

impl Tracked {
    /// Starts tracking `inner` as it is now: the ETAs it shows now are the
    /// first shown (a restarted gateway starts its baselines afresh).
    pub(crate) fn new(inner: Box<dyn Source>) -> Self {
        let mut t = Tracked {
            inner,
            slips: SlipTracker::new(),
            history: HashMap::new(),
            changed: Vec::new(),
            resend: Vec::new(),
            trends: Trends::default(),
        };
        let o = t.inner.overview();
        let now = now_of(&o);
        for row in t.inner.tenants() {
            t.slips.observe(&row, now);
            t.trends.observe(&row);
        }
        t.record_history(&o, now);
        t
    }

    /// The incident's figures over time, as this gateway saw them.
    pub(crate) fn trends(&self) -> &Trends {
        &self.trends
    }

    /// The reindex ETA of every cluster whose reindex has work, once per
    /// step of its history.
    fn record_history(&mut self, o: &Overview, now: DateTime<Utc>) {
        for c in &o.clusters {
            let r = &c.reindex;
            if r.scope > 0 && r.finished_at.is_none() {
                self.history
                    .entry(c.id.clone())
                    .or_default()
                    .record(now, &r.eta);
            }
        }
        self.trends.record(o, now);
    }

    /// After the source changed: shows the changed rows to the tracker and
    /// keeps them, with their slips, for `changed_tenants`.
    fn observe_change(&mut self) {
        let o = self.inner.overview();
        let now = now_of(&o);
        let mut rows = self.inner.changed_tenants();
        for r in &rows {
            self.slips.observe(r, now);
            self.trends.observe(r);
        }
        self.record_history(&o, now);
        if !self.resend.is_empty() {
            let have: HashSet<Arc<str>> = rows.iter().map(|r| r.id.clone()).collect();
            for id in std::mem::take(&mut self.resend) {
                if !have.contains(&id)
                    && let Some(r) = self.inner.tenant(&id)
                {
                    rows.push(r);
                }
            }
        }
        for r in &mut rows {
            self.slips.annotate(r);
        }
        self.changed = rows;
    }

    /// A status update was published: each tenant's slip is measured from
    /// its p90 of this moment from now on. The rows whose slip this
    /// changed go out with the next change (a tick's or a decision's).
    pub(crate) fn published(&mut self) {
        let now = now_of(&self.inner.overview());
        let changed = self.slips.published(now);
        self.resend.extend(changed);
    }

    fn annotated(&self, mut row: TenantRow) -> TenantRow {
        self.slips.annotate(&mut row);
        row
    }
}

impl Source for Tracked {
    fn advance(&mut self, dt_seconds: f64) {
        self.inner.advance(dt_seconds);
        self.observe_change();
    }

    fn advances(&self) -> u64 {
        self.inner.advances()
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    fn set_priority(&mut self, decision: Arc<PriorityDecision>) -> Result<(), SourceError> {
        self.inner.set_priority(decision)?;
        self.observe_change();
        Ok(())
    }

    fn overview(&self) -> Overview {
        let mut o = self.inner.overview();
        for c in &mut o.clusters {
            if let Some(h) = self.history.get(&c.id) {
                c.reindex.eta_history = h.samples().to_vec();
            }
        }
        o
    }

    fn tenants(&self) -> Vec<TenantRow> {
        let mut rows = self.inner.tenants();
        for r in &mut rows {
            self.slips.annotate(r);
        }
        rows
    }

    fn contacts(&self, tenant_id: &str) -> Vec<String> {
        self.inner.contacts(tenant_id)
    }

    fn tenant(&self, id: &str) -> Option<TenantRow> {
        self.inner.tenant(id).map(|r| self.annotated(r))
    }

    fn changed_tenants(&self) -> Vec<TenantRow> {
        self.changed.clone()
    }

    fn list_tenants(
        &self,
        filter: &str,
        affected_only: bool,
        sort: TenantSort,
        reverse: bool,
        offset: usize,
        limit: usize,
    ) -> Page<TenantRow> {
        let mut page = self
            .inner
            .list_tenants(filter, affected_only, sort, reverse, offset, limit);
        for r in &mut page.rows {
            self.slips.annotate(r);
        }
        page
    }

    fn mailboxes(&self, q: &MailboxQuery) -> Result<Page<MailboxRow>, SourceError> {
        self.inner.mailboxes(q)
    }

    fn lookup(&self, query: &str, limit: usize) -> LookupAnswer {
        let mut answer = self.inner.lookup(query, limit);
        for m in &mut answer.matches {
            match &mut m.hit {
                LookupHit::Domain { tenant, .. } | LookupHit::Tenant(tenant) => {
                    self.slips.annotate(tenant)
                }
                LookupHit::Mailbox(_) => {}
            }
        }
        answer
    }
}
