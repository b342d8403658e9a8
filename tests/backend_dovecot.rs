//! The doveadm HTTP client (`sources::dovecot`) and the reindex executor
//! (`sources::reindex`) against a real Dovecot 2.3 (Debian's dovecot-core and
//! dovecot-imapd), started by each test from `tests/fixtures/dovecot/
//! dovecot.conf.in` in a scratch directory, listening on 127.0.0.1 only
//! (IMAP, doveadm HTTP and stats on ports picked here), with two tenants
//! (acme.test, globex.test) seeded through `doveadm save`.
//!
//! As root (CI) the mail belongs to a `vmail` system user, created if
//! missing; otherwise to the user running the tests. Dovecot is stopped
//! with `kill $(cat BASE_DIR/master.pid)` when a test's guard is dropped,
//! also when the test fails. Without Dovecot every test fails with a
//! message naming the packages to install; none passes silently.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use warroom::sources::dovecot::{DoveError, Doveadm, MailboxStatus};
use warroom::sources::reindex::{Limits, Progress, Reindexer, Repairer};

const DOVECOT: &str = "/usr/sbin/dovecot";
const DOVEADM: &str = "/usr/bin/doveadm";
const INSTALL: &str =
    "install Dovecot with `apt-get install -y dovecot-core dovecot-imapd` (Debian)";
const TEMPLATE: &str = include_str!("fixtures/dovecot/dovecot.conf.in");
const API_KEY: &str = "warroom-test-api-key";

/// The seeded users and how many messages each INBOX holds.
const ACME: [(&str, u64); 4] = [
    ("alice@acme.test", 3),
    ("bob@acme.test", 4),
    ("carol@acme.test", 5),
    ("dave@acme.test", 2),
];
const GLOBEX: [(&str, u64); 3] = [
    ("erin@globex.test", 4),
    ("frank@globex.test", 3),
    ("grace@globex.test", 6),
];

fn seeded() -> BTreeMap<&'static str, u64> {
    ACME.into_iter().chain(GLOBEX).collect()
}

// ---------------------------------------------------------------- Dovecot

/// A port nothing listens on (just now).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("no free local port")
        .port()
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{shown}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "{shown}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Who owns the mail: `vmail` (created if missing) as root, else whoever
/// runs the tests. Returns (user, group, running as root).
fn mail_owner() -> (String, String, bool) {
    static CREATE: Mutex<()> = Mutex::new(());
    let uid = run(Command::new("id").arg("-u")).expect("id -u");
    if uid != "0" {
        let user = run(Command::new("id").arg("-un")).expect("id -un");
        let group = run(Command::new("id").arg("-gn")).expect("id -gn");
        return (user, group, false);
    }
    let _one_at_a_time = CREATE.lock().unwrap_or_else(|e| e.into_inner());
    let exists = || run(Command::new("getent").args(["passwd", "vmail"])).is_ok();
    if !exists() {
        let made = run(Command::new("useradd").args([
            "-r",
            "-U",
            "-M",
            "-s",
            "/usr/sbin/nologin",
            "vmail",
        ]));
        assert!(exists(), "no vmail user and cannot create one: {made:?}");
    }
    ("vmail".into(), "vmail".into(), true)
}

fn require_dovecot() {
    for bin in [DOVECOT, DOVEADM] {
        assert!(Path::new(bin).exists(), "{bin} is missing: {INSTALL}");
    }
    if let Err(e) = run(Command::new(DOVECOT).arg("--version")) {
        panic!("{DOVECOT} does not run ({e}): {INSTALL}");
    }
}

/// One Dovecot instance in a scratch directory; stopped when dropped.
struct Dovecot {
    dir: PathBuf,
    conf: PathBuf,
    http_port: u16,
}

impl Dovecot {
    /// Writes the configuration and the users file, creates the mail root.
    fn new(what: &str) -> Dovecot {
        require_dovecot();
        static N: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("warroom-dovecot-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["log", "mail"] {
            std::fs::create_dir_all(dir.join(sub))
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        let (user, group, root) = mail_owner();
        run(Command::new("chown")
            .arg(format!("{user}:{group}"))
            .arg(dir.join("mail")))
        .expect("chown the mail root");

        let mut ports = Vec::new();
        while ports.len() < 3 {
            let p = free_port();
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let (non_root, login_chroot) = if root {
            (String::new(), "")
        } else {
            (
                format!(
                    "default_internal_user = {user}\ndefault_internal_group = {group}\n\
                     default_login_user = {user}\n\
                     service anvil {{\n  chroot =\n}}"
                ),
                "chroot =",
            )
        };
        let conf_text = TEMPLATE
            .replace("@ID@", &id)
            .replace("@DIR@", &dir.display().to_string())
            .replace("@MAIL_USER@", &user)
            .replace("@MAIL_GROUP@", &group)
            .replace("@NON_ROOT@", &non_root)
            .replace("@LOGIN_CHROOT@", login_chroot)
            .replace("@API_KEY@", API_KEY)
            .replace("@IMAP_PORT@", &ports[0].to_string())
            .replace("@HTTP_PORT@", &ports[1].to_string())
            .replace("@STATS_PORT@", &ports[2].to_string());
        let unfilled = conf_text
            .split('@')
            .skip(1)
            .step_by(2)
            .find(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'));
        assert!(unfilled.is_none(), "unfilled {unfilled:?} in {conf_text}");
        let conf = dir.join("dovecot.conf");
        std::fs::write(&conf, conf_text).expect("write dovecot.conf");
        let users: String = seeded()
            .keys()
            .map(|u| format!("{u}:{{PLAIN}}secret::::::\n"))
            .collect();
        std::fs::write(dir.join("users"), users).expect("write users");
        Dovecot {
            dir,
            conf,
            http_port: ports[1],
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("log/dovecot.log")).unwrap_or_default();
        let err = std::fs::read_to_string(self.dir.join("start.err")).unwrap_or_default();
        let tail: String = log
            .chars()
            .rev()
            .take(3000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("{err}\n--- dovecot.log (end) ---\n{tail}")
    }

    fn http_open(&self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.http_port));
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    }

    /// Starts Dovecot (it daemonizes; its output goes to a file, never to
    /// the test's stdout/stderr) and waits for the doveadm HTTP listener.
    fn start(&self) {
        let err = File::create(self.dir.join("start.err")).expect("start.err");
        let status = Command::new(DOVECOT)
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {DOVECOT} ({e}): {INSTALL}"));
        assert!(
            status.success(),
            "dovecot -c {} failed ({status}): {}",
            self.conf.display(),
            self.log_tail()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.http_open() {
            assert!(
                Instant::now() < deadline,
                "doveadm HTTP never listened on {}: {}",
                self.http_port,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill $(cat BASE_DIR/master.pid)`, then waits until the master has
    /// removed its pid file and the doveadm port refuses connections.
    fn stop(&self) {
        let pid_file = self.dir.join("run/master.pid");
        let Ok(pid) = std::fs::read_to_string(&pid_file) else {
            return;
        };
        let pid = pid.trim().to_string();
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            return;
        }
        let _ = run(Command::new("kill").arg(&pid));
        let deadline = Instant::now() + Duration::from_secs(15);
        while pid_file.exists() || self.http_open() {
            if Instant::now() > deadline {
                let _ = run(Command::new("kill").args(["-KILL", &pid]));
                let _ = std::fs::remove_file(&pid_file);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn client(&self) -> Doveadm {
        Doveadm::new(
            &format!("http://127.0.0.1:{}", self.http_port),
            API_KEY,
            Duration::from_secs(30),
        )
        .expect("a valid doveadm client")
    }

    /// Delivers `n` messages to `user` with `doveadm save` (which looks the
    /// user up through the running Dovecot's auth service).
    fn seed(&self, user: &str, n: u64) {
        for i in 1..=n {
            let msg = format!(
                "From: sender@example.test\r\nTo: {user}\r\nSubject: seed {i}\r\n\
                 Date: Mon, 2 Nov 2026 10:00:00 +0000\r\n\
                 Message-ID: <seed-{i}-{user}>\r\n\r\nMessage {i} for {user}.\r\n"
            );
            let path = self.dir.join("msg.eml");
            std::fs::write(&path, msg).expect("write message");
            let out = Command::new(DOVEADM)
                .arg("-c")
                .arg(&self.conf)
                .args(["save", "-u", user])
                .stdin(File::open(&path).expect("message"))
                .output()
                .expect("run doveadm save");
            assert!(
                out.status.success(),
                "doveadm save -u {user}: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn seed_all(&self) {
        for (user, n) in seeded() {
            self.seed(user, n);
        }
    }

    fn maildir(&self, user: &str) -> PathBuf {
        let (local, domain) = user.split_once('@').expect("user@domain");
        self.dir
            .join("mail")
            .join(domain)
            .join(local)
            .join("Maildir")
    }

    /// Moves the Maildir's new/ and cur/ mtimes two minutes back, so that
    /// Dovecot's next look records them as settled (a directory changed
    /// within the last second is always rescanned).
    fn settle(&self, user: &str) {
        let past = SystemTime::now() - Duration::from_secs(120);
        for sub in ["new", "cur"] {
            set_mtime(&self.maildir(user).join(sub), past);
        }
    }

    /// Damage: a stale index. Adds `n` message files to new/ or cur/ behind
    /// Dovecot's back and restores the directory's exact mtime, so Dovecot
    /// does not notice them.
    fn sneak_in(&self, user: &str, n: u64, sub: &str) {
        let maildir = self.maildir(user);
        let owner = std::fs::metadata(&maildir).expect("maildir");
        let dir = maildir.join(sub);
        let mtime = std::fs::metadata(&dir)
            .and_then(|m| m.modified())
            .expect("mtime");
        for i in 0..n {
            let name = format!(
                "1790000000.M{i}P{}.warroom-damage{}",
                std::process::id(),
                if sub == "cur" { ":2," } else { "" }
            );
            let path = dir.join(name);
            std::fs::write(
                &path,
                format!(
                    "From: late@example.test\r\nSubject: behind Dovecot's back {i}\r\n\r\nx\r\n"
                ),
            )
            .expect("write the extra message");
            std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid()))
                .expect("chown the extra message");
        }
        set_mtime(&dir, mtime);
        assert_eq!(
            std::fs::metadata(&dir).and_then(|m| m.modified()).ok(),
            Some(mtime),
            "mtime restored exactly"
        );
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("Dovecot's files are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn set_mtime(path: &Path, t: SystemTime) {
    File::open(path)
        .and_then(|f| f.set_modified(t))
        .unwrap_or_else(|e| panic!("cannot set the mtime of {}: {e}", path.display()));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn status(d: &Doveadm, user: &str) -> MailboxStatus {
    d.mailbox_status(user, "INBOX")
        .await
        .unwrap_or_else(|e| panic!("mailbox_status {user}: {e}"))
}

/// Seeds every user, then lets Dovecot index every INBOX with settled
/// directory mtimes (and checks the counts).
async fn seed_and_prime(dc: &Dovecot, d: &Doveadm) {
    let seeded = seeded();
    for user in seeded.keys() {
        dc.settle(user);
        let s = status(d, user).await;
        assert_eq!(
            s,
            MailboxStatus {
                messages: seeded[user],
                unseen: seeded[user]
            },
            "{user} as seeded"
        );
    }
}

// ------------------------------------------------------- recording repairer

type Hook = Box<dyn Fn() + Send + Sync>;

/// The real Doveadm repairer, recording the order of calls; optionally runs
/// a (blocking) hook when the k-th repair has succeeded, before answering.
struct Recorder {
    inner: Doveadm,
    calls: Mutex<Vec<String>>,
    ok: AtomicUsize,
    hook: Option<(usize, Arc<Hook>)>,
}

impl Recorder {
    fn new(inner: Doveadm) -> Self {
        Recorder {
            inner,
            calls: Mutex::new(Vec::new()),
            ok: AtomicUsize::new(0),
            hook: None,
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Each user once, in the order it was first called.
    fn first_calls(&self) -> Vec<String> {
        let mut first: Vec<String> = Vec::new();
        for u in self.calls() {
            if !first.contains(&u) {
                first.push(u);
            }
        }
        first
    }
}

#[async_trait::async_trait]
impl Repairer for Recorder {
    async fn repair(&self, user: &str) -> Result<Duration, DoveError> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(user.to_string());
        let result = self.inner.repair(user).await;
        if result.is_ok() {
            let n = self.ok.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some((k, hook)) = &self.hook
                && n == *k
            {
                let hook = Arc::clone(hook);
                tokio::task::spawn_blocking(move || hook())
                    .await
                    .expect("the hook runs");
            }
        }
        result
    }
}

async fn wait_for(r: &Reindexer, what: &str, cond: impl Fn(&Progress) -> bool) -> Progress {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = r.progress();
        if cond(&p) {
            return p;
        }
        assert!(Instant::now() < deadline, "never {what}: {p:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ------------------------------------------------------------------ tests

/// `user` lists exactly one tenant's users, `mailboxStatus` gives the
/// seeded counts per user, and doveadm's failures come back typed.
#[test]
fn lists_users_and_reads_mailbox_status() {
    let dc = Dovecot::new("status");
    dc.start();
    dc.seed_all();
    runtime().block_on(async {
        let d = dc.client();
        let acme = sorted(d.users("*@acme.test").await.expect("users acme"));
        assert_eq!(acme, ACME.map(|(u, _)| u.to_string()).to_vec());
        let globex = sorted(d.users("*@globex.test").await.expect("users globex"));
        assert_eq!(globex, GLOBEX.map(|(u, _)| u.to_string()).to_vec());
        assert!(d.users("*@initech.test").await.expect("users").is_empty());

        for (user, n) in seeded() {
            assert_eq!(
                status(&d, user).await,
                MailboxStatus {
                    messages: n,
                    unseen: n
                },
                "{user}"
            );
        }

        assert_eq!(
            d.mailbox_status("nobody@acme.test", "INBOX").await,
            Err(DoveError::Exit {
                code: 67,
                meaning: "unknown user"
            })
        );
        assert!(matches!(
            d.mailbox_status("alice@acme.test", "NoSuchFolder").await,
            Err(DoveError::Exit { code: 68, .. })
        ));
        assert!(matches!(
            d.force_resync("nobody@acme.test", "*").await,
            Err(DoveError::Exit { code: 67, .. })
        ));
        // Wildcards are refused before anything is sent.
        assert!(matches!(
            d.mailbox_status("*@acme.test", "INBOX").await,
            Err(DoveError::Invalid(_))
        ));

        let wrong = Doveadm::new(
            &format!("http://127.0.0.1:{}", dc.http_port),
            "not-the-key",
            Duration::from_secs(10),
        )
        .expect("client");
        assert_eq!(wrong.users("*").await, Err(DoveError::Auth));
    });
}

/// Stale indexes (files added behind Dovecot's back) keep reporting the old
/// counts; the reindexer with the real repairer fixes them, calling Dovecot
/// in the priority order it was given.
#[test]
fn reindex_repairs_stale_indexes_in_priority_order() {
    let dc = Dovecot::new("reindex");
    dc.start();
    dc.seed_all();
    runtime().block_on(async {
        let d = dc.client();
        seed_and_prime(&dc, &d).await;

        // (user, files added, where)
        let damage = [
            ("grace@globex.test", 2, "new"),
            ("bob@acme.test", 1, "cur"),
            ("dave@acme.test", 3, "new"),
            ("erin@globex.test", 1, "cur"),
        ];
        for (user, n, sub) in damage {
            dc.sneak_in(user, n, sub);
        }
        let before = seeded();
        for (user, _, _) in damage {
            assert_eq!(
                status(&d, user).await.messages,
                before[user],
                "{user}: the stale index still shows the old count"
            );
        }

        // Priority order: neither alphabetical nor by tenant; a healthy
        // mailbox (alice) last.
        let order: Vec<String> = damage
            .iter()
            .map(|(u, _, _)| u.to_string())
            .chain(["alice@acme.test".to_string()])
            .collect();
        let reindexer = Arc::new(Reindexer::with_queue(
            Limits {
                max_concurrency: 2,
                slow: Duration::from_secs(10),
                retry_after: Duration::from_millis(200),
            },
            order.clone(),
        ));
        let recorder = Arc::new(Recorder::new(dc.client()));
        tokio::time::timeout(
            Duration::from_secs(120),
            Arc::clone(&reindexer).run(Arc::clone(&recorder) as Arc<dyn Repairer>),
        )
        .await
        .expect("the reindexer finishes");

        assert_eq!(recorder.calls(), order, "called once each, in order");
        let p = reindexer.progress();
        assert_eq!(sorted(p.done.clone()), sorted(order.clone()), "{p:?}");
        assert!(p.failed.is_empty() && p.queued.is_empty(), "{p:?}");
        assert_eq!(p.last_error, None);

        let mut expected = seeded();
        for (user, n, _) in damage {
            *expected.get_mut(user).expect("seeded") += n;
        }
        for (user, n) in expected {
            assert_eq!(
                status(&d, user).await,
                MailboxStatus {
                    messages: n,
                    unseen: n
                },
                "{user} after the repair"
            );
        }
    });
}

/// Dovecot stopped mid-run: the reindexer reports the error, pauses and
/// keeps every remaining mailbox in order; Dovecot started again: it
/// finishes them all.
#[test]
fn reindex_waits_out_a_dovecot_outage() {
    let dc = Arc::new(Dovecot::new("outage"));
    dc.start();
    dc.seed_all();
    runtime().block_on(async {
        let d = dc.client();
        seed_and_prime(&dc, &d).await;
        let order = [
            "frank@globex.test",
            "alice@acme.test",
            "grace@globex.test",
            "bob@acme.test",
            "erin@globex.test",
            "dave@acme.test",
        ]
        .map(String::from)
        .to_vec();
        for (i, user) in order.iter().enumerate() {
            dc.sneak_in(
                user,
                1 + i as u64 % 2,
                if i % 2 == 0 { "new" } else { "cur" },
            );
        }

        let reindexer = Arc::new(Reindexer::with_queue(
            Limits {
                max_concurrency: 2,
                slow: Duration::from_secs(10),
                retry_after: Duration::from_millis(200),
            },
            order.clone(),
        ));
        let mut recorder = Recorder::new(dc.client());
        let killer = Arc::clone(&dc);
        let hook: Hook = Box::new(move || killer.stop());
        recorder.hook = Some((2, Arc::new(hook)));
        let recorder = Arc::new(recorder);
        let run =
            tokio::spawn(Arc::clone(&reindexer).run(Arc::clone(&recorder) as Arc<dyn Repairer>));

        // Down: the error is reported, nothing is dropped or reordered.
        let down = wait_for(&reindexer, "paused after the outage", |p| {
            p.paused && p.in_flight == 0 && p.last_error.is_some()
        })
        .await;
        assert!(!dc.http_open(), "Dovecot is down");
        assert!(down.failed.is_empty(), "{down:?}");
        assert!(down.done.len() >= 2, "{down:?}");
        assert_eq!(
            sorted(down.done.clone()),
            sorted(order[..down.done.len()].to_vec()),
            "{down:?}"
        );
        assert_eq!(down.queued, order[down.done.len()..].to_vec(), "{down:?}");
        // A call caught by the shutdown may fail with exit code 75 (its
        // user lookup lost the auth service) rather than find no listener.
        let error = down.last_error.clone().unwrap_or_default();
        assert!(
            ["unreachable", "closed", "exit code 75"]
                .iter()
                .any(|w| error.contains(w)),
            "{error}"
        );
        assert_eq!(down.concurrency, 1);

        // It keeps trying (the same, first remaining mailbox) while down.
        let calls_then = recorder.calls().len();
        wait_for(&reindexer, "retrying", |p| p.retries >= down.retries + 2).await;
        let retried: Vec<String> = recorder.calls()[calls_then..].to_vec();
        assert!(
            retried.iter().all(|u| *u == down.queued[0]),
            "{retried:?} vs {down:?}"
        );
        let still = reindexer.progress();
        assert_eq!(still.done, down.done);
        assert!(still.failed.is_empty());
        assert!(still.paused, "{still:?}");
        let error = still.last_error.unwrap_or_default();
        assert!(error.contains("doveadm API unreachable"), "{error}");
        assert!(
            error.starts_with(&format!("{}: ", down.queued[0])),
            "{error}"
        );

        // Up again: it finishes the rest.
        let starter = Arc::clone(&dc);
        tokio::task::spawn_blocking(move || starter.start())
            .await
            .expect("Dovecot starts again");
        tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .expect("the reindexer finishes")
            .expect("the reindexer does not panic");

        let p = reindexer.progress();
        assert!(p.failed.is_empty() && p.queued.is_empty(), "{p:?}");
        assert_eq!(sorted(p.done.clone()), sorted(order.clone()), "{p:?}");
        assert!(!p.paused);
        assert_eq!(recorder.first_calls(), order, "first tried in order");

        let mut expected = seeded();
        for (i, user) in order.iter().enumerate() {
            *expected.get_mut(user.as_str()).expect("seeded") += 1 + i as u64 % 2;
        }
        let d = dc.client();
        for (user, n) in expected {
            assert_eq!(
                status(&d, user).await.messages,
                n,
                "{user} after the repair"
            );
        }
    });
}
