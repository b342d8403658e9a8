//! The outbox worker: delivers what `publish` stored, channels side by
//! side and one delivery at a time within a channel, until each is sent or has failed for good. Every
//! attempt is recorded in the store before the next, so a gateway restart
//! resumes where it stopped; a delivery interrupted mid-attempt is tried
//! again, which channels make safe (see `channels`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::hub::Hub;
use super::publish::HubFacts;
use crate::channels::{Context, Memory, Outcome};

/// Longest wait between two attempts of one delivery.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Shortest wait before a retry.
pub(crate) const MIN_WAIT: Duration = Duration::from_secs(1);
/// Attempts before a delivery that keeps failing is given up.
pub(crate) const MAX_ATTEMPTS: u32 = 20;
/// How long a delivery claimed by one gateway stays its own (see
/// `Store::claim_due`): replicas on one database each claim what they
/// attempt, and take over another's claim only once it has expired.
pub(crate) const LEASE: Duration = Duration::from_secs(60);
/// Longest sleep of an idle outbox.
pub(crate) const IDLE: Duration = Duration::from_secs(5);

/// 2 s after the first failure, doubling to `MAX_BACKOFF`.
pub(crate) fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(2u64.saturating_mul(1 << attempts.min(10))).min(MAX_BACKOFF)
}

struct StoreMemory<'a> {
    hub: &'a Hub,
    channel: &'a str,
}

impl Memory for StoreMemory<'_> {
    fn get(&self, key: &str) -> Option<String> {
        self.hub
            .record
            .store()
            .memory_get(self.channel, key)
            .ok()
            .flatten()
    }
    fn put(&self, key: &str, value: &str) -> Result<(), crate::channels::MemoryError> {
        self.hub
            .record
            .store()
            .memory_put(self.channel, key, value)
            .map_err(|e| crate::channels::MemoryError(e.to_string()))
    }
}

/// One attempt of one delivery, recorded in the store before it returns.
async fn attempt(
    hub: &Hub,
    channel: &dyn crate::channels::Channel,
    update: &crate::channels::Update,
    d: &crate::channels::Delivery,
) {
    let facts = HubFacts(hub);
    let memory = StoreMemory {
        hub,
        channel: channel.name(),
    };
    let ctx = Context {
        facts: &facts,
        memory: &memory,
    };
    let lease = hub.record.delivery_lease();
    // Renewed just before the attempt: a delivery another replica took
    // while this one was busy with others is left to it.
    let renewed = hub
        .record
        .store()
        .renew_claim(d.id, hub.run_id(), Utc::now(), lease);
    match renewed {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(channel = %d.channel, update = %d.update_id, "delivery taken over by another gateway: not attempted here");
            return;
        }
        Err(e) => {
            tracing::error!("outbox: cannot renew a claim: {e}");
            return;
        }
    }
    // An attempt ends within half the lease, so it is recorded while the
    // claim still holds; one cut short may have reached its target.
    let outcome = match tokio::time::timeout(lease / 2, channel.deliver(update, d, &ctx)).await {
        Ok(o) => o,
        Err(_) => Outcome::Retry {
            reason: format!("no answer in {} s", (lease / 2).as_secs()),
            after: None,
            maybe_applied: true,
        },
    };
    let now = Utc::now();
    let maybe_applied = matches!(
        outcome,
        Outcome::Retry {
            maybe_applied: true,
            ..
        }
    );
    let (state, detail, next) = match outcome {
        Outcome::Sent(detail) => ("sent", detail, now),
        Outcome::Failed(why) => ("failed", why, now),
        Outcome::Retry { reason, .. } if d.attempts + 1 >= MAX_ATTEMPTS => (
            "failed",
            format!("gave up after {} attempts: {reason}", d.attempts + 1),
            now,
        ),
        Outcome::Retry { reason, after, .. } => {
            // At least a second, whatever Retry-After says: "retry at once"
            // must not burn every attempt in a tight loop.
            let wait = after
                .unwrap_or_else(|| backoff(d.attempts))
                .clamp(MIN_WAIT, MAX_BACKOFF);
            (
                "pending",
                reason,
                now + chrono::Duration::from_std(wait).unwrap_or_default(),
            )
        }
    };
    if state != "sent" {
        tracing::warn!(channel = %d.channel, target = %d.target, update = %d.update_id, %state, %detail, "delivery not sent");
    }
    let recorded =
        hub.record
            .store()
            .record_attempt(d.id, hub.run_id(), state, &detail, next, maybe_applied);
    match recorded {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(channel = %d.channel, update = %d.update_id, "attempt not recorded: another gateway took this delivery over (its claim here had expired)")
        }
        Err(e) => tracing::error!("outbox: cannot record an attempt: {e}"),
    }
}

/// Runs until the task is aborted (`Gateway::stop`). Channels work side by
/// side, each through its own deliveries in order: a webhook that hangs
/// until its time-out holds up only itself.
pub(crate) async fn run(hub: Arc<Hub>) {
    loop {
        // Tenant notices are written from the live figures: only a gateway
        // that runs its sources delivers (a follower's own source stands
        // still; the leader's outbox delivers for every replica).
        if !hub.runs_sources() {
            tokio::time::sleep(IDLE.min(Duration::from_secs(1))).await;
            continue;
        }
        // (Results first: a store guard must not live across an await.)
        let due = hub.record.store().claim_due(
            hub.run_id(),
            Utc::now(),
            hub.record.delivery_lease(),
            200,
        );
        let due = match due {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("outbox: cannot read deliveries: {e}");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        if due.is_empty() {
            let next = hub.record.store().next_due();
            // Another replica's publish does not wake this one: at most
            // `IDLE` between looks, so a delivery whose claimant died is
            // taken over soon after its lease ends.
            let wait = match next {
                Ok(Some(t)) => (t - Utc::now()).to_std().unwrap_or_default(),
                _ => IDLE,
            }
            .clamp(Duration::from_millis(50), IDLE);
            tokio::select! {
                _ = hub.record.outbox_woken() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        let channels: HashMap<&'static str, _> = hub
            .record
            .publishing()
            .channels
            .iter()
            .map(|c| (c.name(), c.clone()))
            .collect();
        let updates = hub.record.store().status_updates();
        let updates: HashMap<String, _> = match updates {
            Ok(u) => u.into_iter().map(|u| (u.id.clone(), u)).collect(),
            Err(e) => {
                tracing::error!("outbox: {e}");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        let mut per_channel: HashMap<String, Vec<crate::channels::Delivery>> = HashMap::new();
        for d in due {
            per_channel.entry(d.channel.clone()).or_default().push(d);
        }
        let work = per_channel.into_iter().map(|(name, ds)| {
            let channel = channels.get(name.as_str()).cloned();
            let (hub, updates) = (&hub, &updates);
            async move {
                for d in ds {
                    match (&channel, updates.get(&d.update_id)) {
                        (Some(c), Some(u)) => attempt(hub, c.as_ref(), u, &d).await,
                        _ => {
                            let _ = hub.record.store().record_attempt(
                                d.id,
                                hub.run_id(),
                                "failed",
                                &format!(
                                    "channel {:?} is not configured on this gateway",
                                    d.channel
                                ),
                                Utc::now(),
                                false,
                            );
                        }
                    }
                }
            }
        });
        futures::future::join_all(work).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(0), Duration::from_secs(2));
        assert_eq!(backoff(1), Duration::from_secs(4));
        assert_eq!(backoff(20), MAX_BACKOFF);
    }
}
