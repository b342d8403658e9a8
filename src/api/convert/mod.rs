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

mod overview;
mod rows;
mod status;
pub use overview::*;
pub use rows::*;
pub use status::*;

#[cfg(test)]
mod tests {
    use super::overview::{reindex_from_pb, reindex_to_pb};
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
