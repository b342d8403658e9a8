//! The incident as the store's journal has it: replayed when the gateway
//! starts, so a restarted gateway continues the same incident.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::{Damaged, Seen, needs_repair};
use crate::domain::forecast::WorkRate;
use crate::domain::incident::Entry;
use crate::sources::reindex::Reindexer;
use crate::store::{Store, StoreError};

/// Replays the journal into `seen` and the reindexer: findings, repairs,
/// failures, scope revisions, rate samples, sweep passes and baselines.
pub(super) fn replay(
    store: &dyn Store,
    seen: &mut Seen,
    repair_rate: &mut WorkRate,
    reindexer: Option<&Reindexer>,
) -> Result<(), StoreError> {
    let events = store.journal()?;
    let observations = store.observations()?;
    let mut pass = 1;
    let mut pass_started: Option<DateTime<Utc>> = None;
    let mut done: Vec<String> = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut findings: Vec<(DateTime<Utc>, Damaged)> = Vec::new();
    for ev in &events {
        match &ev.entry {
            Entry::Found {
                mailbox,
                kind,
                detail,
            } => findings.push((
                ev.at,
                Damaged {
                    mailbox: mailbox.clone(),
                    kind: kind.clone(),
                    detail: detail.clone(),
                },
            )),
            Entry::Repaired { mailbox } => done.push(mailbox.clone()),
            Entry::Failed { mailbox, why } => failed.push((mailbox.clone(), why.clone())),
            Entry::Scope(r) => seen.scope.push(r.clone()),
            Entry::Rate { job, per_second } if job == "repair" => repair_rate.restore(*per_second),
            Entry::Rate { per_second, .. } => seen.sweep.restore_rate(*per_second),
            Entry::PassDone { pass: p, .. } => {
                pass = p + 1;
                pass_started = Some(ev.at);
            }
        }
    }
    let in_pass = |at: Option<DateTime<Utc>>| match (at, pass_started) {
        (Some(at), Some(start)) => at >= start,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let mut swept: HashSet<String> = observations
        .iter()
        .filter(|(_, o)| in_pass(o.at))
        .map(|(m, _)| m.clone())
        .collect();
    for (at, d) in findings {
        seen.sweep.replayed(&d.kind, in_pass(Some(at)));
        if in_pass(Some(at)) {
            swept.insert(d.mailbox.clone());
        }
        seen.add_damage(at, d);
    }
    seen.sweep.resume(pass, swept);
    seen.observations = observations.into_iter().collect();
    // What still needs a repair goes back in the queue.
    let finished: HashSet<&String> = done.iter().chain(failed.iter().map(|f| &f.0)).collect();
    let waiting: Vec<String> = seen
        .damaged
        .iter()
        .filter(|d| needs_repair(&d.kind) && !finished.contains(&d.mailbox))
        .map(|d| d.mailbox.clone())
        .collect();
    if let Some(r) = reindexer {
        r.restore(done.clone(), failed.clone());
        for m in &waiting {
            r.push(m.clone());
        }
    }
    if !events.is_empty() {
        tracing::info!(
            found = seen.damage_of.len(),
            repaired = done.len(),
            failed = failed.len(),
            waiting = waiting.len(),
            pass,
            "platform incident resumed from the state file"
        );
    }
    Ok(())
}

/// A gateway that leads after following: the incident as the journal has
/// it now (the previous leader's findings, repairs and failures), in place
/// of what this gateway read at its start. What it polls itself (users,
/// the queue, backends' health) is kept, and so are the war room's
/// priorities.
pub(super) fn catch_up(
    ctx: &super::poll::Context,
    store: &super::poll::Journal,
) -> Result<(), StoreError> {
    let mut fresh = Seen::default();
    {
        let old = super::lock(&ctx.seen);
        fresh.users.clone_from(&old.users);
        fresh.lookup.clone_from(&old.lookup);
        fresh.priorities.clone_from(&old.priorities);
        fresh.postfix_configured = old.postfix_configured;
        fresh.replays = old.replays + 1;
    }
    if let Some(r) = &ctx.reindexer {
        r.reset();
    }
    // The source's own repair rate stays; the journal's samples are in it.
    let mut rate = WorkRate::new(120, 10.0, 3.0);
    {
        let store = store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        replay(&**store, &mut fresh, &mut rate, ctx.reindexer.as_deref())?;
    }
    fresh.journaled = ctx.reindexer.as_ref().map_or((0, 0), |r| {
        let p = r.progress();
        (p.done.len(), p.failed.len())
    });
    *super::lock(&ctx.seen) = fresh;
    Ok(())
}
