use super::*;

fn sim() -> Simulator {
    Simulator::new(SimConfig::default()).expect("default config is valid")
}

fn run(s: &mut Simulator, hours: f64) {
    let steps = (hours * 3600.0 / 60.0) as usize;
    for _ in 0..steps {
        s.advance(60.0);
    }
}

#[test]
fn same_seed_same_incident() {
    let (mut a, mut b) = (sim(), sim());
    run(&mut a, 12.0);
    run(&mut b, 12.0);
    assert_eq!(a.tenants(), b.tenants());
    assert_eq!(a.overview(), b.overview());
    let mut c = Simulator::new(SimConfig {
        seed: 7,
        ..SimConfig::default()
    })
    .unwrap();
    run(&mut c, 12.0);
    assert_ne!(a.tenants(), c.tenants(), "another seed, another incident");
}

#[test]
fn long_tailed_tenants_and_varied_impact() {
    let s = sim();
    let rows = s.tenants();
    assert_eq!(rows.len(), 2_000);
    assert_eq!(rows.iter().map(|t| t.mailboxes).sum::<u64>(), 50_000);
    let big = rows.iter().filter(|t| t.mailboxes >= 1_000).count();
    let tiny = rows.iter().filter(|t| t.mailboxes <= 10).count();
    assert!(
        big >= 3,
        "a few tenants with thousands of mailboxes ({big})"
    );
    assert!(tiny >= 800, "many with a handful ({tiny})");
    let on_a: Vec<_> = rows.iter().filter(|t| &*t.cluster_id == "a").collect();
    let zero = on_a.iter().filter(|t| t.affected() == 0).count();
    let high = on_a
        .iter()
        .filter(|t| t.mailboxes >= 20 && t.affected_fraction() >= 0.7)
        .count();
    assert!(zero > on_a.len() / 5, "many cluster A tenants unaffected");
    assert!(high > 20, "some near 80%");
    assert!(
        rows.iter()
            .filter(|t| &*t.cluster_id == "b")
            .all(|t| t.affected() == 0)
    );
    assert_eq!(&*rows[0].primary_domain, "acme-title.com");
}

#[test]
fn storage_fault_fails_logins_on_cluster_a_only() {
    let mut s = sim();
    s.advance(60.0);
    let o = s.overview();
    let imap = |c: &Cluster| {
        c.services
            .iter()
            .find(|x| x.role == ServiceRole::Imap)
            .unwrap()
            .clone()
    };
    let a = imap(&o.clusters[0]);
    let b = imap(&o.clusters[1]);
    assert!(a.login_success_rate.unwrap() < 0.9);
    assert_ne!(a.status, Health::Ok);
    assert_eq!(b.login_success_rate, Some(1.0));
    assert_eq!(o.clusters[1].health, Health::Ok);
    assert_eq!(o.incident.state, IncidentState::Investigating);
    // A service that is down answers nothing: no latency, not "0ms".
    let index = o.clusters[0]
        .services
        .iter()
        .find(|x| x.role == ServiceRole::Index)
        .unwrap();
    assert_eq!(index.status, Health::Down);
    assert_eq!(index.latency_ms, None);
}

#[test]
fn scope_starts_at_25000_files_and_is_revised_upward() {
    let mut s = sim();
    run(&mut s, 8.0);
    let r = s.overview().clusters[0].reindex.clone();
    assert_eq!(r.revisions[0].scope, 25_000);
    assert!(r.revisions.len() >= 2, "revised: {:?}", r.revisions);
    assert!(r.revisions.windows(2).all(|w| w[1].scope > w[0].scope));
    assert!(r.scope > 30_000);
    assert!(r.done > 0 && r.rate_per_min.is_some_and(|r| r > 0.0));
}

#[test]
fn queue_grows_then_drains() {
    let mut s = sim();
    run(&mut s, 10.0);
    let q10 = s.overview().clusters[0]
        .queue
        .depth()
        .expect("the simulator measures its queue");
    assert!(q10 > 10_000, "mail is queued for locked mailboxes: {q10}");
    run(&mut s, 50.0);
    let o = s.overview();
    assert!(o.clusters[0].queue.depth() < Some(q10 / 10), "drained");
    assert_eq!(o.totals.affected_mailboxes, 0);
    assert!(matches!(
        o.incident.state,
        IncidentState::Monitoring | IncidentState::Resolved
    ));
}

#[test]
fn reindex_slows_at_peak_load() {
    let mut s = sim();
    // Oct 7 02:30 UTC (night) vs Oct 7 09:00 (EU peak).
    run(&mut s, 9.0);
    let night = s.overview().clusters[0]
        .reindex
        .rate_per_min
        .expect("measured");
    run(&mut s, 6.5);
    let peak = s.overview().clusters[0]
        .reindex
        .rate_per_min
        .expect("measured");
    assert!(peak < night * 0.7, "night {night} peak {peak}");
}

/// Apart from the load, the reindex runs faster some hours and slower
/// others, by the scenario's spread: the same hour of the same seed always
/// alike, and exactly steady when the spread is 0.
#[test]
fn the_reindex_speed_varies_from_hour_to_hour_by_the_scenarios_spread() {
    let mut s = sim();
    let sigma = s.sc.reindex.speed_spread;
    assert!(sigma > 0.0);
    let hours = 4_000;
    let logs: Vec<f64> = (0..hours)
        .map(|h| {
            s.t = h as f64 * 3600.0 + 1800.0;
            let f = s.speed_noise();
            s.t += 1200.0;
            assert_eq!(f, s.speed_noise(), "one factor for the whole hour");
            f.ln()
        })
        .collect();
    let mean = logs.iter().map(|l| l.exp()).sum::<f64>() / hours as f64;
    let m = logs.iter().sum::<f64>() / hours as f64;
    let sd = (logs.iter().map(|l| (l - m).powi(2)).sum::<f64>() / (hours - 1) as f64).sqrt();
    assert!(
        (mean - 1.0).abs() < 0.002,
        "the same speed on average: {mean}"
    );
    assert!((sd / sigma - 1.0).abs() < 0.06, "spread {sd} for {sigma}");
    let changes = logs.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(changes, hours - 1, "a new factor every hour");

    let mut steady = (*s.sc).clone();
    steady.reindex.speed_spread = 0.0;
    let mut s = Simulator::new(SimConfig::of(steady)).unwrap();
    for h in 0..100 {
        s.t = h as f64 * 3600.0;
        assert_eq!(s.speed_noise(), 1.0);
    }
}

#[test]
fn second_fault_sends_restored_mailboxes_back() {
    let mut s = sim();
    let fault_at = SimConfig::default().scenario.later_faults[0].after_hours;
    run(&mut s, fault_at - 0.1);
    let before = s.overview().clusters[0].reindex.clone();
    s.advance(600.0);
    let after = s.overview().clusters[0].reindex.clone();
    assert!(after.mailboxes_restored < before.mailboxes_restored);
    assert!(after.mailboxes_pending > before.mailboxes_pending);
    let last = after.revisions.last().unwrap();
    assert!(last.reason.contains("mail-server bug"), "{}", last.reason);
    assert!(after.scope > before.scope);
}

#[test]
fn tenant_etas_are_ranges_and_lookup_finds_mailboxes() {
    let mut s = sim();
    run(&mut s, 8.0);
    let acme = &s.tenants()[0];
    assert!(acme.affected() > 0);
    let eta = &acme.eta;
    assert!(eta.is_known(), "{eta:?}");
    assert!(eta.p50 <= eta.p90);
    let page = s
        .mailboxes(&MailboxQuery {
            tenant_id: "t00000".into(),
            states: vec![MailboxState::ReindexPending],
            sort_by_eta: true,
            offset: 0,
            limit: 5,
        })
        .unwrap();
    assert!(page.total > 0);
    let first = &page.rows[0];
    assert!(first.reindex_position > 0);
    let hits = s.lookup(&first.address.to_uppercase(), 10).hits();
    assert!(matches!(&hits[..], [LookupHit::Mailbox(m)] if m.address == first.address));
    assert!(matches!(
        &s.lookup("acme-title.com", 10).hits()[..],
        [LookupHit::Domain { .. }]
    ));
    assert!(s.lookup("nobody@nowhere.example", 10).matches.is_empty());
    assert!(
        s.lookup("alice.smith99999999999999999999@acme-title.com", 10)
            .matches
            .is_empty()
    );
}

#[test]
fn bad_sizes_are_refused_with_a_reason() {
    let e = Simulator::new(SimConfig {
        tenants: 10,
        mailboxes: 5,
        ..SimConfig::default()
    })
    .err()
    .unwrap();
    assert!(e.contains("--mailboxes"), "{e}");
}

fn decide(id: &str, priority: Priority, rank: u32) -> Arc<PriorityDecision> {
    Arc::new(PriorityDecision {
        tenant_id: id.into(),
        priority,
        rank,
        version: 1,
        set_by: "test".into(),
        set_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
        reason: "test".into(),
    })
}

/// Priority first, then explicit rank (one tenant after the other), then
/// the fair round-robin: positions in the order say so at once.
#[test]
fn priorities_and_ranks_order_the_reindex() {
    let mut s = sim();
    run(&mut s, 7.0);
    let mut waiting: Vec<TenantRow> = s
        .tenants()
        .into_iter()
        .filter(|t| t.reindex_rank > 0 && t.states.get(MailboxState::ReindexPending) >= 3)
        .collect();
    waiting.sort_by_key(|t| std::cmp::Reverse(t.reindex_rank));
    assert!(waiting.len() >= 3, "tenants waiting: {}", waiting.len());
    let (a, b, c) = (&waiting[0].id, &waiting[1].id, &waiting[2].id);
    // c: P1 in fair order; a: P1 rank 2; b: P1 rank 1.
    s.set_priority(decide(c, Priority::P1, 0)).unwrap();
    s.set_priority(decide(a, Priority::P1, 2)).unwrap();
    s.set_priority(decide(b, Priority::P1, 1)).unwrap();
    let rank = |s: &Simulator, id: &str| s.tenant(id).unwrap().reindex_rank;
    let (ra, rb, rc) = (rank(&s, a), rank(&s, b), rank(&s, c));
    assert!(rb < ra && ra < rc, "b {rb} < a {ra} < c {rc}");
    let b_pending = s
        .tenant(b)
        .unwrap()
        .states
        .get(MailboxState::ReindexPending);
    // b's last mailbox comes right after the workers' current jobs.
    assert_eq!(rb, s.in_flight.len() as u64 + b_pending);
    // The decision is on the row, and the row counts as changed.
    let row = s.tenant(b).unwrap();
    assert_eq!(row.priority, Priority::P1);
    assert_eq!(row.priority_set.as_ref().unwrap().rank, 1);
    assert!(s.changed_tenants().iter().any(|t| t.id == *b));
    assert!(matches!(
        s.set_priority(decide("t99999", Priority::P0, 0)),
        Err(SourceError::UnknownTenant(_))
    ));
}

/// A first estimate that was too high is brought down when the scan has
/// found everything: the war room plans on what the scan found, not on a
/// guess (it used to keep any estimate above the exact figure for good,
/// and the cluster's ETA with it).
#[test]
fn the_finished_scan_brings_a_too_high_estimate_down_to_what_it_found() {
    let mut sc = Scenario::load("cluster-a-2008").unwrap();
    sc.fault.initial_scope_files = 400_000.0;
    let mut s = Simulator::new(SimConfig::of(sc)).unwrap();
    run(&mut s, 8.0);
    let r = s.overview().clusters[0].reindex.clone();
    assert_eq!(r.revisions[0].scope, 400_000);
    let last = r.revisions.last().unwrap();
    assert!(last.reason.starts_with("scan complete"), "{last:?}");
    assert!(last.scope < 100_000, "{last:?}");
    assert_eq!(last.scope, s.files_found);
    assert_eq!(r.scope, s.files_found.max(r.done));
}

/// The p90 is read as "back by 14:05": 14:04:20 is quoted 14:05, never
/// 14:04; the p50, a median, goes to the nearest minute; a whole minute
/// stays.
#[test]
fn etas_are_quoted_to_the_minute_the_promise_rounded_up() {
    use chrono::TimeZone;
    let t = |h, m, s| Utc.with_ymd_and_hms(2008, 10, 7, h, m, s).single().unwrap();
    let eta = round_eta(EtaRange::at(t(14, 4, 20), t(15, 9, 20)));
    assert_eq!((eta.p50, eta.p90), (Some(t(14, 4, 0)), Some(t(15, 10, 0))));
    let eta = round_eta(EtaRange::at(t(14, 4, 40), t(15, 10, 0)));
    assert_eq!((eta.p50, eta.p90), (Some(t(14, 5, 0)), Some(t(15, 10, 0))));
}

#[test]
fn the_reindex_left_is_the_files_not_reindexed_yet() {
    // What the cluster's ETA is drawn for: every file of the mailboxes
    // waiting (for a first try or a retry) and what is left of those in
    // flight, no more (a mailbox part done used to count whole).
    let mut s = sim();
    run(&mut s, 10.0);
    assert!(s.scan_done() && !s.in_flight.is_empty());
    let waiting: u64 = s
        .tenants
        .iter()
        .flat_map(|t| t.pending.iter().map(move |&l| t.first + u64::from(l)))
        .filter(|&m| s.mailbox_state(m) != MailboxState::Reindexing)
        .map(|m| u64::from(s.files[m as usize]))
        .sum();
    let flying: f64 = s.in_flight.iter().map(|f| f.remaining).sum();
    let scope = s.scope.as_ref().expect("identified");
    let left = s.files_left(scope);
    assert!(
        (left - (waiting as f64 + flying)).abs() < 1e-6,
        "{left} files left, {waiting} waiting and {flying} in flight"
    );
}

#[test]
fn no_tenant_is_promised_later_than_the_whole_reindex() {
    // A tenant's mailboxes are part of the reindex: the support line must
    // not read a tenant back after the war room's "reindex done".
    let mut s = sim();
    run(&mut s, 4.0);
    let mut checked = 0;
    for _ in 0..32 {
        run(&mut s, 0.5);
        let whole = s.cluster(CLUSTER_A).reindex.eta;
        let (Some(p50), Some(p90)) = (whole.p50, whole.p90) else {
            continue;
        };
        for t in s.tenants().iter().filter(|t| t.eta.is_known()) {
            assert!(
                t.eta.p50 <= Some(p50) && t.eta.p90 <= Some(p90),
                "{} at {}: {:?} after the reindex's {p50}–{p90}",
                t.name,
                s.now(),
                t.eta
            );
            checked += 1;
        }
    }
    assert!(checked > 1_000, "only {checked} ETAs checked");
}

#[test]
fn a_tenant_the_scan_has_not_reached_waits_a_round_after_it_is_found() {
    // Its mailboxes join the reindex's rotation behind every tenant in it
    // when the scan reaches them: its ETA is a round after that moment.
    let mut s = sim();
    run(&mut s, 4.5);
    let now = s.now();
    let mut checked = 0;
    for (ti, t) in s.tenants.iter().enumerate() {
        let unreached = t.pending.is_empty() && t.states.get(MailboxState::LockedOut) > 0;
        let Some(p50) = t.eta.p50.filter(|_| unreached) else {
            continue;
        };
        let reach = s.scan_reaches(now, s.scan_end[ti]);
        assert!(
            p50 >= reach + Duration::minutes(10),
            "{}: back {p50}, found {reach}",
            t.name
        );
        checked += 1;
    }
    assert!(checked > 50, "only {checked} tenants not reached yet");
}

#[test]
fn the_finished_scan_counts_the_files_it_found_not_a_sample_of_mailboxes() {
    let mut s = sim();
    run(&mut s, 10.0);
    assert!(s.scan_done(), "the default scan is done by T+10h");
    let now = s.now();
    let scope = s.scope.clone().expect("identified");
    let (eta, _) = s.reindex_eta(now, &scope);
    // Mailboxes sampled bigger than they are change nothing: the scope is
    // the files found.
    s.avg_pending_files *= 1.5;
    assert_eq!(s.reindex_eta(now, &scope).0, eta);
}

#[test]
fn the_last_tenant_waits_for_everyone_elses_retries() {
    let mut s = sim();
    run(&mut s, 10.0);
    // Half of all first attempts failing: every tenant's retries come
    // before the biggest one's last mailbox, as they do before the end of
    // the whole reindex.
    s.lost_files = s.attempted_files / 2;
    s.forecast_tenants();
    let now = s.now();
    let whole = s.whole_eta.clone().expect("identified").0.p50.unwrap();
    let last = s
        .tenants
        .iter()
        .filter_map(|t| t.eta.p50)
        .max()
        .expect("tenants with ETAs");
    let (to_whole, to_last) = ((whole - now).num_seconds(), (last - now).num_seconds());
    assert!(
        to_last * 20 >= to_whole * 19,
        "the last tenant in {to_last} s, the whole reindex in {to_whole} s"
    );
}
