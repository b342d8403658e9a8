//! The console's background work: a Watch subscription that reconnects by
//! itself, and one task per query. Every result reaches the UI loop as a
//! `ClientEvent` over a channel; the UI never waits on the network.

use std::time::Duration;

use tokio::sync::mpsc;

use super::calls::{self, PreviewAnswer, PriorityRefused};
use super::draft::Finding;
use super::lookup::Matches;
use super::types::{MailboxRequest, Me, PriorityRequest, Update};
use super::{GatewayClient, backoff, describe, jitter_unit};
use crate::api::pb;
use crate::domain::MailboxRow;
use crate::domain::priority::{AuditEvent, PriorityDecision};
use crate::domain::status::Draft;

#[derive(Debug)]
pub enum ClientEvent {
    Update(Box<Update>),
    /// With several replicas: the Watch is on this one now (`host:port`),
    /// sent before its first update.
    Via(String),
    Connecting {
        attempt: u32,
    },
    Disconnected {
        error: String,
        retry_in: Duration,
    },
    Mailboxes {
        serial: u64,
        result: Result<(Vec<MailboxRow>, String, u64), String>,
    },
    Lookup {
        serial: u64,
        result: Result<Matches, String>,
    },
    Exported(Result<(std::path::PathBuf, usize), String>),
    Identity(Result<Me, String>),
    Priority {
        serial: u64,
        result: Result<PriorityDecision, PriorityRefused>,
    },
    /// The events after `after_id` (0: the whole log).
    Audit {
        serial: u64,
        after_id: u64,
        result: Result<Vec<AuditEvent>, String>,
    },
    /// The incident's figures over time (and one tenant's, if asked).
    Trends {
        serial: u64,
        result: Result<crate::domain::trends::History, String>,
    },
    StatusPreview {
        serial: u64,
        result: Result<PreviewAnswer, String>,
    },
    /// (update id, deliveries) or (why not, the lint findings).
    Published {
        serial: u64,
        result: Result<(String, usize), (String, Vec<Finding>)>,
    },
}

/// Watches until the receiver is dropped, reconnecting forever. A
/// notification on `resubscribe` drops the stream and subscribes again, for
/// a fresh snapshot.
pub async fn watch_forever(
    client: GatewayClient,
    tx: mpsc::Sender<ClientEvent>,
    resubscribe: std::sync::Arc<tokio::sync::Notify>,
) {
    let mut attempt = 0u32;
    let mut via: Option<String> = None;
    let mut resync;
    loop {
        resync = false;
        attempt += 1;
        if tx.send(ClientEvent::Connecting { attempt }).await.is_err() {
            return;
        }
        let on = client.current();
        let error = match client.raw().watch(pb::WatchRequest {}).await {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                let mut error = "gateway closed the stream".to_string();
                resync = false;
                loop {
                    let next = tokio::select! {
                        m = stream.message() => m,
                        _ = resubscribe.notified() => {
                            error = "resynchronising with a fresh snapshot".into();
                            resync = true;
                            break;
                        }
                    };
                    match next {
                        Ok(Some(u)) => {
                            attempt = 0;
                            let label = super::replica_label(client.url());
                            if client.replicas() > 1 && via.as_ref() != Some(&label) {
                                via = Some(label.clone());
                                if tx.send(ClientEvent::Via(label)).await.is_err() {
                                    return;
                                }
                            }
                            if tx
                                .send(ClientEvent::Update(Box::new(Update::from_pb(&u))))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(s) => {
                            error = describe(&s);
                            break;
                        }
                    }
                }
                error
            }
            Err(s) => describe(&s),
        };
        // Losing a replica moves on to the next one (a resubscribe stays).
        if client.replicas() > 1 && !resync {
            let from = client.url().to_string();
            client.fail_over(on);
            tracing::warn!(%error, from = %from, to = %client.url(), "gateway replica lost; moving on");
        }
        let retry_in = backoff(attempt.max(1), jitter_unit());
        tracing::warn!(%error, ?retry_in, "watch lost; reconnecting");
        if tx
            .send(ClientEvent::Disconnected { error, retry_in })
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(retry_in).await;
    }
}

/// Fetches one page of mailboxes in the background.
pub fn spawn_mailboxes(client: GatewayClient, req: MailboxRequest, tx: mpsc::Sender<ClientEvent>) {
    tokio::spawn(async move {
        let result = calls::mailboxes(&client, req.query).await;
        let _ = tx
            .send(ClientEvent::Mailboxes {
                serial: req.serial,
                result,
            })
            .await;
    });
}

/// Exports a tenant's affected mailboxes to a CSV file in the current
/// directory, in the background.
pub fn spawn_export(client: GatewayClient, tenant_id: String, tx: mpsc::Sender<ClientEvent>) {
    tokio::spawn(async move {
        let dir = std::env::current_dir().unwrap_or_else(|_| std::env::temp_dir());
        let result = super::export::to_file(&client, &tenant_id, &dir).await;
        let _ = tx.send(ClientEvent::Exported(result)).await;
    });
}

/// Runs one lookup in the background; the UI keeps only the newest answer.
pub fn spawn_lookup(
    client: GatewayClient,
    serial: u64,
    query: String,
    tx: mpsc::Sender<ClientEvent>,
) {
    tokio::spawn(async move {
        let result = super::lookup::matches(&client, &query, 20).await;
        let _ = tx.send(ClientEvent::Lookup { serial, result }).await;
    });
}

/// Asks the gateway who this console is.
pub fn spawn_whoami(client: GatewayClient, tx: mpsc::Sender<ClientEvent>) {
    tokio::spawn(async move {
        let result = calls::who_am_i(&client).await;
        let _ = tx.send(ClientEvent::Identity(result)).await;
    });
}

/// Sends one priority decision.
pub fn spawn_set_priority(
    client: GatewayClient,
    serial: u64,
    request: PriorityRequest,
    tx: mpsc::Sender<ClientEvent>,
) {
    tokio::spawn(async move {
        let result = calls::set_priority(&client, &request).await;
        let _ = tx.send(ClientEvent::Priority { serial, result }).await;
    });
}

/// Fetches the audit events after `after_id` in the background.
pub fn spawn_audit(
    client: GatewayClient,
    serial: u64,
    after_id: u64,
    tx: mpsc::Sender<ClientEvent>,
) {
    tokio::spawn(async move {
        let result = calls::audit_events(&client, after_id).await;
        let _ = tx
            .send(ClientEvent::Audit {
                serial,
                after_id,
                result,
            })
            .await;
    });
}

/// Fetches the trends (with `tenant_id`'s series unless empty) in the
/// background.
pub fn spawn_trends(
    client: GatewayClient,
    serial: u64,
    tenant_id: String,
    tx: mpsc::Sender<ClientEvent>,
) {
    tokio::spawn(async move {
        let result = calls::trends(&client, tenant_id).await;
        let _ = tx.send(ClientEvent::Trends { serial, result }).await;
    });
}

pub fn spawn_preview(
    client: GatewayClient,
    serial: u64,
    draft: Draft,
    tx: mpsc::Sender<ClientEvent>,
) {
    tokio::spawn(async move {
        let result = calls::preview(&client, &draft).await;
        let _ = tx.send(ClientEvent::StatusPreview { serial, result }).await;
    });
}

pub fn spawn_publish(
    client: GatewayClient,
    serial: u64,
    draft: Draft,
    operation_id: String,
    confirm_warnings: bool,
    tx: mpsc::Sender<ClientEvent>,
) {
    tokio::spawn(async move {
        let result = calls::publish(&client, &draft, operation_id, confirm_warnings)
            .await
            .map(|u| (u.id, u.deliveries.len()));
        let _ = tx.send(ClientEvent::Published { serial, result }).await;
    });
}
