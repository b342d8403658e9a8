//! The Postfix queue adapter against a REAL Postfix 3.7 (Debian package
//! `postfix`), started privately on 127.0.0.1 under a temp dir. Needs root.
//!
//! Mail is seeded with `sendmail -C` and over SMTP to the instance's smtpd;
//! every recipient domain is relayed through the deferred `smtp` transport,
//! so it stays queued. The test then reads the queue with
//! `Postqueue::poll` (`postqueue -c DIR -j`) while moving the mail between
//! queues with `postsuper`, feeds the polls to `QueueFlow`, delivers one
//! domain to an aiosmtpd sink, and checks liveness with `postfix status`
//! across `postfix stop` and start.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

#[path = "fixtures/backends/daemons.rs"]
mod daemons;
#[path = "fixtures/ports.rs"]
mod ports;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use daemons::{Postfix, SmtpSink, require};
use warroom::sources::postfix::{
    Flow, FlowStep, Liveness, PostfixStatus, Postqueue, QueueCounts, QueueFlow, QueuedMessage,
    counts, per_address, per_domain,
};

/// Polls until `done` holds for the queue, or panics after `limit` with the
/// last answer and the maillog.
async fn poll_until(
    pq: &Postqueue,
    pf: &Postfix,
    limit: Duration,
    what: &str,
    done: impl Fn(&[QueuedMessage]) -> bool,
) -> Vec<QueuedMessage> {
    let deadline = Instant::now() + limit;
    loop {
        let last = pq.poll().await;
        if let Ok(msgs) = &last
            && done(msgs)
        {
            return msgs.clone();
        }
        if Instant::now() >= deadline {
            let shown = match &last {
                Ok(msgs) => format!("{:?} of {} messages", counts(msgs), msgs.len()),
                Err(e) => format!("error: {e}"),
            };
            panic!(
                "waited {limit:?} for {what}; last poll: {shown}\nmaillog:\n{}",
                daemons::tail(&pf.maillog, 4000)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn domains(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(d, n)| (d.to_string(), *n)).collect()
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Postfix and root: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_postfix_queue_is_counted_per_queue_and_per_domain() {
    let started = Utc::now();
    let mut pf = Postfix::start();
    let pq =
        Postqueue::new(pf.postqueue_command(), Duration::from_secs(10)).expect("valid command");

    // Empty to begin with.
    let msgs = pq.poll().await.expect("postqueue -j on an empty queue");
    assert!(msgs.is_empty(), "a fresh queue holds {msgs:?}");

    // 11 messages: acme.test 6, globex.test 4, initech.test 2 (one of which
    // has two initech recipients and must count once).
    for i in 0..5 {
        pf.sendmail("ops@warroom.test", &[&format!("user{i}@acme.test")], "acme");
    }
    for i in 0..3 {
        pf.sendmail(
            "ops@warroom.test",
            &[&format!("user{i}@globex.test")],
            "globex",
        );
    }
    pf.sendmail(
        "ops@warroom.test",
        &["both@acme.test", "both@GLOBEX.Test"],
        "two tenants",
    );
    pf.smtp(
        "ops@warroom.test",
        &["one@initech.test"],
        "initech over SMTP",
    );
    pf.smtp(
        "ops@warroom.test",
        &["two@initech.test", "three@INITECH.test"],
        "initech twice over SMTP",
    );
    const TOTAL: u64 = 11;
    let want_domains = domains(&[("acme.test", 6), ("globex.test", 4), ("initech.test", 2)]);

    // After pickup and the first delivery attempt everything is deferred.
    let msgs = poll_until(
        &pq,
        &pf,
        Duration::from_secs(20),
        "11 deferred messages",
        |m| counts(m).deferred == TOTAL,
    )
    .await;
    assert_eq!(
        counts(&msgs),
        QueueCounts {
            deferred: TOTAL,
            ..QueueCounts::default()
        }
    );
    assert_eq!(per_domain(&msgs), want_domains);
    let mut ids: Vec<&str> = msgs.iter().map(|m| m.queue_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), msgs.len(), "queue ids are unique");
    for m in &msgs {
        assert_eq!(m.sender, "ops@warroom.test");
        assert!(m.message_size > 0, "{m:?}");
        let arrived = m.arrival_time.expect("Postfix reports arrival_time");
        // Postfix stores whole seconds: allow a margin both ways.
        assert!(
            arrived >= started - chrono::Duration::seconds(5)
                && arrived <= Utc::now() + chrono::Duration::seconds(5),
            "arrival {arrived} outside the test's run (started {started})"
        );
        for r in &m.recipients {
            let reason = r.delay_reason.as_deref().unwrap_or_default();
            assert!(
                reason.contains("deferred transport"),
                "{}: delay_reason {:?}",
                r.address,
                r.delay_reason
            );
        }
    }

    // postsuper -h ALL: everything on hold, per-domain counts unchanged.
    pf.postsuper(&["-h", "ALL"]);
    let msgs = poll_until(&pq, &pf, Duration::from_secs(10), "11 held messages", |m| {
        counts(m).hold == TOTAL
    })
    .await;
    assert_eq!(
        counts(&msgs),
        QueueCounts {
            hold: TOTAL,
            ..QueueCounts::default()
        }
    );
    assert_eq!(per_domain(&msgs), want_domains);

    // postsuper -H ALL releases them to the deferred queue.
    pf.postsuper(&["-H", "ALL"]);
    poll_until(
        &pq,
        &pf,
        Duration::from_secs(10),
        "11 released messages",
        |m| counts(m).deferred == TOTAL && m.len() as u64 == TOTAL,
    )
    .await;

    // postsuper -d ALL empties the queue.
    pf.postsuper(&["-d", "ALL"]);
    poll_until(&pq, &pf, Duration::from_secs(10), "an empty queue", |m| {
        m.is_empty()
    })
    .await;

    // With Postfix stopped, mail waits in maildrop and postqueue still reads
    // the queue (as root; it warns on stderr, which the adapter tolerates).
    pf.stop();
    pf.sendmail("ops@warroom.test", &["late@Acme.test"], "while down");
    let msgs = poll_until(
        &pq,
        &pf,
        Duration::from_secs(10),
        "1 message in maildrop",
        |m| counts(m).maildrop == 1,
    )
    .await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(per_domain(&msgs), domains(&[("acme.test", 1)]));
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Postfix and root: ./scripts/test runs it"
)]
#[tokio::test]
async fn postqueue_failure_names_the_exit_code_and_the_reason() {
    require("/usr/sbin/postqueue", "postfix");
    let missing = std::env::temp_dir().join("warroom-no-such-postfix-config");
    let pq = Postqueue::new(
        vec![
            "/usr/sbin/postqueue".into(),
            "-c".into(),
            missing.display().to_string(),
            "-j".into(),
        ],
        Duration::from_secs(10),
    )
    .expect("valid command");
    let err = pq.poll().await.expect_err("no main.cf there").to_string();
    assert!(err.contains("exited with code"), "{err}");
    assert!(err.contains("postqueue"), "{err}");
    assert!(
        err.contains(&missing.display().to_string()),
        "the reason names the config dir: {err}"
    );
}

/// The console must say "Postfix down" as soon as it is, although
/// `postqueue -j` (as root) still reads the queue and exits 0.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Postfix and root: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_postfix_liveness_follows_stop_and_start_while_postqueue_still_answers() {
    let mut pf = Postfix::start();
    let pq =
        Postqueue::new(pf.postqueue_command(), Duration::from_secs(10)).expect("valid command");
    let status = PostfixStatus::for_postqueue(&pq, Duration::from_secs(10)).expect("valid command");
    assert_eq!(status.command(), pf.status_command());

    let running = status.check().await;
    assert!(running.is_running(), "a started Postfix: {running:?}");

    pf.sendmail("ops@warroom.test", &["alice@acme.test"], "queued");
    poll_until(
        &pq,
        &pf,
        Duration::from_secs(20),
        "1 deferred message",
        |m| counts(m).deferred == 1,
    )
    .await;

    pf.stop();
    // One check after `postfix stop` returned.
    let stopped = status.check().await;
    assert!(
        matches!(stopped, Liveness::Stopped { .. }),
        "after postfix stop: {stopped:?}"
    );
    let msgs = pq
        .poll()
        .await
        .expect("postqueue -j still exits 0 with Postfix down");
    assert_eq!(
        counts(&msgs),
        QueueCounts {
            deferred: 1,
            ..QueueCounts::default()
        },
        "and still lists the queue"
    );

    pf.start_again();
    let again = status.check().await;
    assert!(again.is_running(), "started again: {again:?}");
}

/// A check that cannot run must not read as "Postfix stopped": with no
/// terminal, `postfix` exits 1 silently for a missing configuration too.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Postfix and root: ./scripts/test runs it"
)]
#[tokio::test]
async fn postfix_status_with_a_missing_config_dir_cannot_tell_rather_than_stopped() {
    require("/usr/sbin/postfix", "postfix");
    let missing = std::env::temp_dir().join("warroom-no-such-postfix-config");
    let status = PostfixStatus::new(
        vec![
            "/usr/sbin/postfix".into(),
            "-c".into(),
            missing.display().to_string(),
            "status".into(),
        ],
        Duration::from_secs(10),
    )
    .expect("valid command");
    let got = status.check().await;
    assert!(
        matches!(&got, Liveness::Error { why } if why.contains(&missing.join("main.cf").display().to_string())),
        "{got:?}"
    );
}

/// The queue as polled now, fed to the flow tracker.
async fn observe(pq: &Postqueue, flow: &mut QueueFlow) -> (Vec<QueuedMessage>, Flow) {
    let msgs = pq.poll().await.expect("postqueue -j");
    let step = flow.observe(Utc::now(), &msgs);
    (msgs, step)
}

fn measured(flow: Flow, when: &str) -> FlowStep {
    match flow {
        Flow::Measured(step) => step,
        Flow::NotMeasuredYet => panic!("{when}: the flow is still not measured"),
    }
}

fn id_for(msgs: &[QueuedMessage], address: &str) -> String {
    msgs.iter()
        .find(|m| m.recipients.iter().any(|r| r.address == address))
        .map(|m| m.queue_id.clone())
        .unwrap_or_else(|| panic!("no queued message for {address}: {msgs:?}"))
}

/// Arrivals and departures, per domain, as a console polling the queue
/// would see them: new mail, mail moved between queues (no flow), mail
/// deleted, and mail delivered to an SMTP server.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Postfix and root: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_postfix_queue_flow_counts_arrivals_and_departures_per_domain() {
    let mut pf = Postfix::start();
    let pq =
        Postqueue::new(pf.postqueue_command(), Duration::from_secs(10)).expect("valid command");
    let mut flow = QueueFlow::new();

    // Mail already held when the console starts: no flow yet.
    pf.sendmail("ops@warroom.test", &["s1@acme.test"], "seed acme");
    pf.sendmail("ops@warroom.test", &["s2@globex.test"], "seed globex");
    poll_until(&pq, &pf, Duration::from_secs(20), "2 deferred", |m| {
        counts(m).deferred == 2
    })
    .await;
    let (_, first) = observe(&pq, &mut flow).await;
    assert_eq!(first, Flow::NotMeasuredYet);

    // Five more arrive.
    pf.sendmail("ops@warroom.test", &["n1@acme.test"], "acme");
    pf.smtp("ops@warroom.test", &["n2@acme.test"], "acme over SMTP");
    pf.sendmail("ops@warroom.test", &["n3@globex.test"], "globex");
    pf.smtp("ops@warroom.test", &["n4@initech.test"], "initech");
    pf.sendmail(
        "ops@warroom.test",
        &["n5@acme.test", "n5@globex.test"],
        "two tenants",
    );
    poll_until(&pq, &pf, Duration::from_secs(20), "7 deferred", |m| {
        counts(m).deferred == 7
    })
    .await;
    let (msgs, step) = observe(&pq, &mut flow).await;
    let step = measured(step, "after 5 new messages");
    assert_eq!((step.arrived, step.left, step.missing), (5, 0, 0));
    assert_eq!(
        step.arrived_per_domain,
        domains(&[("acme.test", 3), ("globex.test", 2), ("initech.test", 1)])
    );
    assert!(step.seconds > 0.0);

    // Held and released: the same messages, no flow. (A message can be
    // missing from one scan while it moves; that is not a departure.)
    pf.postsuper(&["-h", "ALL"]);
    poll_until(&pq, &pf, Duration::from_secs(10), "7 held", |m| {
        counts(m).hold == 7
    })
    .await;
    let (_, step) = observe(&pq, &mut flow).await;
    let step = measured(step, "after hold");
    assert_eq!((step.arrived, step.left), (0, 0));
    pf.postsuper(&["-H", "ALL"]);
    poll_until(&pq, &pf, Duration::from_secs(10), "7 released", |m| {
        counts(m).hold == 0 && m.len() == 7
    })
    .await;
    let (_, step) = observe(&pq, &mut flow).await;
    let step = measured(step, "after release");
    assert_eq!((step.arrived, step.left), (0, 0));

    // Two deleted: missing from the next poll, counted as left at the one
    // after (a message missing from one scan only may just have moved).
    pf.postsuper(&["-d", &id_for(&msgs, "n3@globex.test")]);
    pf.postsuper(&["-d", &id_for(&msgs, "n4@initech.test")]);
    poll_until(&pq, &pf, Duration::from_secs(10), "5 left after -d", |m| {
        m.len() == 5
    })
    .await;
    let (_, step) = observe(&pq, &mut flow).await;
    let step = measured(step, "after postsuper -d");
    assert_eq!((step.arrived, step.left), (0, 0));
    assert!(step.missing >= 2, "{step:?}");
    let (_, step) = observe(&pq, &mut flow).await;
    let step = measured(step, "a poll later");
    assert_eq!((step.arrived, step.left), (0, 2));
    assert_eq!(
        step.left_per_domain,
        domains(&[("globex.test", 1), ("initech.test", 1)])
    );

    // acme.test is delivered to an SMTP server; the rest stays deferred.
    // Restarted rather than reloaded: after a reload the old qmgr may still
    // take the flush and route acme.test the old way (deferred for minutes).
    let sink = SmtpSink::start();
    pf.postconf(&[&format!(
        "transport_maps = inline:{{acme.test=relay:[127.0.0.1]:{}}}",
        sink.port
    )]);
    pf.stop();
    pf.start_again();
    pf.flush();
    // s1, n1, n2 and n5's acme copy.
    sink.wait_for(4, &pf).await;
    let remaining = poll_until(&pq, &pf, Duration::from_secs(10), "2 queued", |m| {
        m.len() == 2
    })
    .await;
    // n5 stays for its globex recipient only.
    assert_eq!(
        per_address(&remaining),
        domains(&[("n5@globex.test", 1), ("s2@globex.test", 1)])
    );
    let (_, step) = observe(&pq, &mut flow).await;
    let step = measured(step, "after delivery");
    assert_eq!((step.arrived, step.left), (0, 0));
    assert!(step.missing >= 3, "{step:?}");
    let (_, step) = observe(&pq, &mut flow).await;
    let step = measured(step, "a poll after delivery");
    assert_eq!((step.arrived, step.left), (0, 3));
    assert_eq!(step.left_per_domain, domains(&[("acme.test", 3)]));
    assert!(step.arrived_per_domain.is_empty());
}

/// Queued mail per mailbox, as the drill-down shows it.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Postfix and root: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_postfix_queue_is_counted_per_mailbox() {
    let pf = Postfix::start();
    let pq =
        Postqueue::new(pf.postqueue_command(), Duration::from_secs(10)).expect("valid command");
    pf.sendmail("ops@warroom.test", &["Alice@Acme.test"], "one");
    pf.sendmail(
        "ops@warroom.test",
        &["alice@acme.test", "bob@acme.test"],
        "two",
    );
    // One address twice, in two cases: one message for that mailbox.
    pf.smtp(
        "ops@warroom.test",
        &["carol@globex.test", "CAROL@Globex.test"],
        "twice",
    );
    pf.smtp("ops@warroom.test", &["bob@ACME.test"], "three");
    let msgs = poll_until(&pq, &pf, Duration::from_secs(20), "4 deferred", |m| {
        counts(m).deferred == 4
    })
    .await;
    assert_eq!(
        per_address(&msgs),
        domains(&[
            ("alice@acme.test", 2),
            ("bob@acme.test", 2),
            ("carol@globex.test", 1)
        ])
    );
}
