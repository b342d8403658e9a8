//! The overview on the wire: clusters, queues, sweeps, reindexes, sources.

use super::*;

fn queue_to_pb(q: &Queue) -> pb::Queue {
    pb::Queue {
        active: q.depth.map(|d| d.active),
        deferred: q.depth.map(|d| d.deferred),
        hold: q.depth.map(|d| d.hold),
        arrival_per_min: q.arrival_per_min,
        delivery_per_min: q.delivery_per_min,
        drain_eta: Some(eta_to_pb(&q.drain_eta)),
        depth_history: q.depth_history.clone(),
        history_step_seconds: q.history_step_seconds,
        unknown_reason: q.unknown.clone(),
        lost: q.lost,
        unmapped: q.unmapped,
        stale_reason: q.stale.clone(),
        rates_cover: q.rates_cover.clone(),
    }
}

/// A rate that is set and a number; anything else is unknown.
fn measured(v: Option<f64>) -> Option<f64> {
    v.filter(|r| r.is_finite())
}

fn queue_from_pb(q: Option<&pb::Queue>) -> Queue {
    let Some(q) = q else {
        return Queue {
            unknown: "not reported".into(),
            ..Queue::default()
        };
    };
    let depth = match (q.active, q.deferred, q.hold) {
        (Some(active), Some(deferred), Some(hold)) => Some(QueueDepth {
            active,
            deferred,
            hold,
        }),
        _ => None,
    };
    Queue {
        depth,
        arrival_per_min: measured(q.arrival_per_min),
        delivery_per_min: measured(q.delivery_per_min),
        unknown: q.unknown_reason.clone(),
        lost: q.lost,
        unmapped: q.unmapped,
        stale: q.stale_reason.clone(),
        rates_cover: q.rates_cover.clone(),
        drain_eta: eta_from_pb(q.drain_eta.as_ref()),
        depth_history: q.depth_history.clone(),
        history_step_seconds: q.history_step_seconds,
    }
}

fn sweep_to_pb(s: &Sweep) -> pb::Sweep {
    pb::Sweep {
        pass: s.pass,
        mailboxes: s.mailboxes,
        swept: s.swept,
        rate_per_min: s.rate_per_min,
        eta: Some(eta_to_pb(&s.eta)),
        found: s.found,
        projected: s.projected,
        state: s.state.clone(),
        kinds: s
            .kinds
            .iter()
            .map(|k| pb::DamageCount {
                kind: k.kind.clone(),
                found: k.found,
            })
            .collect(),
        undetectable: s.undetectable.clone(),
    }
}

fn sweep_from_pb(s: &pb::Sweep) -> Sweep {
    Sweep {
        pass: s.pass,
        mailboxes: s.mailboxes,
        swept: s.swept,
        rate_per_min: measured(s.rate_per_min),
        eta: eta_from_pb(s.eta.as_ref()),
        found: s.found,
        projected: s.projected,
        state: s.state.clone(),
        kinds: s
            .kinds
            .iter()
            .map(|k| DamageCount {
                kind: k.kind.clone(),
                found: k.found,
            })
            .collect(),
        undetectable: s.undetectable.clone(),
    }
}

pub(super) fn reindex_to_pb(r: &Reindex) -> pb::Reindex {
    pb::Reindex {
        unit: match r.unit {
            ScopeUnit::Files => pb::ScopeUnit::Files,
            ScopeUnit::Mailboxes => pb::ScopeUnit::Mailboxes,
        } as i32,
        scope: r.scope,
        done: r.done,
        failed: r.failed,
        in_progress: r.in_progress,
        rate_per_min: r.rate_per_min,
        eta: Some(eta_to_pb(&r.eta)),
        revisions: r
            .revisions
            .iter()
            .map(|v| pb::ScopeRevision {
                at: Some(ts(v.at)),
                previous: v.previous,
                scope: v.scope,
                reason: v.reason.clone(),
            })
            .collect(),
        mailboxes_pending: r.mailboxes_pending,
        mailboxes_restored: r.mailboxes_restored,
        finished_at: r.finished_at.map(ts),
        eta_history: r
            .eta_history
            .iter()
            .map(|e| pb::EtaSample {
                at: Some(ts(e.at)),
                eta: Some(eta_to_pb(&e.eta)),
            })
            .collect(),
        eta_assumes: r.eta_assumes.clone(),
    }
}

pub(super) fn reindex_from_pb(r: Option<&pb::Reindex>) -> Reindex {
    let Some(r) = r else {
        return Reindex::default();
    };
    Reindex {
        unit: if r.unit == pb::ScopeUnit::Mailboxes as i32 {
            ScopeUnit::Mailboxes
        } else {
            ScopeUnit::Files
        },
        scope: r.scope,
        done: r.done,
        failed: r.failed,
        in_progress: r.in_progress,
        rate_per_min: measured(r.rate_per_min),
        eta: eta_from_pb(r.eta.as_ref()),
        revisions: r
            .revisions
            .iter()
            .filter_map(|v| {
                Some(ScopeRevision {
                    at: from_ts(v.at.as_ref())?,
                    previous: v.previous,
                    scope: v.scope,
                    reason: v.reason.clone(),
                })
            })
            .collect(),
        mailboxes_pending: r.mailboxes_pending,
        mailboxes_restored: r.mailboxes_restored,
        finished_at: from_ts(r.finished_at.as_ref()),
        eta_history: r
            .eta_history
            .iter()
            .filter_map(|e| {
                Some(EtaSample {
                    at: from_ts(e.at.as_ref())?,
                    eta: eta_from_pb(e.eta.as_ref()),
                })
            })
            .collect(),
        eta_assumes: r.eta_assumes.clone(),
    }
}

fn cluster_to_pb(c: &Cluster) -> pb::Cluster {
    pb::Cluster {
        id: c.id.clone(),
        name: c.name.clone(),
        health: health_to_pb(c.health) as i32,
        services: c
            .services
            .iter()
            .map(|s| pb::ServiceHealth {
                role: role_to_pb(s.role) as i32,
                status: health_to_pb(s.status) as i32,
                login_success_rate: s.login_success_rate,
                latency_ms: s.latency_ms,
                detail: s.detail.clone(),
            })
            .collect(),
        queue: Some(queue_to_pb(&c.queue)),
        reindex: Some(reindex_to_pb(&c.reindex)),
        mailboxes: c.mailboxes,
        affected_mailboxes: c.affected_mailboxes,
        sweep: c.sweep.as_ref().map(sweep_to_pb),
    }
}

fn cluster_from_pb(c: &pb::Cluster) -> Cluster {
    Cluster {
        id: c.id.clone(),
        name: c.name.clone(),
        health: health_from_pb(c.health),
        services: c
            .services
            .iter()
            .filter_map(|s| {
                Some(ServiceHealth {
                    role: role_from_pb(s.role)?,
                    status: health_from_pb(s.status),
                    login_success_rate: s.login_success_rate.filter(|r| r.is_finite()),
                    latency_ms: measured(s.latency_ms),
                    detail: s.detail.clone(),
                })
            })
            .collect(),
        queue: queue_from_pb(c.queue.as_ref()),
        reindex: reindex_from_pb(c.reindex.as_ref()),
        mailboxes: c.mailboxes,
        affected_mailboxes: c.affected_mailboxes,
        sweep: c.sweep.as_ref().map(sweep_from_pb),
    }
}

pub fn source_to_pb(s: &crate::domain::SourceStatus) -> pb::SourceStatus {
    pb::SourceStatus {
        name: s.name.clone(),
        simulated: s.simulated,
        health: health_to_pb(s.health) as i32,
        message: s.message.clone(),
        last_success: s.last_success.map(ts),
    }
}

/// The whole-every-time part of a Watch update.
pub fn overview_to_pb(o: &Overview, version: u64, snapshot: bool) -> pb::WatchUpdate {
    let i = &o.incident;
    pb::WatchUpdate {
        version,
        snapshot,
        incident: Some(pb::Incident {
            title: i.title.clone(),
            started_at: i.started_at.map(ts),
            state: incident_state_to_pb(i.state) as i32,
            now: i.now.map(ts),
            speed: i.speed,
        }),
        sources: o.sources.iter().map(source_to_pb).collect(),
        clusters: o.clusters.iter().map(cluster_to_pb).collect(),
        tenants: Vec::new(),
        status: None,
        run: None,
        totals: Some(pb::Totals {
            tenants: o.totals.tenants,
            affected_tenants: o.totals.affected_tenants,
            mailboxes: o.totals.mailboxes,
            affected_mailboxes: o.totals.affected_mailboxes,
            restored_mailboxes: o.totals.restored_mailboxes,
            queued_messages: o.totals.queued_messages,
        }),
    }
}

pub fn overview_from_pb(u: &pb::WatchUpdate) -> Overview {
    let incident = u
        .incident
        .as_ref()
        .map_or_else(Incident::default, |i| Incident {
            title: i.title.clone(),
            started_at: from_ts(i.started_at.as_ref()),
            state: incident_state_from_pb(i.state),
            now: from_ts(i.now.as_ref()),
            speed: if i.speed.is_finite() { i.speed } else { 1.0 },
        });
    let totals = u.totals.as_ref().map_or_else(Totals::default, |t| Totals {
        tenants: t.tenants,
        affected_tenants: t.affected_tenants,
        mailboxes: t.mailboxes,
        affected_mailboxes: t.affected_mailboxes,
        restored_mailboxes: t.restored_mailboxes,
        queued_messages: t.queued_messages,
    });
    Overview {
        incident,
        sources: u
            .sources
            .iter()
            .map(|s| SourceStatus {
                name: s.name.clone(),
                simulated: s.simulated,
                health: health_from_pb(s.health),
                message: s.message.clone(),
                last_success: from_ts(s.last_success.as_ref()),
            })
            .collect(),
        clusters: u.clusters.iter().map(cluster_from_pb).collect(),
        totals,
    }
}
