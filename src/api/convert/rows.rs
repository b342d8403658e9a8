//! Tenants, mailboxes, decisions and the audit on the wire.

use super::*;

pub fn tenant_to_pb(t: &TenantRow) -> pb::TenantSummary {
    // `String::from(&str)`, not `to_string()`: an `Arc<str>` has no
    // specialised `to_string` and goes through the formatting machinery,
    // a visible share of a lookup answer that names 20 tenants.
    pb::TenantSummary {
        id: String::from(&*t.id),
        name: String::from(&*t.name),
        primary_domain: String::from(&*t.primary_domain),
        domain_count: t.domain_count,
        tier: String::from(&*t.tier),
        cluster_id: String::from(&*t.cluster_id),
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

/// As [`mailbox_to_pb`], moving the row's text instead of copying it (a
/// bulk lookup converts a row per line).
pub fn mailbox_into_pb(m: MailboxRow) -> pb::Mailbox {
    pb::Mailbox {
        state: m.state.map_or(0, |s| mailbox_state_to_pb(s) as i32),
        reindex_position: m.reindex_position,
        eta: Some(eta_to_pb(&m.eta)),
        queued_messages: m.queued_messages,
        address: m.address,
        tenant_id: m.tenant_id,
        cluster_id: m.cluster_id,
        volume: m.volume,
        last_error: m.last_error,
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
