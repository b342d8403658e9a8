//! Shared by the integration tests: a real gateway on 127.0.0.1:0 fed by the
//! simulator, ticked by the test (deterministic), and clients over real gRPC.

#![allow(dead_code)]

pub mod hook;
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
pub fn client_with(gw: &Gateway, token: Option<&str>) -> warroom::client::Client {
    warroom::client::GatewayClient::with_token(&gw.url(), token)
        .expect("valid url")
        .raw()
}

/// Every audit event, oldest first, page by page.
pub async fn audit(c: &mut warroom::client::Client) -> Vec<warroom::api::pb::AuditEvent> {
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

/// A throw-away PKI made with the `openssl` command at test time: a CA, a
/// certificate for 127.0.0.1 and localhost signed by it, a client
/// certificate signed by it, and a second, unrelated CA.
pub struct TestPki {
    pub dir: std::path::PathBuf,
    pub ca: std::path::PathBuf,
    pub other_ca: std::path::PathBuf,
    pub server_cert: std::path::PathBuf,
    pub server_key: std::path::PathBuf,
    pub client_cert: std::path::PathBuf,
    pub client_key: std::path::PathBuf,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestPki {
    pub fn new(tag: &str) -> TestPki {
        let dir = std::env::temp_dir().join(format!("wr-pki-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for ca in ["ca", "other-ca"] {
            Self::make_ca(&dir, ca);
        }
        let pki = TestPki {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            dir,
        };
        pki.leaf("server", "ca", "IP:127.0.0.1,DNS:localhost", "serverAuth");
        pki.leaf("client", "ca", "DNS:console.example", "clientAuth");
        pki
    }

    fn make_ca(dir: &std::path::Path, name: &str) {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN=warroom test {name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
    }

    /// `name`.pem and `name`.key, signed by the CA `ca` ("ca" or
    /// "other-ca"), for `san` and the extended key usage `usage`.
    pub fn leaf(
        &self,
        name: &str,
        ca: &str,
        san: &str,
        usage: &str,
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let ext = format!("{name}.ext");
        std::fs::write(
            self.dir.join(&ext),
            format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n"),
        )
        .unwrap();
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "1",
                "-extfile",
                &ext,
            ],
        );
        (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        )
    }

    /// The gateway's TLS from this PKI's server certificate.
    pub fn server_tls(&self, client_ca: bool) -> Arc<warroom::gateway::tls::ServerTls> {
        warroom::gateway::tls::ServerTls::load(warroom::gateway::tls::TlsFiles {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_ca: client_ca.then(|| self.ca.clone()),
            check_every: None,
        })
        .expect("the test certificate loads")
    }
}

/// A gateway on 127.0.0.1 over TLS with this PKI's server certificate.
pub async fn serve_tls(
    hub: Arc<Hub>,
    tls: Arc<warroom::gateway::tls::ServerTls>,
    limits: warroom::gateway::Limits,
) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    Gateway::serve_secured(
        listener,
        hub,
        None,
        warroom::gateway::Access::open_read_only(),
        limits,
        Some(tls),
    )
    .await
    .expect("gateway starts")
}
