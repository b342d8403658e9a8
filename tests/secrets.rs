//! Issue #17 item 1, "secrets never in answers": a recognisable secret is
//! planted in every secret the configuration can hold (the webhook URL's
//! path and query, the Statuspage API key, the gateway's tokens, the
//! console's token, the gateway URL's `user:password`), the channels are
//! made to fail (nothing listens where they send), and every surface is
//! read: the gRPC answers (ListStatusUpdates, Watch), the gateway's log at
//! trace level, `warroom info`, a config error and the status page.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use warroom::api::pb;

const SECRETS: [&str; 6] = [
    "SECRETPATH123",
    "SECRETQUERY123",
    "SECRETKEY123",
    "SECRETTOKEN123",
    "SECRETPW123",
    "98765432123456789",
];
const COMMS_TOKEN: &str = "SECRETTOKEN123-comms-0123456789";

fn home(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wr-secrets-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("warroom")).unwrap();
    d
}

fn warroom(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_warroom"));
    c.env("XDG_CONFIG_HOME", home)
        .env("XDG_STATE_HOME", home)
        .env("XDG_DATA_HOME", home)
        .env_remove("WARROOM_GATEWAY")
        .env_remove("WARROOM_CONFIG")
        .env_remove("WARROOM_TOKEN");
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn assert_no_secret(surface: &str, said: &str) {
    for s in SECRETS {
        assert!(!said.contains(s), "{surface} shows the secret {s}:\n{said}");
    }
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The line of `log` that holds `marker`, once the gateway wrote it.
fn wait_for_line(log: &Path, marker: &str) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(marker)) {
            return line.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the gateway never said {marker:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn after<'a>(line: &'a str, marker: &str) -> &'a str {
    let at = line.find(marker).unwrap() + marker.len();
    line[at..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == ')')
        .next()
        .unwrap()
}

#[test]
fn a_planted_secret_is_in_no_answer_log_info_error_or_page() {
    let h = home("plant");
    let key_file = h.join("statuspage.key");
    std::fs::write(&key_file, "SECRETKEY123-statuspage-key\n").unwrap();
    let hook = format!(
        "http://127.0.0.1:{}/services/T000/B000/SECRETPATH123?key=SECRETQUERY123",
        closed_port()
    );
    let config = format!(
        r#"gateway = "http://ana:SECRETPW123@127.0.0.1:1"
token = "{COMMS_TOKEN}"

[server]
page_listen = "127.0.0.1:0"

[[server.tokens]]
name = "cy"
role = "comms"
token = "{COMMS_TOKEN}"

[[server.tokens]]
name = "vic"
role = "viewer"
token = "SECRETTOKEN123-viewer-0123456789"

[server.webhook]
url = "{hook}"

[server.statuspage]
page_id = "abc123"
api_key_file = "{}"
base_url = "http://127.0.0.1:{}"
"#,
        key_file.display(),
        closed_port()
    );
    std::fs::write(h.join("warroom/config.toml"), &config).unwrap();

    // `warroom info`: the gateway URL without its password, no token.
    let out = warroom(&h).arg("info").output().unwrap();
    let info = text(&out);
    assert!(out.status.success(), "{info}");
    assert!(info.contains("http://***@127.0.0.1:1"), "{info}");
    assert_no_secret("warroom info", &info);

    // The gateway, logging everything at trace level.
    let log = h.join("gateway.log");
    let gw = Running(
        warroom(&h)
            .args(["gateway", "--listen", "127.0.0.1:0", "--state"])
            .arg(h.join("state.sqlite"))
            .env("WARROOM_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let url = after(
        &wait_for_line(&log, "serving warroom.v1 on "),
        "serving warroom.v1 on ",
    )
    .to_string();
    let page = after(&wait_for_line(&log, "status page"), "url=").to_string();

    // A publish (the console's token from the config), then its deliveries
    // fail: nothing listens at the webhook or at Statuspage.
    let out = warroom(&h)
        .args([
            "publish",
            "--gateway",
            &url,
            "--state",
            "investigating",
            "--title",
            "Mailbox access on Cluster A",
            "--body",
            "Logins fail on Cluster A.",
            "--next",
            "+1h",
        ])
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert_no_secret("warroom publish", &said);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (updates, board) = rt.block_on(async {
        let mut c = pb::war_room_client::WarRoomClient::connect(url.clone())
            .await
            .unwrap();
        // Anonymous, as anyone on loopback may read.
        let start = Instant::now();
        let updates = loop {
            let u = c
                .list_status_updates(pb::ListStatusUpdatesRequest::default())
                .await
                .unwrap()
                .into_inner();
            let failed_both = u.updates.first().is_some_and(|u| {
                ["webhook", "statuspage"].iter().all(|ch| {
                    u.deliveries
                        .iter()
                        .any(|d| d.channel == *ch && !d.detail.is_empty())
                })
            });
            if failed_both {
                break u;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no failed attempt of both channels in 30 s: {u:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let mut watch = c
            .watch(pb::WatchRequest::default())
            .await
            .unwrap()
            .into_inner();
        let first = watch.message().await.unwrap().unwrap();
        (updates, first.status)
    });
    let answers = format!("{updates:?}");
    let hook_detail = &updates.updates[0]
        .deliveries
        .iter()
        .find(|d| d.channel == "webhook")
        .unwrap()
        .detail;
    // The detail still says what happened, and where (scheme and host).
    assert!(
        hook_detail.contains("cannot reach the webhook") && hook_detail.contains("127.0.0.1"),
        "{hook_detail}"
    );
    assert_no_secret("ListStatusUpdates", &answers);
    let board = board.expect("the first Watch message carries the status board");
    assert!(
        board.channels.iter().any(|c| !c.last_problem.is_empty()),
        "{board:?}"
    );
    assert_no_secret("Watch StatusBoard", &format!("{board:?}"));

    // The status page, HTML and JSON.
    let (html, json) = rt.block_on(async {
        let get = |u: String| async move { reqwest::get(u).await.unwrap().text().await.unwrap() };
        (
            get(page.clone()).await,
            get(format!("{page}index.json")).await,
        )
    });
    assert!(html.contains("Mailbox access on Cluster A"), "{html}");
    assert_no_secret("the status page", &html);
    assert_no_secret("the status page's JSON", &json);

    // Let the outbox retry at least once more, then read the whole log.
    std::thread::sleep(Duration::from_millis(1_500));
    drop(gw);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("TRACE") && log_text.contains("delivery not sent"),
        "the log is at trace level and names the failed deliveries"
    );
    assert_no_secret("the gateway's log", &log_text);

    // A config error about a token written as a number.
    std::fs::write(
        h.join("warroom/config.toml"),
        "[server]\n[[server.tokens]]\nname = \"ana\"\nrole = \"admin\"\ntoken = 98765432123456789\n",
    )
    .unwrap();
    let out = warroom(&h).arg("info").output().unwrap();
    let e = text(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(
        e.contains("invalid type: integer, expected a string"),
        "{e}"
    );
    assert_no_secret("a config error", &e);
}

/// A state file written by a build before the rule holds details with the
/// webhook's URL in them; read back, they are redacted too.
#[test]
fn a_secret_stored_by_an_older_build_is_redacted_when_read_back() {
    use std::sync::Arc;
    use warroom::channels::webhook::Webhook;
    use warroom::domain::update::Update;
    use warroom::gateway::publish::{Publishing, default_components};
    use warroom::sources::simulator::{SimConfig, Simulator};
    let h = home("older");
    let state = h.join("state.sqlite");
    let hook = format!(
        "http://127.0.0.1:{}/services/T000/B000/SECRETPATH123?key=SECRETQUERY123",
        closed_port()
    );
    {
        let mut store = warroom::store::open(&state).unwrap();
        let (u, _) = store
            .publish(
                &Update {
                    id: String::new(),
                    seq: 0,
                    operation_id: "op-old".into(),
                    state: warroom::domain::IncidentState::Investigating,
                    title: "Mail access".into(),
                    body: "Logins fail.".into(),
                    components: Vec::new(),
                    next_update: None,
                    published_by: "cy".into(),
                    published_at: chrono::Utc::now(),
                    simulated: true,
                },
                &[("webhook".into(), String::new())],
                "",
            )
            .unwrap();
        let d = store.deliveries(Some(&u.id)).unwrap();
        store
            .record_attempt(
                d[0].id,
                "gw",
                "failed",
                &format!("cannot reach the webhook: error sending request for url ({hook})"),
                chrono::Utc::now(),
                false,
            )
            .unwrap();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (listed, board) = rt.block_on(async {
        let sim = Simulator::new(SimConfig {
            tenants: 20,
            mailboxes: 2_000,
            ..SimConfig::default()
        })
        .unwrap();
        let hub = warroom::gateway::Hub::with_store(
            Box::new(sim),
            warroom::store::open(&state).unwrap(),
            60.0,
            60.0,
        )
        .unwrap();
        hub.set_publishing(Publishing {
            channels: vec![
                Arc::new(warroom::channels::Page),
                Arc::new(Webhook::new(&hook, Duration::from_secs(5)).unwrap()),
            ],
            components: default_components(),
            page_url: String::new(),
        });
        let gw = warroom::gateway::Gateway::serve(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            hub,
            None,
        )
        .await
        .unwrap();
        let mut c = pb::war_room_client::WarRoomClient::connect(gw.url())
            .await
            .unwrap();
        let listed = c
            .list_status_updates(pb::ListStatusUpdatesRequest::default())
            .await
            .unwrap()
            .into_inner();
        let mut w = c
            .watch(pb::WatchRequest::default())
            .await
            .unwrap()
            .into_inner();
        let board = w.message().await.unwrap().unwrap().status;
        gw.stop().await;
        (listed, board)
    });
    let detail = &listed.updates[0].deliveries[0].detail;
    assert!(detail.contains("cannot reach the webhook"), "{detail}");
    assert_no_secret(
        "ListStatusUpdates of an older state file",
        &format!("{listed:?}"),
    );
    assert_no_secret("Watch of an older state file", &format!("{board:?}"));
}
