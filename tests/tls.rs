//! The gateway over TLS as its users meet it: the CLI and the console reach
//! an https:// gateway with a test CA; a wrong CA, a plain-text client or a
//! missing client certificate is told in words what is wrong; SIGHUP or a
//! rewritten file serves a new certificate without a restart; listening
//! beyond loopback without TLS is refused. The certificates are made at
//! test time with the openssl command.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::TestPki;
use warroom::client::tls::ClientTls;
use warroom::client::{ClientEvent, GatewayClient};

fn home(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wr-tls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("warroom")).unwrap();
    d
}

/// The CLI with an empty config.
fn warroom(home: &Path, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warroom"))
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .env("XDG_STATE_HOME", home)
        .env_remove("WARROOM_GATEWAY")
        .env_remove("WARROOM_CONFIG")
        .env_remove("WARROOM_TOKEN")
        .env_remove("WARROOM_CA")
        .env_remove("WARROOM_TLS_CERT")
        .env_remove("WARROOM_TLS_KEY")
        .output()
        .expect("warroom runs")
}

async fn cli(home: &Path, args: &[&str]) -> Output {
    let home = home.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || warroom(&home, &args))
        .await
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

async fn tls_gateway(pki: &TestPki, client_ca: bool) -> warroom::gateway::Gateway {
    let gw = common::serve_tls(
        common::hub(common::small()),
        pki.server_tls(client_ca),
        warroom::gateway::Limits::default(),
    )
    .await;
    gw.hub.tick();
    gw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reaches_an_https_gateway_with_its_ca_and_info_says_so() {
    let pki = TestPki::new("cli");
    let gw = tls_gateway(&pki, false).await;
    let url = gw.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let h = home("cli");
    let out = cli(
        &h,
        &["lookup", "t00001", "--gateway", &url, "--ca", p(&pki.ca)],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("(t00001)"),
        "{}",
        text(&out.stdout)
    );
    // By name: the certificate is for localhost too.
    let by_name = url.replace("127.0.0.1", "localhost");
    let out = cli(
        &h,
        &[
            "snapshot",
            "--gateway",
            &by_name,
            "--ca",
            p(&pki.ca),
            "--width",
            "100",
            "--height",
            "30",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Service health"));
    let out = cli(&h, &["info", "--gateway", &url, "--ca", p(&pki.ca)]).await;
    let info = text(&out.stdout);
    assert!(
        info.contains(&format!(
            "gateway TLS:  yes; its certificate must be signed by CA {}",
            pki.ca.display()
        )),
        "{info}"
    );
    let out = cli(&h, &["info", "--gateway", "http://127.0.0.1:1"]).await;
    assert!(
        text(&out.stdout).contains("gateway TLS:  no (plain text: http://)"),
        "{}",
        text(&out.stdout)
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_certificate_from_another_ca_is_refused_naming_the_ca_file() {
    let pki = TestPki::new("wrongca");
    let gw = tls_gateway(&pki, false).await;
    let url = gw.url();
    let out = cli(
        &home("wrongca"),
        &[
            "lookup",
            "t00001",
            "--gateway",
            &url,
            "--ca",
            p(&pki.other_ca),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "the gateway at {url} presented a certificate not signed by CA {}",
            pki.other_ca.display()
        )),
        "{err}"
    );
    assert!(
        !err.contains("h2") && !err.contains("transport error"),
        "{err}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_to_a_tls_gateway_is_told_to_use_https() {
    let pki = TestPki::new("plain");
    let gw = tls_gateway(&pki, false).await;
    let plain = format!("http://{}", gw.addr);
    let out = cli(&home("plain"), &["lookup", "t00001", "--gateway", &plain]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("the gateway speaks TLS: use https://{}", gw.addr)),
        "{err}"
    );
    // curl or a browser: an HTTP/1.1 answer in words.
    let addr = gw.addr;
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("use https://"), "{answer}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_watches_an_https_gateway() {
    let pki = TestPki::new("console");
    let gw = tls_gateway(&pki, false).await;
    let client = GatewayClient::connect(
        &gw.url(),
        None,
        &ClientTls {
            ca: Some(pki.ca.clone()),
            ..ClientTls::default()
        },
    )
    .unwrap();
    assert_eq!(
        client.tls(),
        Some(format!("CA {}", pki.ca.display()).as_str())
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let watch = tokio::spawn(warroom::client::watch_forever(
        client,
        tx,
        Default::default(),
    ));
    let snapshot = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match rx.recv().await {
                Some(ClientEvent::Update(u)) => return u,
                Some(ClientEvent::Disconnected { error, .. }) => panic!("{error}"),
                Some(_) => {}
                None => panic!("watch ended"),
            }
        }
    })
    .await
    .expect("a snapshot over TLS");
    assert!(snapshot.snapshot);
    assert_eq!(snapshot.tenants.len(), 200);
    watch.abort();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_says_on_screen_which_ca_the_gateway_certificate_does_not_fit() {
    let pki = TestPki::new("console-wrongca");
    let gw = tls_gateway(&pki, false).await;
    let client = GatewayClient::connect(
        &gw.url(),
        None,
        &ClientTls {
            ca: Some(pki.other_ca.clone()),
            ..ClientTls::default()
        },
    )
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let watch = tokio::spawn(warroom::client::watch_forever(
        client,
        tx,
        Default::default(),
    ));
    let error = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match rx.recv().await {
                Some(ClientEvent::Disconnected { error, .. }) => return error,
                Some(ClientEvent::Update(_)) => panic!("served despite the wrong CA"),
                Some(_) => {}
                None => panic!("watch ended"),
            }
        }
    })
    .await
    .expect("a disconnection");
    // What line 2 of the console shows.
    assert_eq!(
        error,
        format!(
            "the gateway at {} presented a certificate not signed by CA {}",
            gw.url(),
            pki.other_ca.display()
        )
    );
    watch.abort();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_when_the_gateway_has_a_client_ca() {
    let pki = TestPki::new("mtls");
    let (stranger_cert, stranger_key) =
        pki.leaf("stranger", "other-ca", "DNS:stranger.example", "clientAuth");
    let gw = tls_gateway(&pki, true).await;
    let url = gw.url();
    let h = home("mtls");
    let ca = p(&pki.ca);
    let out = cli(&h, &["lookup", "t00001", "--gateway", &url, "--ca", ca]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "the gateway at {url} requires a client certificate: give --tls-cert and --tls-key"
        )),
        "{err}"
    );
    let out = cli(
        &h,
        &[
            "lookup",
            "t00001",
            "--gateway",
            &url,
            "--ca",
            ca,
            "--tls-cert",
            p(&stranger_cert),
            "--tls-key",
            p(&stranger_key),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "the gateway at {url} refused the client certificate {}",
            stranger_cert.display()
        )),
        "{err}"
    );
    let out = cli(
        &h,
        &[
            "lookup",
            "t00001",
            "--gateway",
            &url,
            "--ca",
            ca,
            "--tls-cert",
            p(&pki.client_cert),
            "--tls-key",
            p(&pki.client_key),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("(t00001)"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_the_tls_handshake_is_timed_out() {
    let pki = TestPki::new("stall");
    let gw = common::serve_tls(
        common::hub(common::small()),
        pki.server_tls(false),
        warroom::gateway::Limits {
            handshake_timeout: Duration::from_millis(300),
            ..warroom::gateway::Limits::default()
        },
    )
    .await;
    let addr = gw.addr;
    // The start of a TLS record, then nothing.
    let closed = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(&[0x16, 0x03, 0x01]).unwrap();
        let mut buf = [0u8; 64];
        matches!(s.read(&mut buf), Ok(0) | Err(_))
    })
    .await
    .unwrap();
    assert!(closed, "the stalled handshake was closed");
    assert_eq!(gw.connections.timed_out(), 1);
    // Its place in the counts is freed (just after the socket closes).
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.connections.open() != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gw.connections.open(), 0);
    gw.stop().await;
}

/// `warroom gateway` as a process, killed when dropped.
struct GatewayProcess(Child);

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn gateway_process(dir: &Path, port: u16, config: &str) -> GatewayProcess {
    std::fs::write(dir.join("warroom/config.toml"), config).unwrap();
    GatewayProcess(common::tmux::spawn_gateway(port, dir, &[], &[]))
}

/// Runs `lookup` until it succeeds (a reload is asynchronous), at most 30 s.
async fn lookup_until_ok(home: &Path, url: &str, ca: &Path) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = cli(home, &["lookup", "t00001", "--gateway", url, "--ca", p(ca)]).await;
        if out.status.success() || Instant::now() > deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_makes_the_gateway_serve_a_new_certificate_without_a_restart() {
    let pki = TestPki::new("hup");
    let h = home("hup");
    let live_cert = pki.dir.join("live.pem");
    let live_key = pki.dir.join("live.key");
    std::fs::copy(&pki.server_cert, &live_cert).unwrap();
    std::fs::copy(&pki.server_key, &live_key).unwrap();
    let port = common::tmux::free_port();
    // Only SIGHUP reloads: no polling of the files.
    let mut gw = gateway_process(
        &h,
        port,
        &format!(
            "[server]\npage_listen = \"127.0.0.1:0\"\n[server.tls]\ncert = {:?}\nkey = {:?}\nreload_check_ms = 0\n",
            p(&live_cert),
            p(&live_key)
        ),
    );
    common::tmux::wait_listening(port);
    let url = format!("https://127.0.0.1:{port}");
    let out = lookup_until_ok(&h, &url, &pki.ca).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A new certificate from another CA, then SIGHUP.
    let (new_cert, new_key) = pki.leaf("renewed", "other-ca", "IP:127.0.0.1", "serverAuth");
    std::fs::copy(&new_cert, &live_cert).unwrap();
    std::fs::copy(&new_key, &live_key).unwrap();
    let hup = |pid: u32| {
        let s = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(s.success());
    };
    hup(gw.0.id());
    let out = lookup_until_ok(&h, &url, &pki.other_ca).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(
        &h,
        &["lookup", "t00001", "--gateway", &url, "--ca", p(&pki.ca)],
    )
    .await;
    assert!(
        text(&out.stderr).contains("presented a certificate not signed by CA"),
        "the old CA no longer fits: {}",
        text(&out.stderr)
    );

    // A broken key on the next SIGHUP: the renewed certificate stays.
    std::fs::write(&live_key, "not a key\n").unwrap();
    hup(gw.0.id());
    for _ in 0..3 {
        let out = cli(
            &h,
            &[
                "lookup",
                "t00001",
                "--gateway",
                &url,
                "--ca",
                p(&pki.other_ca),
            ],
        )
        .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    assert!(gw.0.try_wait().unwrap().is_none(), "SIGHUP did not stop it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_rewritten_in_place_is_served_without_a_signal() {
    let pki = TestPki::new("rewrite");
    let tls = warroom::gateway::tls::ServerTls::load(warroom::gateway::tls::TlsFiles {
        cert: pki.dir.join("live.pem"),
        key: pki.dir.join("live.key"),
        client_ca: None,
        check_every: Some(Duration::from_millis(200)),
    });
    assert!(
        tls.as_ref()
            .err()
            .is_some_and(|e| e.contains("live.pem: cannot read")),
        "a missing file is named"
    );
    std::fs::copy(&pki.server_cert, pki.dir.join("live.pem")).unwrap();
    std::fs::copy(&pki.server_key, pki.dir.join("live.key")).unwrap();
    let tls = warroom::gateway::tls::ServerTls::load(warroom::gateway::tls::TlsFiles {
        cert: pki.dir.join("live.pem"),
        key: pki.dir.join("live.key"),
        client_ca: None,
        check_every: Some(Duration::from_millis(200)),
    })
    .unwrap();
    let gw = common::serve_tls(
        common::hub(common::small()),
        tls,
        warroom::gateway::Limits::default(),
    )
    .await;
    gw.hub.tick();
    let h = home("rewrite");
    let (new_cert, new_key) = pki.leaf("renewed", "other-ca", "IP:127.0.0.1", "serverAuth");
    std::fs::copy(&new_key, pki.dir.join("live.key")).unwrap();
    std::fs::copy(&new_cert, pki.dir.join("live.pem")).unwrap();
    let out = lookup_until_ok(&h, &gw.url(), &pki.other_ca).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    gw.stop().await;
}

#[test]
fn listening_beyond_loopback_without_tls_is_refused_with_what_to_set() {
    let h = home("open");
    std::fs::write(
        h.join("warroom/config.toml"),
        "[server]\npage_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let port = common::tmux::free_port().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warroom"))
        .args(["gateway", "--listen", &format!("0.0.0.0:{port}")])
        .args(["--tenants", "20", "--mailboxes", "200"])
        .env("XDG_CONFIG_HOME", &h)
        .env("XDG_DATA_HOME", &h)
        .env_remove("WARROOM_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the gateway started on 0.0.0.0 without TLS");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success());
    assert!(
        err.contains(&format!("refusing to listen on 0.0.0.0:{port} without TLS"))
            && err.contains("[server.tls] cert and key")
            && err.contains("insecure = true under [server]"),
        "{err}"
    );
}

#[test]
fn a_key_that_does_not_go_with_the_certificate_is_refused_naming_both_files() {
    let pki = TestPki::new("mismatch");
    let e = warroom::gateway::tls::ServerTls::load(warroom::gateway::tls::TlsFiles {
        cert: pki.server_cert.clone(),
        key: pki.client_key.clone(),
        client_ca: None,
        check_every: None,
    })
    .err()
    .unwrap();
    assert!(
        e.starts_with(&format!(
            "[server.tls] the key {} cannot serve the certificate {}",
            pki.client_key.display(),
            pki.server_cert.display()
        )),
        "{e}"
    );
    let e = warroom::gateway::tls::ServerTls::load(warroom::gateway::tls::TlsFiles {
        cert: pki.server_key.clone(),
        key: pki.server_key.clone(),
        client_ca: None,
        check_every: None,
    })
    .err()
    .unwrap();
    assert!(e.contains("no certificate in it"), "{e}");
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn the_console_in_a_terminal_goes_live_over_https_and_names_a_wrong_ca() {
    let pki = TestPki::new("tmux");
    let h = home("tmux");
    let port = common::tmux::free_port();
    let _gw = gateway_process(
        &h,
        port,
        &format!(
            "[server]\npage_listen = \"127.0.0.1:0\"\n[server.tls]\ncert = {:?}\nkey = {:?}\n",
            p(&pki.server_cert),
            p(&pki.server_key)
        ),
    );
    common::tmux::wait_listening(port);
    let console = |tag: &str, ca: &Path| {
        // Its own config dir: the gateway's config is not the console's.
        let dir = home(&format!("tmux-{tag}"));
        common::tmux::Session::start(
            &format!("warroom-tls-{tag}-{}", std::process::id()),
            &dir,
            120,
            40,
            &format!(
                "XDG_STATE_HOME={d} XDG_CONFIG_HOME={d} {} --gateway https://127.0.0.1:{port} --ca {}; sleep 30",
                env!("CARGO_BIN_EXE_warroom"),
                ca.display(),
                d = dir.display(),
            ),
        )
    };
    let good = console("good", &pki.ca);
    good.wait_for(&["● LIVE", "SIMULATED", "Service health"]);
    let wrong = console("wrong", &pki.other_ca);
    let screen = wrong.wait_for(&["DISCONNECTED", "presented a certificate not signed by CA"]);
    assert!(!screen.contains("LIVE"), "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_certificate_for_another_name_is_refused_saying_so() {
    let pki = TestPki::new("name");
    let (cert, key) = pki.leaf("elsewhere", "ca", "DNS:gw.elsewhere.example", "serverAuth");
    let tls = warroom::gateway::tls::ServerTls::load(warroom::gateway::tls::TlsFiles {
        cert,
        key,
        client_ca: None,
        check_every: None,
    })
    .unwrap();
    let gw = common::serve_tls(
        common::hub(common::small()),
        tls,
        warroom::gateway::Limits::default(),
    )
    .await;
    let url = gw.url();
    let out = cli(
        &home("name"),
        &["lookup", "t00001", "--gateway", &url, "--ca", p(&pki.ca)],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "the gateway at {url} presented a certificate for another name than the URL's host"
        )) && err.contains("gw.elsewhere.example"),
        "{err}"
    );
    gw.stop().await;
}

/// Replicas serving TLS on one PostgreSQL database: the follower reaches
/// its leader at `https://…` with the CA of its `[gateway_tls]`, relays
/// its picture and forwards its consoles' calls to it.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_relays_a_leader_that_serves_tls() {
    let pki = TestPki::new("replicas");
    let pg = common::postgres::PgCluster::start("tls-replicas");
    let url = pg.create_db("warroom");
    let mut gws = Vec::new();
    for _ in 0..2 {
        let hub = common::hub_with_store(
            common::small(),
            &warroom::store::Location::Postgres(url.clone()),
        );
        hub.set_leadership(warroom::store::Leadership::campaign(&url).unwrap());
        hub.set_relay_tls(ClientTls {
            ca: Some(pki.ca.clone()),
            ..ClientTls::default()
        });
        gws.push(
            common::serve_tls(
                hub,
                pki.server_tls(false),
                warroom::gateway::Limits::default(),
            )
            .await,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let follower = loop {
        let relaying = gws.iter().find(|g| {
            g.hub.snapshot().sources.iter().any(|s| {
                s.name == "store"
                    && s.message
                        .contains("follower of the leader at https://127.0.0.1:")
            })
        });
        if let Some(f) = relaying {
            break f;
        }
        assert!(
            Instant::now() < deadline,
            "no follower relayed: {:?}",
            gws.iter()
                .map(|g| g.hub.snapshot().sources)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let tls = ClientTls {
        ca: Some(pki.ca.clone()),
        ..ClientTls::default()
    };
    let client = GatewayClient::connect(&follower.url(), None, &tls).unwrap();
    let tenants = client
        .raw()
        .list_tenants(warroom::api::pb::ListTenantsRequest::default())
        .await
        .expect("answered by the leader through the follower")
        .into_inner();
    assert!(!tenants.tenants.is_empty());
    for g in gws {
        g.stop().await;
    }
}
