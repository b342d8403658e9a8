//! The lookup answers: what support reads out, as text, JSON and CSV.

use super::*;
use crate::domain::MailboxState;

fn at(h: u32, m: u32) -> DateTime<Utc> {
    use chrono::TimeZone;
    Utc.with_ymd_and_hms(2008, 10, 6, h, m, 0).single().unwrap()
}

/// The sentence support reads out, in every state a forecast can be in.
#[test]
fn the_back_clause_reads_correctly_in_every_forecast_state() {
    let now = at(20, 31);
    let next = Some(at(21, 47));
    let range = EtaRange::at(at(20, 54), at(21, 17));
    assert_eq!(
        back_clause(&range, now, next),
        "expected back between 20:54 and 21:17 UTC (in 23m–46m)"
    );
    let point = EtaRange::at(at(20, 54), at(20, 54));
    assert_eq!(
        back_clause(&point, now, next),
        "expected back by 20:54 UTC (in 23m)"
    );
    let overnight = EtaRange::at(at(23, 0), at(23, 0) + chrono::Duration::hours(5));
    let said = back_clause(&overnight, now, None);
    assert!(
        said.starts_with("expected back between 23:00 and Oct 07 04:00 UTC"),
        "{said}"
    );
    let due = EtaRange::at(at(20, 0), at(20, 30));
    assert!(back_clause(&due, now, next).starts_with("due back now"));
    // By the kind, whatever the words: a reworded reason says the same.
    for (kind, says) in [
        (
            NoEstimate::NotIdentified,
            "the cause is still being identified",
        ),
        (
            NoEstimate::NoProgressYet,
            "the repair has only just started",
        ),
        (
            NoEstimate::TooSlow,
            "the repair is going too slowly right now to give a time",
        ),
        (
            NoEstimate::WaitsForRepair,
            "it waits for the repair of the mailboxes",
        ),
        (NoEstimate::Unspecified, "we are still assessing the damage"),
    ] {
        let reason = "reworded by someone";
        let none = EtaRange::none(kind, reason);
        assert_eq!(
            back_clause(&none, now, next),
            format!(
                "not back yet, and we don't have an estimate yet: {says}. Next update by 21:47 UTC"
            ),
            "{reason}"
        );
        assert!(
            !back_clause(&none, now, None).contains("Next update"),
            "no promise, none said"
        );
    }
    // A promise already past is not repeated to a customer.
    let none = EtaRange::none(NoEstimate::NotIdentified, "not identified yet");
    assert!(!back_clause(&none, now, Some(at(20, 0))).contains("Next update"));
}

#[test]
fn a_tenant_sentence_with_no_estimate_is_whole() {
    let m = Match {
        kind: "tenant",
        quality: None,
        address: None,
        domain: None,
        tenant_id: "t00000".into(),
        tenant_name: Some("Acme Title & Escrow".into()),
        state: None,
        cluster: None,
        volume: None,
        reindex_position: None,
        affected_mailboxes: Some(205),
        mailboxes: Some(250),
        unchecked_mailboxes: Some(0),
        queued_messages: Some(1),
        eta_p50: None,
        eta_p90: None,
        eta_note: Some("not identified yet".into()),
        no_estimate: Some(NoEstimate::NotIdentified),
        eta_slip: None,
        last_error: None,
    };
    let (_, say) = describe_match(&m, at(15, 2), Some(at(15, 47)));
    assert_eq!(
        say,
        "Your 205 affected mailboxes are not back yet, and we don't have an estimate yet: \
         the cause is still being identified. Next update by 15:47 UTC; 1 message queued."
    );
    let one = Match {
        affected_mailboxes: Some(1),
        eta_p50: Some(at(16, 0)),
        eta_p90: Some(at(16, 30)),
        eta_note: None,
        no_estimate: None,
        ..m
    };
    let (_, say) = describe_match(&one, at(15, 2), None);
    assert!(
        say.starts_with("Your 1 affected mailbox is expected back between 16:00 and 16:30 UTC"),
        "{say}"
    );
}

#[test]
fn bad_queries_say_why() {
    assert!(check_query("").unwrap_err().contains("empty"));
    assert!(check_query("   ").unwrap_err().contains("empty"));
    assert!(
        check_query(&"x".repeat(10_000))
            .unwrap_err()
            .contains("limit is 512")
    );
    assert!(check_query("a\u{1b}[2J").unwrap_err().contains("control"));
    assert!(check_query("alice.smith@acme-title.com").is_ok());
}

/// A mailbox row as a platform gateway sends it (no volume).
fn platform_match(
    quality: Option<MatchQuality>,
    state: Option<MailboxState>,
    last_error: &str,
) -> Match {
    let m = pb::LookupMatch {
        kind: pb::MatchKind::Mailbox as i32,
        quality: quality.map_or(0, |q| api::match_quality_to_pb(q) as i32),
        mailbox: Some(api::mailbox_to_pb(&crate::domain::MailboxRow {
            address: "carol@acme.test".into(),
            tenant_id: "acme".into(),
            cluster_id: "main".into(),
            state,
            last_error: last_error.into(),
            queued_messages: Some(2),
            ..Default::default()
        })),
        tenant: Some(api::tenant_to_pb(&crate::domain::TenantRow {
            id: "acme".into(),
            name: "Acme Title".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    to_match(&m)
}

#[test]
fn a_mailbox_answer_names_its_tenant_and_leaves_out_what_is_empty() {
    let m = platform_match(Some(MatchQuality::Exact), Some(MailboxState::Restored), "");
    assert_eq!(m.tenant_name.as_deref(), Some("Acme Title"));
    let (lines, say) = describe_match(&m, Utc::now(), None);
    assert_eq!(
        lines[0],
        "carol@acme.test: restored (tenant Acme Title (acme), cluster MAIN)"
    );
    assert!(say.contains("2 messages queued"), "{say}");
}

#[test]
fn a_mailbox_not_probed_yet_is_not_called_ok_nor_affected() {
    let m = platform_match(
        Some(MatchQuality::Exact),
        None,
        "not probed yet by the damage sweep",
    );
    let (lines, say) = describe_match(&m, Utc::now(), None);
    assert!(lines[0].contains(": unknown"), "{lines:?}");
    assert!(say.contains("not known yet"), "{say}");
    assert!(say.contains("not probed yet"), "{say}");
    assert!(
        !say.contains("affected") && !say.contains("has service"),
        "{say}"
    );
}

/// A tenant of 40 mailboxes as a platform reports it before its damage
/// sweep probed them all: `known` mailboxes counted by state.
fn partly_checked_tenant(known: &[(MailboxState, u64)]) -> Match {
    let mut states = crate::domain::model::StateCounts::default();
    for &(st, n) in known {
        states.add(st, n);
    }
    to_match(&pb::LookupMatch {
        kind: pb::MatchKind::Tenant as i32,
        quality: api::match_quality_to_pb(MatchQuality::Exact) as i32,
        tenant: Some(api::tenant_to_pb(&crate::domain::TenantRow {
            id: "acme".into(),
            name: "Acme Title".into(),
            mailboxes: 40,
            states,
            queued_messages: Some(2),
            ..Default::default()
        })),
        ..Default::default()
    })
}

#[test]
fn a_tenant_whose_mailboxes_are_not_all_checked_is_never_called_ok() {
    let now = Utc::now();
    // None probed yet: neither ok nor affected.
    let m = partly_checked_tenant(&[]);
    assert_eq!(m.state, Some("unknown"));
    assert_eq!(m.unchecked_mailboxes, Some(40));
    let (lines, say) = describe_match(&m, now, None);
    assert!(
        lines[0].contains("not checked yet (40 mailboxes"),
        "{lines:?}"
    );
    assert!(
        say.starts_with("We have not checked your mailboxes yet"),
        "{say}"
    );
    assert!(!say.contains("None of your"), "{say}");

    // Two probed and fine, 38 to go: "so far", with how many remain.
    let m = partly_checked_tenant(&[(MailboxState::Ok, 2)]);
    assert_eq!(m.state, Some("unknown"));
    let (lines, say) = describe_match(&m, now, None);
    assert!(
        lines[0].contains("0 of 40 mailboxes affected, 38 of 40 not checked yet"),
        "{lines:?}"
    );
    assert!(
        say.starts_with(
            "None of your mailboxes checked so far are affected; 38 of 40 not checked yet"
        ),
        "{say}"
    );

    // Three found locked out: affected, and the rest still unknown.
    let m = partly_checked_tenant(&[(MailboxState::LockedOut, 3)]);
    assert_eq!(m.state, Some("affected"));
    let (_, say) = describe_match(&m, now, None);
    assert!(say.starts_with("Your 3 affected mailboxes are"), "{say}");
    assert!(say.contains("37 of 40 not checked yet"), "{say}");

    // The bulk CSV carries the count, so a reseller's sheet does too.
    let mut csv = String::new();
    bulk_csv(
        &BulkRow {
            line: 1,
            query: "acme".into(),
            total: Some(1),
            matches: vec![partly_checked_tenant(&[(MailboxState::Ok, 2)])],
            error: None,
        },
        &mut csv,
    );
    let header: Vec<&str> = BULK_CSV_HEADER.split(',').collect();
    let fields: Vec<&str> = csv.trim_end().split(',').collect();
    assert_eq!(header.len(), fields.len(), "{csv}");
    let field = |name: &str| fields[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(field("state"), "unknown");
    assert_eq!(field("affected_mailboxes"), "0");
    assert_eq!(field("unchecked_mailboxes"), "38");

    // Every mailbox probed and fine: only then "ok".
    let m = partly_checked_tenant(&[(MailboxState::Ok, 40)]);
    assert_eq!(m.state, Some("ok"));
    let (_, say) = describe_match(&m, now, None);
    assert!(
        say.starts_with("None of your mailboxes are affected"),
        "{say}"
    );
}

#[test]
fn a_mailbox_the_incident_never_touched_has_service_not_service_again() {
    let now = Utc::now();
    let (_, say) = describe_match(
        &platform_match(Some(MatchQuality::Exact), Some(MailboxState::Ok), ""),
        now,
        None,
    );
    assert_eq!(say, "This mailbox has service; 2 messages queued.");
    let (_, say) = describe_match(
        &platform_match(Some(MatchQuality::Exact), Some(MailboxState::Restored), ""),
        now,
        None,
    );
    assert_eq!(say, "This mailbox has service again; 2 messages queued.");
}

#[test]
fn counts_say_of_how_many_and_at_least() {
    let m = platform_match(Some(MatchQuality::Exact), Some(MailboxState::Restored), "");
    let found = |shown: usize, total: Option<u64>, lower: bool| Matches {
        matches: vec![m.clone(); shown],
        total,
        total_is_lower_bound: lower,
    };
    assert_eq!(found(20, Some(78), false).count(), "20 of 78 matches");
    assert_eq!(
        found(20, Some(1000), true).count(),
        "20 of at least 1,000 matches"
    );
    assert_eq!(found(3, Some(3), false).count(), "3 matches");
    assert_eq!(found(1, Some(1), false).count(), "1 match");
    assert_eq!(found(0, Some(0), false).count(), "no matches");
    // A gateway from before the total: what came back, nothing more.
    assert_eq!(found(5, None, false).count(), "5 matches");
    assert!(found(5, Some(6), false).more() && !found(5, None, false).more());
    assert!(found(5, Some(5), false).did_you_mean().is_none());
}

#[test]
fn an_approximate_match_asks_did_you_mean_before_it_answers() {
    let m = platform_match(
        Some(MatchQuality::Approximate),
        Some(MailboxState::Restored),
        "",
    );
    let found = Matches {
        matches: vec![m.clone()],
        total: Some(1),
        total_is_lower_bound: false,
    };
    assert_eq!(found.did_you_mean().as_deref(), Some("carol@acme.test"));
    let (lines, say) = describe_match(&m, Utc::now(), None);
    assert!(
        lines[0].ends_with("[approximate match: not what was typed]"),
        "{lines:?}"
    );
    assert!(
        say.starts_with("If you meant carol@acme.test: this mailbox has service again"),
        "{say}"
    );
    // A gateway that does not say how it matched: no question asked.
    let m = platform_match(None, Some(MailboxState::Restored), "");
    assert!(
        !describe_match(&m, Utc::now(), None)
            .1
            .starts_with("If you meant")
    );
}

/// A tenant match whose ETA is 2h 05m later than first shown at 20:30.
fn slipped_tenant(later_by: Option<chrono::Duration>) -> (Match, DateTime<Utc>) {
    use crate::domain::slip::SlipBasis;
    let now = DateTime::from_timestamp(1_223_330_400, 0).unwrap(); // Oct 06 22:00
    let since = now - chrono::Duration::minutes(90);
    let mut states = crate::domain::StateCounts::default();
    states.add(MailboxState::ReindexPending, 40);
    let row = crate::domain::TenantRow {
        id: "t00000".into(),
        name: "Acme Title & Escrow".into(),
        mailboxes: 250,
        states,
        eta: match later_by {
            Some(_) => EtaRange::at(
                now + chrono::Duration::hours(3),
                now + chrono::Duration::hours(4),
            ),
            None => EtaRange::unknown("no progress at the current rate"),
        },
        eta_slip: Some(crate::domain::slip::EtaSlip {
            basis: SlipBasis::FirstShown,
            since,
            baseline_p90: now + chrono::Duration::minutes(115),
            later_by,
        }),
        ..Default::default()
    };
    let m = pb::LookupMatch {
        kind: pb::MatchKind::Tenant as i32,
        quality: api::match_quality_to_pb(MatchQuality::Exact) as i32,
        tenant: Some(api::tenant_to_pb(&row)),
        ..Default::default()
    };
    (to_match(&m), now)
}

#[test]
fn a_tenant_whose_eta_slipped_is_marked_and_the_sentence_says_so() {
    let (m, now) = slipped_tenant(Some(chrono::Duration::minutes(125)));
    let (lines, say) = describe_match(&m, now, None);
    assert!(
        lines.contains(&"  ↗ +2h 05m since 20:30 (the p90 was 23:55 when first shown)".to_string()),
        "{lines:?}"
    );
    assert!(
        say.contains("; that is 2h 05m later than estimated at 20:30 UTC; "),
        "{say}"
    );
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["eta_slip"]["later_by_seconds"], 7_500);
    assert_eq!(json["eta_slip"]["withdrawn"], false);
    assert_eq!(json["eta_slip"]["basis"], "first_shown");
    assert_eq!(json["eta_slip"]["since"], "2008-10-06T20:30:00Z");

    let (m, now) = slipped_tenant(None);
    let (lines, say) = describe_match(&m, now, None);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  ↗ estimate withdrawn since 20:30")),
        "{lines:?}"
    );
    assert!(
        say.contains("the estimate given at 20:30 UTC no longer holds"),
        "{say}"
    );
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["eta_slip"]["withdrawn"], true);
    assert!(json["eta_slip"]["later_by_seconds"].is_null());
    // No slip: nothing said about one.
    let m = platform_match(Some(MatchQuality::Exact), Some(MailboxState::Restored), "");
    assert!(serde_json::to_value(&m).unwrap()["eta_slip"].is_null());
    assert!(!describe_match(&m, now, None).1.contains("later than"));
}

#[test]
fn a_mailbox_whose_clients_must_resync_says_so() {
    let m = platform_match(
        Some(MatchQuality::Exact),
        Some(MailboxState::ResyncNeeded),
        "INBOX: UIDVALIDITY changed",
    );
    let (lines, say) = describe_match(&m, Utc::now(), None);
    assert!(lines.iter().any(|l| l.contains("must resync")), "{lines:?}");
    assert!(
        say.contains("has service") && say.contains("resync"),
        "{say}"
    );
}
