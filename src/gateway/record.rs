//! The war room's record: its decisions, audit, status updates and their
//! outbox in the store, and the channels and components updates go to.
//! The hub (`hub`) owns the source and the broadcast; this owns the store.
//!
//! Lock order, everywhere: the record's store before the hub's source
//! state, never the other way round (a decision holds the store while it
//! applies itself to the source, so a version check and the change it
//! guards are one step). The publishing settings are read under either.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::Duration;

use super::publish::Publishing;
use crate::api::{self, pb};
use crate::channels::{Channel, StatusBoard};
use crate::store::{DeliveryStatus, Store};

pub struct Record {
    /// Decisions, the audit, status updates, deliveries; the lock also
    /// serialises decisions.
    store: Mutex<Box<dyn Store>>,
    /// Channels, components and the page's address.
    publishing: RwLock<Publishing>,
    /// Wakes the outbox worker when deliveries are added.
    outbox_wake: tokio::sync::Notify,
    /// How long a claimed delivery stays this gateway's (milliseconds).
    delivery_lease_ms: AtomicU64,
}

impl Record {
    pub fn new(store: Box<dyn Store>) -> Self {
        Record {
            store: Mutex::new(store),
            publishing: RwLock::new(Publishing::default()),
            outbox_wake: tokio::sync::Notify::new(),
            delivery_lease_ms: AtomicU64::new(super::outbox::LEASE.as_millis() as u64),
        }
    }

    pub fn store(&self) -> MutexGuard<'_, Box<dyn Store>> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn publishing(&self) -> RwLockReadGuard<'_, Publishing> {
        self.publishing.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the channels, components and page address.
    pub fn set_publishing(&self, p: Publishing) {
        *self.publishing.write().unwrap_or_else(|e| e.into_inner()) = p;
    }

    /// Sets only the page's address, as consoles are shown it.
    pub fn set_page_url(&self, url: String) {
        self.publishing
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .page_url = url;
    }

    /// Wakes the outbox: deliveries were added.
    pub fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }

    /// Resolves when `wake_outbox` is called.
    pub async fn outbox_woken(&self) {
        self.outbox_wake.notified().await;
    }

    /// How long a delivery this gateway claims stays its own: another
    /// replica may take it once that long has passed without an attempt
    /// recorded (`outbox::LEASE` unless set).
    pub fn delivery_lease(&self) -> Duration {
        Duration::from_millis(self.delivery_lease_ms.load(Ordering::Relaxed))
    }

    /// Sets `delivery_lease` (tests shorten it; at least a second).
    pub fn set_delivery_lease(&self, lease: Duration) {
        let ms = lease.max(Duration::from_secs(1)).as_millis();
        self.delivery_lease_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The status board, read from `store` (the caller holds its lock).
    pub fn board_with(&self, store: &dyn Store) -> pb::StatusBoard {
        let p = self.publishing();
        let board = StatusBoard {
            latest: store.latest_update().unwrap_or_else(|e| {
                tracing::warn!("status board: {e}");
                None
            }),
            page_url: p.page_url.clone(),
            channels: store
                .delivery_summary()
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    c.last_problem = redact(&p.channels, &c.channel, c.last_problem);
                    c
                })
                .collect(),
            components: p.components.clone(),
        };
        api::board_to_pb(&board)
    }

    /// The status board now.
    pub fn board(&self) -> pb::StatusBoard {
        let store = self.store();
        self.board_with(&**store)
    }
}

/// `text`, said about a delivery of `channel` ("email" also for
/// "email TENANT CONTACT"), without that channel's secrets.
fn redact(channels: &[Arc<dyn Channel>], channel: &str, text: String) -> String {
    if text.is_empty() {
        return text;
    }
    let name = channel.split(' ').next().unwrap_or(channel);
    match channels.iter().find(|c| c.name() == name) {
        Some(c) => c.redact(text),
        None => text,
    }
}

/// Delivery statuses without their channels' secrets.
pub(crate) fn redacted(
    channels: &[Arc<dyn Channel>],
    mut list: Vec<DeliveryStatus>,
) -> Vec<DeliveryStatus> {
    for d in &mut list {
        d.detail = redact(channels, &d.channel, std::mem::take(&mut d.detail));
    }
    list
}
