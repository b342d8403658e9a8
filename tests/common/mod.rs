//! Shared by the integration tests: a real gateway on 127.0.0.1:0 fed by the
//! simulator, ticked by the test (deterministic), and clients over real gRPC.

#![allow(dead_code)]

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
