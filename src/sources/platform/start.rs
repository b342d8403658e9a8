//! Starting the source (the journal replayed, the pollers spawned) and
//! stopping it (the pollers stopped, the last of the journal written).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::seen::Seen;
use super::{Configured, PlatformConfig, PlatformSource, poll, replay};
use crate::domain::Priority;
use crate::domain::calibrated::Forecaster;
use crate::domain::forecast::WorkRate;
use crate::domain::model::Overview;
use crate::sources::reindex::Reindexer;

impl Drop for PlatformSource {
    /// Stops the pollers, then writes what the journal task had not yet
    /// written (the last poll's findings and repairs), so a stopped gateway
    /// loses nothing of the incident.
    fn drop(&mut self) {
        for p in self.pollers.drain(..) {
            p.abort();
        }
        if let Some(r) = &self.reindexer {
            r.stop();
        }
        if let Some(store) = &self.journal {
            let (events, obs) = poll::take_journal(&self.seen, self.reindexer.as_deref());
            if let Err(e) = poll::write_journal(store, &events, &obs) {
                tracing::error!("incident journal not written at stop: {e}");
            }
        }
    }
}

/// Why a platform source cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("tenant id {0:?} is empty or given twice")]
    TenantId(String),
    #[error("domain {domain:?} belongs to two tenants: {first} and {second}")]
    SharedDomain {
        domain: String,
        first: String,
        second: String,
    },
    /// The incident's journal could not be read back.
    #[error("{0}")]
    Journal(#[from] crate::store::StoreError),
}

impl PlatformSource {
    /// Replays the store's journal, then starts polling on `runtime`.
    /// Tenants need unique ids and domains.
    pub fn start(
        cfg: PlatformConfig,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Self, StartError> {
        Self::start_gated(cfg, runtime, None)
    }

    /// As `start`, polling, sweeping, repairing and writing the journal
    /// only while `leading` says true (this gateway leads its replicas):
    /// that work is dropped the moment it turns false (the reindexer
    /// finishes the repairs in flight and dispatches no more), and started
    /// again when it turns true.
    pub fn start_gated(
        cfg: PlatformConfig,
        runtime: &tokio::runtime::Handle,
        leading: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Result<Self, StartError> {
        let mut domain_to_tenant = HashMap::new();
        let mut ids = HashSet::new();
        for (i, t) in cfg.tenants.iter().enumerate() {
            if t.id.trim().is_empty() || !ids.insert(t.id.clone()) {
                return Err(StartError::TenantId(t.id.clone()));
            }
            for d in &t.domains {
                if let Some(j) = domain_to_tenant.insert(d.to_lowercase(), i) {
                    return Err(StartError::SharedDomain {
                        domain: d.clone(),
                        first: cfg.tenants[j].id.clone(),
                        second: t.id.clone(),
                    });
                }
            }
        }
        let n = cfg.tenants.len();
        let configured = Configured {
            dovecot: cfg.dovecot.is_some(),
            postfix: cfg.postqueue.is_some(),
            prometheus: cfg.prometheus.is_some(),
            load: cfg.prometheus.is_some() && cfg.load_query.is_some(),
        };
        let reindexer = cfg
            .dovecot
            .as_ref()
            .map(|d| Arc::new(Reindexer::new(d.limits.clone())));
        let mut seen = Seen {
            priorities: vec![(Priority::P2, 0); n],
            postfix_configured: cfg.postqueue.is_some(),
            ..Seen::default()
        };
        let mut repair_rate = WorkRate::new(120, 10.0, 3.0);
        if let Some(store) = &cfg.store {
            replay::replay(&**store, &mut seen, &mut repair_rate, reindexer.as_deref())?;
        }
        // What the replay handed back to the reindexer is in the journal.
        seen.journaled = reindexer.as_ref().map_or((0, 0), |r| {
            let p = r.progress();
            (p.done.len(), p.failed.len())
        });
        let journal: Option<poll::Journal> = cfg.store.map(|s| Arc::new(Mutex::new(s)));
        let seen = Arc::new(Mutex::new(seen));
        let ctx = poll::Context {
            tenants: cfg.tenants.clone(),
            domain_to_tenant: domain_to_tenant.clone(),
            seen: seen.clone(),
            reindexer: reindexer.clone(),
            poll: cfg.poll.max(Duration::from_millis(100)),
        };
        let pollers = poll::spawn(
            ctx,
            poll::Backends {
                dovecot: cfg
                    .dovecot
                    .map(|d| (Arc::new(d.client), d.probes_per_poll.max(1))),
                postqueue: cfg.postqueue,
                postfix_status: cfg.postfix_status,
                prometheus: cfg.prometheus,
                load_query: cfg.load_query,
                store: journal.clone(),
            },
            runtime,
            leading,
        );
        let mut me = PlatformSource {
            name: cfg.name,
            tenants: cfg.tenants,
            domain_to_tenant,
            seen,
            reindexer,
            configured,
            priorities: vec![(Priority::P2, 0, None); n],
            rows: Vec::new(),
            changed: Vec::new(),
            states: HashMap::new(),
            overview: Overview::default(),
            advances: 0,
            repair_rate,
            repairs_done_at: None,
            repairing: false,
            traffic_reads: 0,
            fc: Forecaster::default(),
            last_done: 0,
            replays: 0,
            poll_ms: cfg.poll.as_millis() as f64,
            depth_history: VecDeque::new(),
            pollers,
            journal,
        };
        me.last_done = me.reindexer.as_ref().map_or(0, |r| r.progress().done.len());
        me.compute(0.0);
        Ok(me)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(tenants: &[(&str, &str)]) -> PlatformConfig {
        PlatformConfig {
            name: "Test".into(),
            tenants: tenants
                .iter()
                .map(|(id, domain)| super::super::TenantSpec {
                    id: (*id).into(),
                    name: (*id).into(),
                    domains: vec![(*domain).into()],
                    contacts: Vec::new(),
                })
                .collect(),
            dovecot: None,
            postqueue: None,
            postfix_status: None,
            prometheus: None,
            load_query: None,
            poll: std::time::Duration::from_millis(200),
            store: None,
        }
    }

    /// A tenant list that would make lookups ambiguous is refused, saying
    /// which tenant or domain is the problem.
    #[tokio::test]
    async fn tenants_sharing_an_id_or_a_domain_are_refused_by_name() {
        let rt = tokio::runtime::Handle::current();
        let e = PlatformSource::start(config(&[("acme", "a.test"), ("acme", "b.test")]), &rt)
            .err()
            .expect("refused");
        assert_eq!(e.to_string(), "tenant id \"acme\" is empty or given twice");
        let e = PlatformSource::start(config(&[("acme", "a.test"), ("globex", "A.test")]), &rt)
            .err()
            .expect("refused");
        assert_eq!(
            e.to_string(),
            "domain \"A.test\" belongs to two tenants: acme and globex"
        );
        assert!(PlatformSource::start(config(&[("acme", "a.test")]), &rt).is_ok());
    }
}
