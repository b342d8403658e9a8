//! `warroom report`: a markdown incident report from the gateway's audit
//! log — the figures as they stand, the timeline of decisions, the
//! priorities in force and who set them. What resellers asked for after the
//! outage (seed comments 41, 47): a record, not a recollection.

use chrono::{DateTime, Utc};

use super::client::{self, GatewayClient};
use crate::api;
use crate::domain::format::{queued_claim, thousands};
use crate::domain::priority::{self, AuditEvent, PriorityDecision};
use crate::domain::sanitize::sanitize;
use crate::domain::{Overview, TenantRow};

/// Asks the gateway and writes the report.
pub async fn fetch(client: &GatewayClient) -> anyhow::Result<String> {
    let snap = client::first_snapshot(client).await?;
    let overview = api::overview_from_pb(&snap);
    let tenants: Vec<TenantRow> = snap.tenants.iter().map(api::tenant_from_pb).collect();
    let audit = client::audit_events(client, 0)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the audit log: {e}"))?;
    Ok(render(&overview, &tenants, &audit, Utc::now()))
}

/// Text from a backend or a person, made safe for one markdown table cell
/// (and for a terminal, should the report be printed to one).
fn cell(s: &str) -> String {
    sanitize(s).replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The report as markdown.
pub fn render(
    o: &Overview,
    tenants: &[TenantRow],
    audit: &[AuditEvent],
    generated: DateTime<Utc>,
) -> String {
    let inc = &o.incident;
    let mut out = String::new();
    let title = if inc.title.is_empty() {
        "Incident".to_string()
    } else {
        cell(&inc.title)
    };
    out.push_str(&format!("# Incident report: {title}\n\n"));
    if o.simulated() {
        out.push_str("> **SIMULATED** — these figures come from a drill, not production.\n\n");
    }
    out.push_str(&format!("- Generated: {}\n", utc(generated)));
    if let Some(start) = inc.started_at {
        out.push_str(&format!("- Started: {}\n", utc(start)));
    }
    out.push_str(&format!("- State: {}\n", inc.state.as_str()));
    if let Some(now) = inc.now {
        out.push_str(&format!("- Figures as of (source clock): {}\n", utc(now)));
    }
    let t = &o.totals;
    out.push_str(&format!(
        "- Affected now: {} mailboxes in {} of {} tenants; {} restored; messages: {}\n",
        thousands(t.affected_mailboxes),
        thousands(t.affected_tenants),
        thousands(t.tenants),
        thousands(t.restored_mailboxes),
        queued_claim(t.queued_messages, o.lost_messages()),
    ));
    for c in o.clusters.iter().filter(|c| c.reindex.scope > 0) {
        let r = &c.reindex;
        out.push_str(&format!(
            "- Reindex {}: {} of {} {} done, {} failed; scope revised {} times\n",
            cell(&c.name),
            thousands(r.done),
            thousands(r.scope),
            r.unit.as_str(),
            thousands(r.failed),
            r.revisions.len().saturating_sub(1),
        ));
    }

    out.push_str("\n## Timeline\n\n");
    if audit.is_empty() {
        out.push_str(
            "Nothing on record: no priority was changed and no status update published.\n",
        );
    } else {
        out.push_str("| time (UTC) | who | what | target | change | reason |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        let name = |id: &str| {
            tenants
                .iter()
                .find(|t| &*t.id == id)
                .map_or_else(|| cell(id), |t| format!("{} ({})", cell(&t.name), cell(id)))
        };
        for e in audit {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                e.at.format("%Y-%m-%d %H:%M:%S"),
                cell(&e.actor),
                cell(&e.action),
                name(&e.target),
                cell(&e.detail),
                cell(&e.reason),
            ));
        }
    }

    out.push_str("\n## Priorities in force\n\n");
    let mut decided: Vec<(&TenantRow, &PriorityDecision)> = tenants
        .iter()
        .filter_map(|t| t.priority_set.as_deref().map(|d| (t, d)))
        .collect();
    decided
        // The reindex order: priority, then explicit ranks, then the rest.
        .sort_by_key(|(t, d)| (priority::order_key(d.priority, d.rank), t.id.clone()));
    if decided.is_empty() {
        out.push_str("Every tenant is at the default priority.\n");
    } else {
        out.push_str(
            "| priority | tenant | affected now | restored | set by | at (UTC) | reason |\n",
        );
        out.push_str("|---|---|---|---|---|---|---|\n");
        for (t, d) in decided {
            out.push_str(&format!(
                "| {} | {} ({}) | {} of {} | {} | {} | {} | {} |\n",
                d.label(),
                cell(&t.name),
                cell(&t.id),
                thousands(t.affected()),
                thousands(t.mailboxes),
                thousands(t.restored()),
                cell(&d.set_by),
                d.set_at.format("%Y-%m-%d %H:%M:%S"),
                cell(&d.reason),
            ));
        }
    }

    out.push_str("\n## Status updates\n\n");
    let published = audit.iter().filter(|e| e.action == "publish").count();
    if published == 0 {
        out.push_str("None published through warroom.\n");
    } else {
        out.push_str(&format!(
            "{published} published; each is in the timeline above with what it said.\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Priority;
    use std::sync::Arc;

    #[test]
    fn the_report_names_who_decided_what_and_is_safe_markdown() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let d = PriorityDecision {
            tenant_id: "t00000".into(),
            priority: Priority::P0,
            rank: 0,
            version: 1,
            set_by: "ana".into(),
            set_at: at,
            reason: "closing | sales\x1b[2J".into(),
        };
        let tenant = TenantRow {
            id: "t00000".into(),
            name: "Acme Title & Escrow".into(),
            mailboxes: 250,
            priority: Priority::P0,
            priority_set: Some(Arc::new(d.clone())),
            ..Default::default()
        };
        let audit = vec![AuditEvent {
            id: 1,
            at,
            actor: "ana".into(),
            action: "set_priority".into(),
            target: "t00000".into(),
            reason: d.reason.clone(),
            detail: "P2 → P0".into(),
        }];
        let md = render(&Overview::default(), &[tenant], &audit, at);
        assert!(
            md.contains("| ana | set_priority | Acme Title & Escrow (t00000) | P2 → P0 |"),
            "{md}"
        );
        assert!(md.contains("| P0 | Acme Title & Escrow (t00000) |"), "{md}");
        assert!(md.contains("closing \\| sales"), "{md}");
        assert!(
            !md.contains('\x1b'),
            "no escape sequence reaches the report"
        );
        let empty = render(&Overview::default(), &[], &[], at);
        assert!(empty.contains("Nothing on record"));
        assert!(empty.contains("Every tenant is at the default priority"));
    }
}
