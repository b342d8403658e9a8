//! The platform's pollers: one task per backend (Dovecot's user list, the
//! damage sweep, Postfix, Prometheus) and one that writes the incident's
//! journal, so a slow or dead backend never delays another's figures.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::{Damaged, Flow, Seen, lock, needs_repair, reindex_order};
use crate::domain::Health;
use crate::domain::incident::{Entry, Event, Observation};
use crate::sources::dovecot::Doveadm;
use crate::sources::postfix::{self, Liveness, PostfixStatus, Postqueue, QueueCounts, QueueFlow};
use crate::sources::probe::{self, ProbeResult};
use crate::sources::prometheus::{Prometheus, queries};
use crate::sources::reindex::{Reindexer, Repairer};
use crate::store::Store;

/// Probe latencies kept for the p95 shown beside imap.
const LATENCIES: usize = 200;
/// Flow intervals kept for the queue's rates and drain ETA.
const FLOWS: usize = 120;
/// How often the week of load history is read again, and how soon after a
/// read that failed (a week's range query is not one to repeat every poll).
const TRAFFIC_EVERY: chrono::Duration = chrono::Duration::hours(1);
const TRAFFIC_RETRY: chrono::Duration = chrono::Duration::minutes(1);

pub(super) struct Context {
    pub tenants: Vec<super::TenantSpec>,
    pub domain_to_tenant: std::collections::HashMap<String, usize>,
    pub seen: Arc<Mutex<Seen>>,
    pub reindexer: Option<Arc<Reindexer>>,
    pub poll: Duration,
}

pub(super) struct Backends {
    pub dovecot: Option<(Arc<Doveadm>, usize)>,
    pub postqueue: Option<Postqueue>,
    pub postfix_status: Option<PostfixStatus>,
    pub prometheus: Option<Prometheus>,
    /// PromQL for the users' load, read with Prometheus.
    pub load_query: Option<String>,
    pub store: Option<Journal>,
}

/// Starts every poller on `runtime`; with `leading`, each runs only while
/// it says true.
pub(super) fn spawn(
    ctx: Context,
    b: Backends,
    runtime: &tokio::runtime::Handle,
    leading: Option<watch::Receiver<bool>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let ctx = Arc::new(ctx);
    let mut tasks = Vec::new();
    // Work starts only once the journal is read back (see `caught_up`).
    let leading = leading.map(|l| caught_up(l, ctx.clone(), b.store.clone(), runtime, &mut tasks));
    let gate = &leading;
    if let Some((client, per_poll)) = b.dovecot {
        let (c, cl) = (ctx.clone(), client.clone());
        tasks.push(runtime.spawn(while_leading(gate.clone(), move || {
            users(c.clone(), cl.clone())
        })));
        let c = ctx.clone();
        tasks.push(runtime.spawn(while_leading(gate.clone(), move || {
            sweep(c.clone(), client.clone(), per_poll)
        })));
    }
    if b.postqueue.is_some() || b.postfix_status.is_some() {
        let (c, pq, st) = (ctx.clone(), b.postqueue, b.postfix_status);
        tasks.push(runtime.spawn(while_leading(gate.clone(), move || {
            postfix_loop(c.clone(), pq.clone(), st.clone())
        })));
    }
    if let Some(p) = b.prometheus {
        let (c, load) = (ctx.clone(), b.load_query);
        tasks.push(runtime.spawn(while_leading(gate.clone(), move || {
            prometheus_loop(c.clone(), p.clone(), load.clone())
        })));
    }
    // A deposed leader's reindexer dispatches no more (the repairs in
    // flight finish: a doveadm repair cannot be taken back half-way).
    if let (Some(mut gate), Some(r)) = (leading.clone(), ctx.reindexer.clone()) {
        tasks.push(runtime.spawn(async move {
            loop {
                if gate.wait_for(|l| *l).await.is_err() {
                    return;
                }
                if gate.wait_for(|l| !*l).await.is_err() {
                    return;
                }
                r.stop();
            }
        }));
    }
    let (c, store) = (ctx, b.store);
    tasks.push(runtime.spawn(while_leading(leading, move || {
        journal(c.clone(), store.clone())
    })));
    tasks
}

/// `leading`, opened only once what other gateways wrote to the journal
/// while this one followed has been read back: a gateway that leads again
/// (or for the first time since it started) resumes the incident where
/// the last leader left it, its reindexer with the same repairs done,
/// failed and waiting (nothing skipped, nothing repaired twice).
fn caught_up(
    mut leading: watch::Receiver<bool>,
    ctx: Arc<Context>,
    store: Option<Journal>,
    runtime: &tokio::runtime::Handle,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> watch::Receiver<bool> {
    let (open, gate) = watch::channel(false);
    tasks.push(runtime.spawn(async move {
        // The source replayed the journal as it started: a gateway that
        // leads from its start has nothing to read back.
        let mut replayed = *leading.borrow();
        loop {
            if leading.wait_for(|l| *l).await.is_err() {
                return;
            }
            if !replayed && let Some(store) = store.clone() {
                let c = ctx.clone();
                match tokio::task::spawn_blocking(move || super::replay::catch_up(&c, &store)).await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::error!("the incident journal could not be read back: {e}")
                    }
                    Err(e) => tracing::error!("the incident journal could not be read back: {e}"),
                }
            }
            open.send_replace(true);
            if leading.wait_for(|l| !*l).await.is_err() {
                return;
            }
            open.send_replace(false);
            replayed = false;
        }
    }));
    gate
}

/// Runs `work()` while `gate` says true (always, without a gate): started
/// when it turns true, dropped the moment it turns false.
async fn while_leading<F, Fut>(gate: Option<watch::Receiver<bool>>, work: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(mut gate) = gate else {
        return work().await;
    };
    loop {
        if gate.wait_for(|l| *l).await.is_err() {
            return;
        }
        let mut lost = gate.clone();
        tokio::select! {
            () = work() => return,
            _ = lost.wait_for(|l| !*l) => {}
        }
    }
}

/// The user list per tenant domain, every poll.
async fn users(ctx: Arc<Context>, client: Arc<Doveadm>) {
    let mut changed: Option<Vec<Vec<String>>> = None;
    loop {
        let mut users = vec![Vec::new(); ctx.tenants.len()];
        let mut failed = None;
        'tenants: for (i, t) in ctx.tenants.iter().enumerate() {
            for d in &t.domains {
                match client.users(&format!("*@{d}")).await {
                    Ok(list) => users[i].extend(list.into_iter().map(|u| u.to_lowercase())),
                    Err(e) => {
                        failed = Some(e);
                        break 'tenants;
                    }
                }
            }
            users[i].sort();
            users[i].dedup();
        }
        {
            let mut s = lock(&ctx.seen);
            match failed {
                Some(e) => s.dovecot.down(format!("listing users: {e}")),
                None => {
                    let n: usize = users.iter().map(Vec::len).sum();
                    if s.users.as_ref() != Some(&users) {
                        let prio = s.priorities.clone();
                        s.sweep.set_users(&users, &prio);
                        s.users = Some(users.clone());
                        changed = Some(users);
                    }
                    s.dovecot.ok(format!("{n} mailboxes listed"));
                }
            }
        }
        // The lookup index follows the user list, built outside the lock
        // (about 0.8 s per million addresses).
        if let Some(users) = changed.take() {
            let tenants = ctx.tenants.clone();
            match tokio::task::spawn_blocking(move || super::Lookup::build(&tenants, &users)).await
            {
                Ok(l) => lock(&ctx.seen).lookup = Some(Arc::new(l)),
                Err(e) => tracing::error!("lookup index not built: {e}"),
            }
        }
        tokio::time::sleep(ctx.poll).await;
    }
}

/// The damage sweep: one mailbox at a time, in the war room's order, at
/// `per_poll` probes per poll interval at most; an outage pauses it (the
/// mailbox is probed again when Dovecot answers), a pass done starts the
/// next.
async fn sweep(ctx: Arc<Context>, client: Arc<Doveadm>, per_poll: usize) {
    let budget = ctx.poll.div_f64(per_poll.max(1) as f64);
    let mut since = Instant::now();
    loop {
        let next = {
            let s = &mut *lock(&ctx.seen);
            if s.sweep.pass_done() {
                let users = s.users.clone().unwrap_or_default();
                let (pass, mailboxes) = s.sweep.next_pass(&users, &s.priorities);
                tracing::info!(pass, mailboxes, "damage sweep: pass complete");
                s.pending_events.push(Event {
                    at: Utc::now(),
                    entry: Entry::PassDone { pass, mailboxes },
                });
            }
            s.sweep.take_next().map(|(t, u)| {
                let previous = s
                    .observations
                    .get(&u)
                    .and_then(|o| serde_json::from_str::<probe::Observation>(&o.data).ok());
                (t, u, previous)
            })
        };
        let Some((tenant, user, previous)) = next else {
            // Nothing listed yet: look again soon, not a whole poll later.
            tokio::time::sleep(ctx.poll.min(Duration::from_millis(100))).await;
            since = Instant::now();
            continue;
        };
        let started = Instant::now();
        let result = probe::probe(&client, &user, previous.as_ref()).await;
        let took = started.elapsed();
        let now = Utc::now();
        let mut repair = Vec::new();
        {
            let s = &mut *lock(&ctx.seen);
            if let ProbeResult::Outage(e) = &result {
                s.sweep.retry(tenant, user);
                s.sweep.set_paused(format!("Dovecot unreachable ({e})"));
                s.dovecot.down(format!("probing: {e}"));
                drop(result);
            } else {
                s.sweep.set_paused("");
                if s.dovecot.health == Health::Down {
                    s.dovecot.ok("answering again".into());
                }
                if s.probe_latency_ms.len() == LATENCIES {
                    s.probe_latency_ms.pop_front();
                }
                s.probe_latency_ms.push_back(took.as_secs_f64() * 1000.0);
                if let Some(obs) = result.observation() {
                    let o = Observation {
                        data: serde_json::to_string(obs).unwrap_or_default(),
                        at: Some(now),
                    };
                    s.observations.insert(user.clone(), o.clone());
                    s.pending_obs.push((user.clone(), o));
                }
                match result {
                    ProbeResult::Damaged { mut damage, .. } => {
                        // A kind that needs a repair decides the state.
                        damage.sort_by_key(|d| needs_repair(d.kind()));
                        for d in damage {
                            let kind = d.kind().to_string();
                            let detail = d.to_string();
                            tracing::info!(mailbox = %user, kind = %kind, "damage found: {detail}");
                            s.sweep.found(&kind);
                            s.pending_events.push(Event {
                                at: now,
                                entry: Entry::Found {
                                    mailbox: user.clone(),
                                    kind: kind.clone(),
                                    detail: detail.clone(),
                                },
                            });
                            if needs_repair(&kind) && !repair.contains(&user) {
                                repair.push(user.clone());
                            }
                            s.add_damage(
                                now,
                                Damaged {
                                    mailbox: user.clone(),
                                    kind,
                                    detail,
                                },
                            );
                        }
                    }
                    ProbeResult::Failed(e) => {
                        tracing::warn!(mailbox = %user, "probe could not tell: {e}");
                    }
                    ProbeResult::Healthy(_) | ProbeResult::UnknownUser | ProbeResult::Outage(_) => {
                    }
                }
                // From the previous probe to this one: the rate budget's
                // pause counts (it is what the sweep's pace is), an
                // outage's does not.
                if let Some(rate) = s.sweep.probed(since.elapsed().as_secs_f64()) {
                    s.pending_events.push(Event {
                        at: now,
                        entry: Entry::Rate {
                            job: "sweep".into(),
                            per_second: rate,
                        },
                    });
                }
                s.revise_scope(now);
                since = Instant::now();
            }
        }
        if !repair.is_empty() {
            enqueue(&ctx, &client, repair, started);
        }
        if lock(&ctx.seen).dovecot.health == Health::Down {
            tokio::time::sleep(ctx.poll).await;
            since = Instant::now();
        } else {
            // The rate budget: at most `per_poll` probes per poll.
            tokio::time::sleep(budget.saturating_sub(took)).await;
        }
    }
}

/// Queues damaged mailboxes, found by a probe that started at
/// `probed_at`, for repair in the war room's order and makes sure the
/// reindexer runs.
fn enqueue(ctx: &Context, client: &Arc<Doveadm>, mailboxes: Vec<String>, probed_at: Instant) {
    let Some(r) = &ctx.reindexer else {
        return;
    };
    for m in mailboxes {
        r.push_found(m, probed_at);
    }
    let prio = lock(&ctx.seen).priorities.clone();
    let waiting = r.progress().queued;
    r.reorder(reindex_order(&ctx.domain_to_tenant, &prio, &waiting));
    let (r, repairer): (Arc<Reindexer>, Arc<dyn Repairer>) = (r.clone(), client.clone());
    tokio::spawn(r.run(repairer));
}

/// Postfix: whether it runs (its own word, not the queue listing's), the
/// queue per queue, domain and address, and the flow between polls.
async fn postfix_loop(ctx: Arc<Context>, pq: Option<Postqueue>, status: Option<PostfixStatus>) {
    let mut flow = QueueFlow::new();
    loop {
        let live = match &status {
            Some(st) => Some(st.check().await),
            None => None,
        };
        let polled = match &pq {
            Some(pq) => Some(pq.poll().await),
            None => None,
        };
        let now = Utc::now();
        {
            let mut s = lock(&ctx.seen);
            s.postfix_running = live.as_ref().map(|l| match l {
                Liveness::Running { .. } => (Health::Ok, l.to_string()),
                Liveness::Stopped { said } => {
                    (Health::Down, format!("Postfix is not running: {said}"))
                }
                Liveness::Error { why } => (Health::Unknown, why.clone()),
            });
            let mut problems = Vec::new();
            if let Some((h, said)) = &s.postfix_running
                && *h != Health::Ok
            {
                problems.push(said.clone());
            }
            match polled {
                Some(Ok(msgs)) => {
                    let counts = postfix::counts(&msgs);
                    if let postfix::Flow::Measured(step) = flow.observe(now, &msgs) {
                        if s.flows.len() == FLOWS {
                            s.flows.pop_front();
                        }
                        s.flows.push_back(Flow {
                            arrived: step.arrived,
                            left: step.left,
                            seconds: step.seconds,
                        });
                    }
                    s.queued_per_domain = postfix::per_domain(&msgs);
                    s.queued_per_address = postfix::per_address(&msgs).into_iter().collect();
                    s.queue_at = Some(now);
                    s.queue_failed = None;
                    s.queue = Some(counts);
                }
                Some(Err(e)) => {
                    s.queue_failed = Some(format!("postqueue: {e}"));
                    problems.push(format!("postqueue: {e}"));
                }
                None => {}
            }
            let total = s.queue.as_ref().map_or(0, QueueCounts::total);
            if problems.is_empty() {
                s.postfix.ok(format!("running · {total} messages queued"));
            } else {
                s.postfix.down(problems.join("; "));
            }
        }
        tokio::time::sleep(ctx.poll).await;
    }
}

/// Prometheus: targets up per job, the queue by queue when Postfix is not
/// read directly, the queue's arrivals and departures from Postfix's log
/// counters, and with a load query the users' load now and the
/// traffic of the last week (read again every hour).
async fn prometheus_loop(ctx: Arc<Context>, p: Prometheus, load_query: Option<String>) {
    let mut next_traffic: Option<DateTime<Utc>> = None;
    loop {
        // Independent queries, asked together: a Prometheus that answers
        // slowly costs one time-out a poll, not one per query.
        let (up, depth, arrivals, departures, load) = tokio::join!(
            p.query(queries::TARGETS_UP),
            p.query(queries::QUEUE_DEPTH_BY_QUEUE),
            p.scalar(queries::QUEUE_ARRIVAL_RATE),
            p.scalar(queries::QUEUE_DEPARTURE_RATE),
            async {
                match &load_query {
                    Some(q) => Some(p.scalar(q).await),
                    None => None,
                }
            },
        );
        let mut traffic = None;
        if let Some(q) = &load_query {
            let now = Utc::now();
            if next_traffic.is_none_or(|t| now >= t) {
                let read = p.traffic(q, now).await;
                let after = if read.is_ok() {
                    TRAFFIC_EVERY
                } else {
                    TRAFFIC_RETRY
                };
                next_traffic = Some(now + after);
                traffic = Some(read);
            }
        }
        let now = Utc::now();
        {
            let mut s = lock(&ctx.seen);
            let load_said = load.map(|l| s.read_load(now, l, traffic));
            s.read_log_rates(now, arrivals, departures);
            match up {
                Ok(up) => {
                    let mut jobs: std::collections::BTreeMap<String, (u64, u64)> =
                        Default::default();
                    for x in &up {
                        let job = x.labels.get("job").cloned().unwrap_or_default();
                        let e = jobs.entry(job).or_default();
                        e.1 += 1;
                        if x.value >= 1.0 {
                            e.0 += 1;
                        }
                    }
                    s.jobs = jobs.into_iter().map(|(j, (u, a))| (j, u, a)).collect();
                    let down: Vec<String> = s
                        .jobs
                        .iter()
                        .filter(|(_, u, a)| u < a)
                        .map(|(j, u, a)| format!("{j} {u}/{a}"))
                        .collect();
                    let all: u64 = s.jobs.iter().map(|j| j.2).sum();
                    let ok: u64 = s.jobs.iter().map(|j| j.1).sum();
                    let mut msg = format!("{ok} of {all} targets up");
                    if !down.is_empty() {
                        msg.push_str(&format!(" (down: {})", down.join(", ")));
                    }
                    // Without Postfix read directly, the queue comes from here.
                    if !s.postfix_configured {
                        // No series is no exporter, not an empty queue (the
                        // exporter reports every queue, 0 when it is empty).
                        let depth = match depth {
                            Ok(d) if d.is_empty() => Err("Prometheus has no Postfix queue \
                                series: is prometheus-postfix-exporter scraped?"
                                .to_string()),
                            Ok(d) if d.iter().any(|x| !x.value.is_finite()) => {
                                Err("a queue count that is not a number".to_string())
                            }
                            Ok(d) => Ok(d),
                            Err(e) => Err(e.to_string()),
                        };
                        match depth {
                            Ok(depth) => {
                                let mut q = QueueCounts::default();
                                for x in depth {
                                    let n = x.value.max(0.0) as u64;
                                    q.add(x.labels.get("queue").map_or("", String::as_str), n);
                                }
                                s.queue = Some(q);
                                s.queue_at = Some(now);
                                s.queue_failed = None;
                            }
                            Err(e) => {
                                s.queue_failed = Some(format!("queue query: {e}"));
                                msg.push_str(&format!("; queue query: {e}"));
                            }
                        }
                    }
                    if let Some(said) = load_said {
                        msg.push_str(&format!("; {said}"));
                    }
                    s.prometheus.ok(msg);
                }
                Err(e) => {
                    if !s.postfix_configured {
                        s.queue_failed = Some(e.to_string());
                    }
                    s.prometheus.down(e.to_string());
                }
            }
        }
        tokio::time::sleep(ctx.poll).await;
    }
}

/// The store the incident's journal goes to, shared by the journal task
/// and the source's last flush when it is dropped.
pub(super) type Journal = Arc<Mutex<Box<dyn Store>>>;

/// What was learnt since the last write: findings, scope revisions, rate
/// samples, passes, baselines, and the reindexer's repairs and failures.
pub(super) fn take_journal(
    seen: &Mutex<Seen>,
    reindexer: Option<&Reindexer>,
) -> (Vec<Event>, Vec<(String, Observation)>) {
    let now = Utc::now();
    let progress = reindexer.map(Reindexer::progress);
    let mut s = lock(seen);
    s.revise_scope(now);
    let mut events = std::mem::take(&mut s.pending_events);
    let obs = std::mem::take(&mut s.pending_obs);
    if let Some(p) = progress {
        let (done, failed) = s.journaled;
        for m in p.done.iter().skip(done) {
            tracing::info!(mailbox = %m, "repaired");
            events.push(Event {
                at: now,
                entry: Entry::Repaired { mailbox: m.clone() },
            });
        }
        for (m, why) in p.failed.iter().skip(failed) {
            tracing::warn!(mailbox = %m, "repair failed: {why}");
            events.push(Event {
                at: now,
                entry: Entry::Failed {
                    mailbox: m.clone(),
                    why: why.clone(),
                },
            });
        }
        s.journaled = (p.done.len(), p.failed.len());
    }
    (events, obs)
}

/// Writes `events` and `obs` (blocking: SQLite with a full sync).
pub(super) fn write_journal(
    store: &Journal,
    events: &[Event],
    obs: &[(String, Observation)],
) -> Result<(), crate::store::StoreError> {
    if events.is_empty() && obs.is_empty() {
        return Ok(());
    }
    let mut st = store.lock().unwrap_or_else(|e| e.into_inner());
    st.journal_append(events)?;
    st.observations_put(obs)
}

/// Writes what was learnt to the store once per poll (and the source
/// writes the rest when it is dropped, see `PlatformSource::drop`).
async fn journal(ctx: Arc<Context>, store: Option<Journal>) {
    loop {
        tokio::time::sleep(ctx.poll).await;
        let (events, obs) = take_journal(&ctx.seen, ctx.reindexer.as_deref());
        let Some(store) = &store else {
            continue;
        };
        let store = store.clone();
        let written =
            tokio::task::spawn_blocking(move || write_journal(&store, &events, &obs)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("incident journal not written: {e}"),
            Err(e) => tracing::error!("incident journal task failed: {e}"),
        }
    }
}
