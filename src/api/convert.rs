//! Conversions between protocol messages and domain types. Data from the
//! wire is never trusted: unknown enum values map to a safe default and
//! missing fields to empty values, never a panic.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use super::pb;
use crate::domain::forecast::{EtaRange, NoEstimate};
use crate::domain::priority::{AuditEvent, PriorityDecision, Role};
use crate::domain::scope::ScopeRevision;
use crate::domain::slip::{EtaSample, EtaSlip, SlipBasis};
use crate::domain::update::{ChannelSummary, DeliveryStatus, StatusBoard, Update};
use crate::domain::*;
use crate::lookup::MatchQuality;

pub fn ts(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn from_ts(t: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    let t = t?;
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

pub fn mailbox_state_to_pb(s: MailboxState) -> pb::MailboxState {
    match s {
        MailboxState::Ok => pb::MailboxState::Ok,
        MailboxState::LockedOut => pb::MailboxState::LockedOut,
        MailboxState::ReindexPending => pb::MailboxState::ReindexPending,
        MailboxState::Reindexing => pb::MailboxState::Reindexing,
        MailboxState::Restored => pb::MailboxState::Restored,
        MailboxState::Failed => pb::MailboxState::Failed,
        MailboxState::ResyncNeeded => pb::MailboxState::ResyncNeeded,
    }
}

pub fn mailbox_state_from_pb(v: i32) -> Option<MailboxState> {
    Some(match pb::MailboxState::try_from(v).ok()? {
        pb::MailboxState::Unspecified => return None,
        pb::MailboxState::Ok => MailboxState::Ok,
        pb::MailboxState::LockedOut => MailboxState::LockedOut,
        pb::MailboxState::ReindexPending => MailboxState::ReindexPending,
        pb::MailboxState::Reindexing => MailboxState::Reindexing,
        pb::MailboxState::Restored => MailboxState::Restored,
        pb::MailboxState::Failed => MailboxState::Failed,
        pb::MailboxState::ResyncNeeded => MailboxState::ResyncNeeded,
    })
}

fn health_to_pb(h: Health) -> pb::HealthStatus {
    match h {
        Health::Ok => pb::HealthStatus::Ok,
        Health::Degraded => pb::HealthStatus::Degraded,
        Health::Down => pb::HealthStatus::Down,
        Health::Unknown => pb::HealthStatus::Unknown,
    }
}

fn health_from_pb(v: i32) -> Health {
    match pb::HealthStatus::try_from(v) {
        Ok(pb::HealthStatus::Ok) => Health::Ok,
        Ok(pb::HealthStatus::Degraded) => Health::Degraded,
        Ok(pb::HealthStatus::Down) => Health::Down,
        _ => Health::Unknown,
    }
}

fn role_to_pb(r: ServiceRole) -> pb::ServiceRole {
    match r {
        ServiceRole::Imap => pb::ServiceRole::Imap,
        ServiceRole::Pop => pb::ServiceRole::Pop,
        ServiceRole::Webmail => pb::ServiceRole::Webmail,
        ServiceRole::SmtpIn => pb::ServiceRole::SmtpIn,
        ServiceRole::SmtpOut => pb::ServiceRole::SmtpOut,
        ServiceRole::Storage => pb::ServiceRole::Storage,
        ServiceRole::Index => pb::ServiceRole::Index,
    }
}

fn role_from_pb(v: i32) -> Option<ServiceRole> {
    Some(match pb::ServiceRole::try_from(v).ok()? {
        pb::ServiceRole::Unspecified => return None,
        pb::ServiceRole::Imap => ServiceRole::Imap,
        pb::ServiceRole::Pop => ServiceRole::Pop,
        pb::ServiceRole::Webmail => ServiceRole::Webmail,
        pb::ServiceRole::SmtpIn => ServiceRole::SmtpIn,
        pb::ServiceRole::SmtpOut => ServiceRole::SmtpOut,
        pb::ServiceRole::Storage => ServiceRole::Storage,
        pb::ServiceRole::Index => ServiceRole::Index,
    })
}

pub fn incident_state_to_pb(s: IncidentState) -> pb::IncidentState {
    match s {
        IncidentState::Investigating => pb::IncidentState::Investigating,
        IncidentState::Identified => pb::IncidentState::Identified,
        IncidentState::Monitoring => pb::IncidentState::Monitoring,
        IncidentState::Resolved => pb::IncidentState::Resolved,
    }
}

fn incident_state_from_pb(v: i32) -> IncidentState {
    match pb::IncidentState::try_from(v) {
        Ok(pb::IncidentState::Identified) => IncidentState::Identified,
        Ok(pb::IncidentState::Monitoring) => IncidentState::Monitoring,
        Ok(pb::IncidentState::Resolved) => IncidentState::Resolved,
        _ => IncidentState::Investigating,
    }
}

pub fn priority_to_pb(p: Priority) -> pb::Priority {
    match p {
        Priority::P0 => pb::Priority::P0,
        Priority::P1 => pb::Priority::P1,
        Priority::P2 => pb::Priority::P2,
        Priority::P3 => pb::Priority::P3,
    }
}

pub fn priority_from_pb(v: i32) -> Option<Priority> {
    Some(match pb::Priority::try_from(v).ok()? {
        pb::Priority::Unspecified => return None,
        pb::Priority::P0 => Priority::P0,
        pb::Priority::P1 => Priority::P1,
        pb::Priority::P2 => Priority::P2,
        pb::Priority::P3 => Priority::P3,
    })
}

pub fn match_quality_to_pb(q: MatchQuality) -> pb::MatchQuality {
    match q {
        MatchQuality::Exact => pb::MatchQuality::Exact,
        MatchQuality::Prefix => pb::MatchQuality::Prefix,
        MatchQuality::Approximate => pb::MatchQuality::Approximate,
    }
}

/// None: unspecified (a gateway from before the field) or unknown.
pub fn match_quality_from_pb(v: i32) -> Option<MatchQuality> {
    Some(match pb::MatchQuality::try_from(v).ok()? {
        pb::MatchQuality::Unspecified => return None,
        pb::MatchQuality::Exact => MatchQuality::Exact,
        pb::MatchQuality::Prefix => MatchQuality::Prefix,
        pb::MatchQuality::Approximate => MatchQuality::Approximate,
    })
}

pub fn tenant_sort_from_pb(v: i32) -> crate::domain::tenants::TenantSort {
    use crate::domain::tenants::TenantSort as S;
    match pb::TenantSort::try_from(v) {
        Ok(pb::TenantSort::PercentAffected) => S::PercentAffected,
        Ok(pb::TenantSort::Name) => S::Name,
        Ok(pb::TenantSort::Mailboxes) => S::Mailboxes,
        Ok(pb::TenantSort::Queued) => S::Queued,
        Ok(pb::TenantSort::Priority) => S::Priority,
        Ok(pb::TenantSort::Eta) => S::Eta,
        _ => S::Affected,
    }
}

pub fn tenant_sort_to_pb(s: crate::domain::tenants::TenantSort) -> pb::TenantSort {
    use crate::domain::tenants::TenantSort as S;
    match s {
        S::Affected => pb::TenantSort::Affected,
        S::PercentAffected => pb::TenantSort::PercentAffected,
        S::Name => pb::TenantSort::Name,
        S::Mailboxes => pb::TenantSort::Mailboxes,
        S::Queued => pb::TenantSort::Queued,
        S::Priority => pb::TenantSort::Priority,
        S::Eta => pb::TenantSort::Eta,
    }
}

pub fn eta_to_pb(e: &EtaRange) -> pb::EtaRange {
    pb::EtaRange {
        p50: e.p50.map(ts),
        p90: e.p90.map(ts),
        reason: e.reason.clone(),
        no_estimate: no_estimate_to_pb(e.no_estimate) as i32,
    }
}

fn no_estimate_to_pb(k: NoEstimate) -> pb::NoEstimateKind {
    match k {
        NoEstimate::Unspecified => pb::NoEstimateKind::Unspecified,
        NoEstimate::NotIdentified => pb::NoEstimateKind::NotIdentified,
        NoEstimate::NoProgressYet => pb::NoEstimateKind::NoProgressYet,
        NoEstimate::TooSlow => pb::NoEstimateKind::TooSlow,
        NoEstimate::WaitsForRepair => pb::NoEstimateKind::WaitsForRepair,
    }
}

/// Unknown numbers (a newer gateway's kinds) are unspecified.
fn no_estimate_from_pb(k: i32) -> NoEstimate {
    match pb::NoEstimateKind::try_from(k) {
        Ok(pb::NoEstimateKind::NotIdentified) => NoEstimate::NotIdentified,
        Ok(pb::NoEstimateKind::NoProgressYet) => NoEstimate::NoProgressYet,
        Ok(pb::NoEstimateKind::TooSlow) => NoEstimate::TooSlow,
        Ok(pb::NoEstimateKind::WaitsForRepair) => NoEstimate::WaitsForRepair,
        Ok(pb::NoEstimateKind::Unspecified) | Err(_) => NoEstimate::Unspecified,
    }
}

pub fn eta_from_pb(e: Option<&pb::EtaRange>) -> EtaRange {
    let Some(e) = e else {
        return EtaRange::unknown("not reported");
    };
    match (from_ts(e.p50.as_ref()), from_ts(e.p90.as_ref())) {
        (Some(a), Some(b)) => EtaRange::at(a, b),
        (Some(a), None) => EtaRange::at(a, a),
        _ => EtaRange::none(no_estimate_from_pb(e.no_estimate), e.reason.clone()),
    }
}

pub fn slip_to_pb(s: &EtaSlip) -> pb::EtaSlip {
    pb::EtaSlip {
        basis: match s.basis {
            SlipBasis::FirstShown => pb::SlipBasis::FirstShown,
            SlipBasis::Published => pb::SlipBasis::Published,
        } as i32,
        since: Some(ts(s.since)),
        baseline_p90: Some(ts(s.baseline_p90)),
        later_by_seconds: s.later_by.map_or(0, |d| d.num_seconds()),
        withdrawn: s.withdrawn(),
    }
}

/// A slip from the wire; None when it says nothing usable (no times, or
/// neither later nor withdrawn). An unknown basis is read as "first shown",
/// the claim that promises less.
pub fn slip_from_pb(s: Option<&pb::EtaSlip>) -> Option<EtaSlip> {
    let s = s?;
    let later_by = if s.withdrawn {
        None
    } else if s.later_by_seconds > 0 {
        Some(chrono::Duration::try_seconds(s.later_by_seconds)?)
    } else {
        return None;
    };
    Some(EtaSlip {
        basis: if s.basis == pb::SlipBasis::Published as i32 {
            SlipBasis::Published
        } else {
            SlipBasis::FirstShown
        },
        since: from_ts(s.since.as_ref())?,
        baseline_p90: from_ts(s.baseline_p90.as_ref())?,
        later_by,
    })
}

fn counts_to_pb(c: &StateCounts) -> pb::MailboxStateCounts {
    pb::MailboxStateCounts {
        ok: c.get(MailboxState::Ok),
        locked_out: c.get(MailboxState::LockedOut),
        reindex_pending: c.get(MailboxState::ReindexPending),
        reindexing: c.get(MailboxState::Reindexing),
        restored: c.get(MailboxState::Restored),
        failed: c.get(MailboxState::Failed),
        resync_needed: c.get(MailboxState::ResyncNeeded),
    }
}

pub fn counts_from_pb(c: Option<&pb::MailboxStateCounts>) -> StateCounts {
    let Some(c) = c else {
        return StateCounts::default();
    };
    StateCounts([
        c.ok,
        c.locked_out,
        c.reindex_pending,
        c.reindexing,
        c.restored,
        c.failed,
        c.resync_needed,
    ])
}

pub fn tenant_to_pb(t: &TenantRow) -> pb::TenantSummary {
    pb::TenantSummary {
        id: t.id.to_string(),
        name: t.name.to_string(),
        primary_domain: t.primary_domain.to_string(),
        domain_count: t.domain_count,
        tier: t.tier.to_string(),
        cluster_id: t.cluster_id.to_string(),
        mailboxes: t.mailboxes,
        states: Some(counts_to_pb(&t.states)),
        affected: t.affected(),
        queued_messages: t.queued_messages,
        priority: priority_to_pb(t.priority) as i32,
        reindex_rank: t.reindex_rank,
        eta: Some(eta_to_pb(&t.eta)),
        priority_set: t.priority_set.as_deref().map(decision_to_pb),
        eta_slip: t.eta_slip.as_ref().map(slip_to_pb),
    }
}

pub fn tenant_from_pb(t: &pb::TenantSummary) -> TenantRow {
    TenantRow {
        id: t.id.as_str().into(),
        name: t.name.as_str().into(),
        primary_domain: t.primary_domain.as_str().into(),
        domain_count: t.domain_count,
        tier: t.tier.as_str().into(),
        cluster_id: t.cluster_id.as_str().into(),
        mailboxes: t.mailboxes,
        states: counts_from_pb(t.states.as_ref()),
        queued_messages: t.queued_messages,
        priority: priority_from_pb(t.priority).unwrap_or_default(),
        reindex_rank: t.reindex_rank,
        eta: eta_from_pb(t.eta.as_ref()),
        priority_set: t
            .priority_set
            .as_ref()
            .and_then(decision_from_pb)
            .map(std::sync::Arc::new),
        eta_slip: slip_from_pb(t.eta_slip.as_ref()),
    }
}

pub fn decision_to_pb(d: &PriorityDecision) -> pb::TenantPriority {
    pb::TenantPriority {
        tenant_id: d.tenant_id.clone(),
        priority: priority_to_pb(d.priority) as i32,
        rank: d.rank,
        version: d.version,
        set_by: d.set_by.clone(),
        set_at: Some(ts(d.set_at)),
        reason: d.reason.clone(),
    }
}

/// None when the message is not a decision (no priority or no time).
pub fn decision_from_pb(d: &pb::TenantPriority) -> Option<PriorityDecision> {
    Some(PriorityDecision {
        tenant_id: d.tenant_id.clone(),
        priority: priority_from_pb(d.priority)?,
        rank: d.rank,
        version: d.version,
        set_by: d.set_by.clone(),
        set_at: from_ts(d.set_at.as_ref())?,
        reason: d.reason.clone(),
    })
}

pub fn audit_to_pb(e: &AuditEvent) -> pb::AuditEvent {
    pb::AuditEvent {
        id: e.id,
        at: Some(ts(e.at)),
        actor: e.actor.clone(),
        action: e.action.clone(),
        target: e.target.clone(),
        reason: e.reason.clone(),
        detail: e.detail.clone(),
    }
}

pub fn audit_from_pb(e: &pb::AuditEvent) -> AuditEvent {
    AuditEvent {
        id: e.id,
        at: from_ts(e.at.as_ref()).unwrap_or_default(),
        actor: e.actor.clone(),
        action: e.action.clone(),
        target: e.target.clone(),
        reason: e.reason.clone(),
        detail: e.detail.clone(),
    }
}

pub fn access_role_to_pb(r: Role) -> pb::Role {
    match r {
        Role::Viewer => pb::Role::Viewer,
        Role::Operator => pb::Role::Operator,
        Role::Comms => pb::Role::Comms,
        Role::Admin => pb::Role::Admin,
    }
}

/// Unknown or unset roles read as viewer: the least a caller may do.
pub fn access_role_from_pb(v: i32) -> Role {
    match pb::Role::try_from(v) {
        Ok(pb::Role::Operator) => Role::Operator,
        Ok(pb::Role::Comms) => Role::Comms,
        Ok(pb::Role::Admin) => Role::Admin,
        _ => Role::Viewer,
    }
}

pub fn mailbox_to_pb(m: &MailboxRow) -> pb::Mailbox {
    pb::Mailbox {
        address: m.address.clone(),
        tenant_id: m.tenant_id.clone(),
        cluster_id: m.cluster_id.clone(),
        volume: m.volume.clone(),
        state: m.state.map_or(0, |s| mailbox_state_to_pb(s) as i32),
        reindex_position: m.reindex_position,
        eta: Some(eta_to_pb(&m.eta)),
        queued_messages: m.queued_messages,
        last_error: m.last_error.clone(),
    }
}

pub fn mailbox_from_pb(m: &pb::Mailbox) -> MailboxRow {
    MailboxRow {
        address: m.address.clone(),
        tenant_id: m.tenant_id.clone(),
        cluster_id: m.cluster_id.clone(),
        volume: m.volume.clone(),
        state: mailbox_state_from_pb(m.state),
        reindex_position: m.reindex_position,
        eta: eta_from_pb(m.eta.as_ref()),
        queued_messages: m.queued_messages,
        last_error: m.last_error.clone(),
    }
}

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

fn reindex_to_pb(r: &Reindex) -> pb::Reindex {
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
    }
}

fn reindex_from_pb(r: Option<&pb::Reindex>) -> Reindex {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trends_from_a_gateway_are_kept_in_time_order_and_points_without_a_time_dropped() {
        let point = |secs: Option<i64>, affected: u64, tenant: Option<u64>| pb::TrendPoint {
            at: secs.map(|s| ts(DateTime::from_timestamp(s, 0).unwrap())),
            queue_depth: None,
            affected_mailboxes: Some(affected),
            restored_mailboxes: 0,
            tenant_affected: tenant,
        };
        let r = pb::GetTrendsResponse {
            points: vec![
                point(Some(120), 3, Some(1)),
                point(None, 99, Some(99)),
                point(Some(60), 5, None),
                pb::TrendPoint {
                    at: Some(Timestamp {
                        seconds: 0,
                        nanos: -1,
                    }),
                    ..Default::default()
                },
            ],
            step_seconds: 60,
            tenant_id: "acme".into(),
        };
        let h = trends_from_pb(&r);
        let affected: Vec<Option<u64>> = h.points.iter().map(|p| p.affected).collect();
        assert_eq!(affected, [Some(5), Some(3)]);
        assert_eq!(h.tenant, [None, Some(1)], "aligned with the points");
        assert_eq!(h.step, chrono::Duration::minutes(1));
    }

    #[test]
    fn a_slip_and_the_eta_history_survive_the_wire_and_garbage_is_no_slip() {
        let at = DateTime::from_timestamp(1_223_314_200, 0).unwrap();
        let slip = EtaSlip {
            basis: SlipBasis::Published,
            since: at,
            baseline_p90: at + chrono::Duration::hours(3),
            later_by: Some(chrono::Duration::minutes(95)),
        };
        let row = TenantRow {
            id: "t00000".into(),
            eta_slip: Some(slip.clone()),
            ..Default::default()
        };
        assert_eq!(
            tenant_from_pb(&tenant_to_pb(&row)).eta_slip,
            Some(slip.clone())
        );
        let withdrawn = EtaSlip {
            later_by: None,
            ..slip.clone()
        };
        let wire = slip_to_pb(&withdrawn);
        assert!(wire.withdrawn && wire.later_by_seconds == 0);
        assert_eq!(slip_from_pb(Some(&wire)), Some(withdrawn));
        // Neither later nor withdrawn, no times, an unknown basis.
        let mut bad = slip_to_pb(&slip);
        bad.later_by_seconds = 0;
        assert_eq!(slip_from_pb(Some(&bad)), None);
        let mut bad = slip_to_pb(&slip);
        bad.since = None;
        assert_eq!(slip_from_pb(Some(&bad)), None);
        let mut odd = slip_to_pb(&slip);
        odd.basis = 77;
        assert_eq!(
            slip_from_pb(Some(&odd)).map(|s| s.basis),
            Some(SlipBasis::FirstShown)
        );
        let r = Reindex {
            eta_history: vec![
                EtaSample {
                    at,
                    eta: EtaRange::unknown("no progress measured yet"),
                },
                EtaSample {
                    at: at + chrono::Duration::hours(1),
                    eta: EtaRange::at(at, at + chrono::Duration::hours(5)),
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            reindex_from_pb(Some(&reindex_to_pb(&r))).eta_history,
            r.eta_history
        );
    }

    #[test]
    fn garbage_enums_and_missing_fields_do_not_panic() {
        let u = pb::WatchUpdate {
            clusters: vec![pb::Cluster {
                health: 99,
                services: vec![pb::ServiceHealth {
                    role: 42,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let o = overview_from_pb(&u);
        assert_eq!(o.clusters[0].health, Health::Unknown);
        assert!(o.clusters[0].services.is_empty());
        let t = tenant_from_pb(&pb::TenantSummary {
            priority: -7,
            eta: Some(pb::EtaRange {
                p50: Some(Timestamp {
                    seconds: i64::MAX,
                    nanos: -1,
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(t.priority, Priority::P2);
        assert!(!t.eta.is_known());
    }
}
