//! `warroom report`: a markdown incident report from the gateway's audit
//! log — the figures as they stand, the timeline of decisions, the
//! priorities in force and who set them. What resellers asked for after the
//! outage (seed comments 41, 47): a record, not a recollection.

use chrono::{DateTime, Utc};

use super::{self as client, GatewayClient};
use crate::api;
use crate::domain::format::{affected_of, counted, duration, queued_claim, thousands};
use crate::domain::priority::{self, AuditEvent, PriorityDecision};
use crate::domain::sanitize::sanitize;
use crate::domain::slip::{self, SlipBasis};
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
        "- Affected now: {} in {} of {} tenants; {} restored; messages: {}\n",
        counted(t.affected_mailboxes, "mailbox", "mailboxes"),
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
                "| {} | {} ({}) | {} | {} | {} | {} | {} |\n",
                d.label(),
                cell(&t.name),
                cell(&t.id),
                affected_of(t),
                thousands(t.restored()),
                cell(&d.set_by),
                d.set_at.format("%Y-%m-%d %H:%M:%S"),
                cell(&d.reason),
            ));
        }
    }

    estimates_over_time(&mut out, o, tenants);

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

fn minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// `## Estimates over time`: the tenants whose ETA is later than it was
/// published or first shown (the gateway's slips), and each cluster's
/// reindex ETA as the gateway sampled it.
fn estimates_over_time(out: &mut String, o: &Overview, tenants: &[TenantRow]) {
    out.push_str("\n## Estimates over time\n\n");
    out.push_str("Times on the source clock, UTC. A tenant's ETA *slipped* when its p90 is 15 minutes or more later than when the last status update was published (or, if none gave it one, than the first p90 shown since it was last unaffected), or when its estimate was withdrawn.\n\n");
    let slipped = slip::slipped(tenants);
    if slipped.is_empty() {
        out.push_str("No tenant's ETA is later now than it was published or first shown.\n");
    } else {
        out.push_str(&format!(
            "{} with an ETA later than said:\n\n",
            counted(slipped.len() as u64, "tenant", "tenants")
        ));
        out.push_str(
            "| tenant | affected now | p90 said | said at | said as | p90 now | later by |\n",
        );
        out.push_str("|---|---|---|---|---|---|---|\n");
        for t in slipped {
            let Some(s) = &t.eta_slip else { continue };
            let (now, by) = match (s.later_by, t.eta.p90) {
                (Some(d), Some(p90)) => (minute(p90), duration(d)),
                _ => (
                    format!("no estimate: {}", cell(&t.eta.reason)),
                    "withdrawn".to_string(),
                ),
            };
            out.push_str(&format!(
                "| {} ({}) | {} | {} | {} | {} | {now} | {by} |\n",
                cell(&t.name),
                cell(&t.id),
                affected_of(t),
                minute(s.baseline_p90),
                minute(s.since),
                match s.basis {
                    SlipBasis::Published => "published",
                    SlipBasis::FirstShown => "first shown",
                },
            ));
        }
    }
    for c in o
        .clusters
        .iter()
        .filter(|c| !c.reindex.eta_history.is_empty())
    {
        out.push_str(&format!(
            "\n### Reindex ETA, {}, over time\n\nThe ETA shown at the start of each hour the reindex had work (beyond 48 samples, every other one is dropped and the step doubles).\n\n",
            cell(&c.name)
        ));
        out.push_str("| at | p50 | p90 |\n|---|---|---|\n");
        for e in &c.reindex.eta_history {
            let (p50, p90) = match (e.eta.p50, e.eta.p90) {
                (Some(a), Some(b)) => (minute(a), minute(b)),
                _ if e.eta.reason.is_empty() => ("no estimate".into(), "–".into()),
                _ => (format!("no estimate: {}", cell(&e.eta.reason)), "–".into()),
            };
            out.push_str(&format!("| {} | {p50} | {p90} |\n", minute(e.at)));
        }
    }
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
        let mut one = Overview::default();
        one.totals.affected_mailboxes = 1;
        let md = render(&one, &[], &[], at);
        assert!(md.contains("- Affected now: 1 mailbox in "), "{md}");
        let empty = render(&Overview::default(), &[], &[], at);
        assert!(empty.contains("Nothing on record"));
        assert!(empty.contains("Every tenant is at the default priority"));
        assert!(
            empty.contains("## Estimates over time")
                && empty
                    .contains("No tenant's ETA is later now than it was published or first shown."),
            "{empty}"
        );
    }

    #[test]
    fn estimates_over_time_list_the_slips_and_the_reindex_eta_history() {
        use crate::domain::forecast::EtaRange;
        use crate::domain::slip::{EtaSample, EtaSlip};
        use crate::domain::{Cluster, MailboxState, Reindex, StateCounts};
        use chrono::Duration;
        let at = DateTime::from_timestamp(1_223_314_200, 0).unwrap(); // 2008-10-06 17:30
        let mut states = StateCounts::default();
        states.add(MailboxState::ReindexPending, 40);
        states.add(MailboxState::Ok, 10);
        let slipped = |id: &str, name: &str, later: Option<i64>| TenantRow {
            id: id.into(),
            name: name.into(),
            mailboxes: 50,
            states,
            eta: match later {
                Some(_) => EtaRange::at(at + Duration::hours(7), at + Duration::hours(9)),
                None => EtaRange::unknown("no progress at the current rate"),
            },
            eta_slip: Some(EtaSlip {
                basis: if later.is_some() {
                    SlipBasis::Published
                } else {
                    SlipBasis::FirstShown
                },
                since: at + Duration::hours(3),
                baseline_p90: at + Duration::hours(6),
                later_by: later.map(Duration::minutes),
            }),
            ..Default::default()
        };
        let o = Overview {
            clusters: vec![Cluster {
                id: "a".into(),
                name: "Cluster A".into(),
                reindex: Reindex {
                    eta_history: vec![
                        EtaSample {
                            at: at + Duration::hours(3),
                            eta: EtaRange::unknown("no progress measured yet"),
                        },
                        EtaSample {
                            at: at + Duration::hours(4),
                            eta: EtaRange::at(at + Duration::hours(10), at + Duration::hours(14)),
                        },
                    ],
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        };
        let tenants = [
            slipped("t00000", "Acme Title & Escrow", Some(180)),
            slipped("t00001", "Relief | Borders", None),
            TenantRow {
                id: "t00002".into(),
                ..Default::default()
            },
        ];
        let md = render(&o, &tenants, &[], at);
        let section = md
            .split("## Estimates over time")
            .nth(1)
            .unwrap()
            .split("## Status updates")
            .next()
            .unwrap();
        assert!(
            section.contains("2 tenants with an ETA later than said"),
            "{md}"
        );
        let rows: Vec<&str> = section.lines().filter(|l| l.contains("(t0")).collect();
        assert_eq!(
            rows,
            [
                "| Relief \\| Borders (t00001) | 40 of 50 | 2008-10-06 23:30 | 2008-10-06 20:30 | first shown | no estimate: no progress at the current rate | withdrawn |",
                "| Acme Title & Escrow (t00000) | 40 of 50 | 2008-10-06 23:30 | 2008-10-06 20:30 | published | 2008-10-07 02:30 | 3h 00m |",
            ],
            "{md}"
        );
        assert!(
            section.contains("### Reindex ETA, Cluster A, over time"),
            "{md}"
        );
        assert!(
            section.contains("| 2008-10-06 20:30 | no estimate: no progress measured yet | – |"),
            "{md}"
        );
        assert!(
            section.contains("| 2008-10-06 21:30 | 2008-10-07 03:30 | 2008-10-07 07:30 |"),
            "{md}"
        );
    }
}
