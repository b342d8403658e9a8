//! The hub: one source, advanced once per tick, and every watcher fed from
//! that one advance.
//!
//! Each tick builds one versioned change (the small overview plus only the
//! tenant rows that changed) and broadcasts it to all watchers through a
//! bounded `tokio::sync::broadcast` channel. A watcher that falls more than
//! `BACKLOG` updates behind is not waited for and nothing is buffered for it
//! without bound: it receives a fresh snapshot instead (see `service`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::api::{self, pb};
use crate::sources::Source;

/// Updates kept for watchers that are briefly behind.
pub const BACKLOG: usize = 32;

struct State {
    source: Box<dyn Source>,
    version: u64,
}

pub struct Hub {
    state: RwLock<State>,
    tx: broadcast::Sender<Arc<pb::WatchUpdate>>,
    /// Source seconds per tick.
    step_seconds: f64,
    /// Source seconds per wall-clock second, shown to consoles.
    speed: f64,
}

/// Read access to the source at one version.
pub struct SourceView<'a> {
    guard: RwLockReadGuard<'a, State>,
}

impl SourceView<'_> {
    pub fn source(&self) -> &dyn Source {
        self.guard.source.as_ref()
    }
    pub fn version(&self) -> u64 {
        self.guard.version
    }
}

impl Hub {
    /// `step_seconds` of source time pass per tick; `speed` is what consoles
    /// are told (step / tick interval).
    pub fn new(source: Box<dyn Source>, step_seconds: f64, speed: f64) -> Arc<Self> {
        let (tx, _) = broadcast::channel(BACKLOG);
        Arc::new(Hub {
            state: RwLock::new(State { source, version: 0 }),
            tx,
            step_seconds,
            speed,
        })
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        // A panic while ticking must not take every later request down with
        // it: the data is still the last consistent tick's.
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn view(&self) -> SourceView<'_> {
        SourceView {
            guard: self.state.read().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Advances the source once and broadcasts the change. Returns the new
    /// version.
    pub fn tick(&self) -> u64 {
        let update = {
            let mut s = self.write();
            s.source.advance(self.step_seconds);
            s.version += 1;
            let mut u = api::overview_to_pb(&self.overview_of(&s), s.version, false);
            u.tenants = s
                .source
                .changed_tenants()
                .iter()
                .map(api::tenant_to_pb)
                .collect();
            u
        };
        let version = update.version;
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(Arc::new(update));
        version
    }

    fn overview_of(&self, s: &State) -> crate::domain::Overview {
        let mut o = s.source.overview();
        o.incident.speed = self.speed;
        o
    }

    /// Everything, at the current version.
    pub fn snapshot(&self) -> pb::WatchUpdate {
        let s = self.state.read().unwrap_or_else(|e| e.into_inner());
        let mut u = api::overview_to_pb(&self.overview_of(&s), s.version, true);
        u.tenants = s.source.tenants().iter().map(api::tenant_to_pb).collect();
        u
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<pb::WatchUpdate>> {
        self.tx.subscribe()
    }

    pub fn version(&self) -> u64 {
        self.view().version()
    }

    pub fn watchers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// A thread that ticks the hub at a fixed wall-clock interval, off the async
/// runtime (a tick of a large simulation is CPU work).
pub struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    pub fn start(hub: Arc<Hub>, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("warroom-hub".into())
            .spawn(move || {
                let mut next = Instant::now() + interval;
                while !flag.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now < next {
                        std::thread::sleep((next - now).min(Duration::from_millis(50)));
                        continue;
                    }
                    let started = Instant::now();
                    hub.tick();
                    tracing::trace!(elapsed = ?started.elapsed(), "tick");
                    next += interval;
                    // After a stall, do not fire a burst of catch-up ticks.
                    if next < Instant::now() {
                        next = Instant::now() + interval;
                    }
                }
            })
            .ok();
        Ticker { stop, thread }
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.halt();
    }
}
