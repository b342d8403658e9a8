//! Shared by the integration tests: a real gateway on 127.0.0.1:0 fed by the
//! simulator, ticked by the test (deterministic), and clients over real gRPC.

#![allow(dead_code)]

pub mod postgres;
pub mod tmux;

use std::sync::Arc;

use warroom::api::pb::war_room_client::WarRoomClient;
use warroom::gateway::{Gateway, Hub};
use warroom::sources::simulator::{SimConfig, Simulator};

pub const STEP_SECONDS: f64 = 60.0;

pub fn hub(cfg: SimConfig) -> Arc<Hub> {
    let sim = Simulator::new(cfg).expect("valid simulator config");
    Hub::new(Box::new(sim), STEP_SECONDS, 60.0)
}

pub async fn gateway(cfg: SimConfig) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    Gateway::serve(listener, hub(cfg), None)
        .await
        .expect("gateway starts")
}

pub fn small() -> SimConfig {
    SimConfig {
        tenants: 200,
        mailboxes: 5_000,
        ..SimConfig::default()
    }
}

/// A fresh path for a state file (its directory is removed first).
pub fn state_file(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wr-state-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("state.sqlite")
}

/// A hub whose decisions persist in `state` (or in memory).
pub fn hub_with_state(cfg: SimConfig, state: Option<&std::path::Path>) -> Arc<Hub> {
    let sim = Simulator::new(cfg).expect("valid simulator config");
    let store = match state {
        Some(p) => warroom::store::open(p).expect("state file opens"),
        None => warroom::store::in_memory(),
    };
    Hub::with_store(Box::new(sim), store, STEP_SECONDS, 60.0).expect("stored decisions apply")
}

/// A hub whose decisions persist in the store at `location` (a SQLite
/// file or a PostgreSQL URL).
pub fn hub_with_store(cfg: SimConfig, location: &warroom::store::Location) -> Arc<Hub> {
    let sim = Simulator::new(cfg).expect("valid simulator config");
    let store = warroom::store::open_at(location).expect("store opens");
    Hub::with_store(Box::new(sim), store, STEP_SECONDS, 60.0).expect("stored decisions apply")
}

/// A gateway on 127.0.0.1 serving `hub` to the callers `access` knows.
pub async fn serve(hub: Arc<Hub>, access: warroom::gateway::Access) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    Gateway::serve_with(listener, hub, None, access)
        .await
        .expect("gateway starts")
}

/// A client presenting `token` (None: anonymous).
pub fn client_with(gw: &Gateway, token: Option<&str>) -> warroom::console::client::Client {
    warroom::console::client::GatewayClient::with_token(&gw.url(), token)
        .expect("valid url")
        .raw()
}

/// Every audit event, oldest first, page by page.
pub async fn audit(c: &mut warroom::console::client::Client) -> Vec<warroom::api::pb::AuditEvent> {
    use warroom::api::pb;
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_audit_events(pb::ListAuditEventsRequest {
                page_size: 1000,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("audit readable")
            .into_inner();
        all.extend(page.events);
        token = page.next_page_token;
        if token.is_empty() {
            return all;
        }
    }
}

pub async fn client(gw: &Gateway) -> WarRoomClient<tonic::transport::Channel> {
    WarRoomClient::connect(gw.url())
        .await
        .expect("connect")
        .max_decoding_message_size(warroom::api::MAX_MESSAGE_BYTES)
}

/// Every colour parameter (foreground or background, 16, 256 or true colour)
/// in the SGR sequences of `terminal_output`: empty when nothing is coloured.
pub fn colour_codes(terminal_output: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let mut rest = terminal_output;
    while let Some(i) = rest.find("\x1b[") {
        rest = &rest[i + 2..];
        let end = rest
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        if rest[end..].starts_with('m') {
            found.extend(
                rest[..end]
                    .split(';')
                    .filter_map(|p| p.parse::<u32>().ok())
                    .filter(|p| matches!(p, 30..=38 | 40..=48 | 90..=97 | 100..=107)),
            );
        }
    }
    found
}
