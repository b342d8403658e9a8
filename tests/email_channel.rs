//! Tenant notices by e-mail, end to end through a real SMTP server: Debian's
//! aiosmtpd (`apt-get install python3-aiosmtpd`), run by /usr/bin/python3
//! with its Maildir handler, so every accepted message lands in a Maildir
//! with the envelope recipients in an `X-RcptTo` header. Messages are read
//! back with Python's `email` package (an independent MIME parser: it
//! decodes quoted-printable, base64 and RFC 2047 headers) and its `csv`
//! module, then checked here.
//!
//! Without aiosmtpd every test that needs it fails with a message saying
//! how to install it; none passes silently.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use warroom::channels::email::{Email, EmailConfig};
use warroom::channels::{
    Channel, Context, Delivery, Facts, Memory, MemoryError, Outcome, TenantNotice, Update,
};
use warroom::domain::forecast::EtaRange;
use warroom::domain::{IncidentState, MailboxRow, MailboxState};

/// Debian's interpreter: the `python3` on PATH may be another one (pyenv)
/// without aiosmtpd.
const PYTHON: &str = "/usr/bin/python3";
const INSTALL: &str = "install it with `apt-get install -y python3-aiosmtpd` (Debian)";

/// aiosmtpd's Maildir handler, answering some recipients as a real relay
/// would: `reject*@` gets a permanent 550, `later*@` a transient 451.
const HANDLER: &str = r#"
from aiosmtpd.handlers import Mailbox

class Handler(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split('@', 1)[0]
        if local.startswith('reject'):
            return '550 5.1.1 <%s>: Recipient address rejected: User unknown' % address
        if local.startswith('later'):
            return '451 4.3.0 <%s>: Temporary lookup failure, try again later' % address
        envelope.rcpt_tos.append(address)
        return '250 OK'
"#;

/// Reads the messages named on the command line and prints them as JSON,
/// every part decoded (transfer encoding and charset), CSV parts parsed.
const PARSE: &str = r#"
import csv, email, email.policy, io, json, sys
out = []
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        msg = email.message_from_bytes(f.read(), policy=email.policy.default)
    defects = [type(d).__name__ for d in msg.defects]
    parts = []
    for part in msg.walk():
        defects += [type(d).__name__ for d in part.defects]
        if part.is_multipart():
            continue
        text = part.get_content()
        if isinstance(text, bytes):
            text = text.decode('utf-8', 'replace')
        p = {
            'content_type': part.get_content_type(),
            'charset': part.get_content_charset(),
            'filename': part.get_filename(),
            'disposition': part.get_content_disposition(),
            'text': text,
            'csv': None,
        }
        if p['content_type'] == 'text/csv':
            p['csv'] = list(csv.reader(io.StringIO(text, newline='')))
        parts.append(p)
    headers = {}
    for k, v in msg.items():
        headers.setdefault(k.lower(), []).append(str(v))
    out.append({'path': path, 'headers': headers, 'parts': parts, 'defects': defects})
json.dump(out, sys.stdout)
"#;

// ---------------------------------------------------------------- fixtures

fn scratch_dir(what: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "warroom-email-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

#[path = "fixtures/ports.rs"]
mod ports;
use ports::free_port;

fn require_aiosmtpd() {
    match Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(_) => panic!("aiosmtpd is not importable by {PYTHON}: {INSTALL}"),
        Err(e) => panic!("cannot run {PYTHON} ({e}): {INSTALL}"),
    }
}

/// aiosmtpd on 127.0.0.1, writing into a Maildir; killed when dropped.
struct Smtpd {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Smtpd {
    fn start() -> Smtpd {
        require_aiosmtpd();
        let dir = scratch_dir("smtpd");
        std::fs::write(dir.join("warroom_test_smtpd.py"), HANDLER).expect("write handler");
        let mut last = String::new();
        // A port found free can be taken before aiosmtpd binds it: try again.
        for _ in 0..3 {
            let port = free_port();
            let log_path = dir.join("smtpd.log");
            let log = std::fs::File::create(&log_path).expect("create smtpd.log");
            let mut child = Command::new(PYTHON)
                .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
                .args(["-c", "warroom_test_smtpd.Handler"])
                .arg(dir.join("Maildir"))
                .env("PYTHONPATH", &dir)
                .current_dir(&dir)
                // Never the test's own pipes: `cargo test | tee` would wait
                // for a daemon holding them.
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start aiosmtpd with {PYTHON} ({e}): {INSTALL}"));
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!(
                        "aiosmtpd exited ({status}) before listening on {addr}: {}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Smtpd { child, dir, port };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "aiosmtpd did not listen on {addr} within 20 s: {}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        panic!("{last}");
    }

    fn email(&self) -> Email {
        email_to(self.port, Duration::from_secs(10))
    }

    /// Every message in the Maildir, parsed.
    fn messages(&self) -> Vec<Mail> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.dir.join("Maildir").join(sub)) {
                files.extend(entries.flatten().map(|e| e.path()));
            }
        }
        files.sort();
        parse_files(&files)
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug, Deserialize)]
struct Mail {
    path: String,
    headers: BTreeMap<String, Vec<String>>,
    parts: Vec<Part>,
    defects: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Part {
    content_type: String,
    charset: Option<String>,
    filename: Option<String>,
    disposition: Option<String>,
    text: String,
    csv: Option<Vec<Vec<String>>>,
}

impl Mail {
    fn header(&self, name: &str) -> &str {
        match self
            .headers
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
        {
            Some([one]) => one,
            other => panic!("{}: header {name}: {other:?}", self.path),
        }
    }
    fn has_header(&self, name: &str) -> bool {
        self.headers.contains_key(&name.to_ascii_lowercase())
    }
    fn tenant(&self) -> &str {
        self.header("X-Warroom-Tenant")
    }
    fn body(&self) -> &Part {
        self.parts
            .iter()
            .find(|p| p.content_type == "text/plain" && p.disposition.is_none())
            .unwrap_or_else(|| panic!("{}: no text/plain body: {:?}", self.path, self.parts))
    }
    fn attachments(&self) -> Vec<&Part> {
        self.parts
            .iter()
            .filter(|p| p.disposition.as_deref() == Some("attachment"))
            .collect()
    }
    /// Everything a reader sees, decoded: every header and every part.
    fn everything(&self) -> String {
        let mut s = String::new();
        for (k, vs) in &self.headers {
            for v in vs {
                s.push_str(&format!("{k}: {v}\n"));
            }
        }
        for p in &self.parts {
            s.push_str(&p.text);
            s.push('\n');
        }
        s
    }
}

fn parse_files(files: &[PathBuf]) -> Vec<Mail> {
    if files.is_empty() {
        return Vec::new();
    }
    let out = Command::new(PYTHON)
        .arg("-c")
        .arg(PARSE)
        .args(files)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON}: {e}"));
    assert!(
        out.status.success(),
        "parsing the messages failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mails: Vec<Mail> = serde_json::from_slice(&out.stdout).expect("parser output");
    for m in &mails {
        assert!(
            m.defects.is_empty(),
            "{}: MIME defects {:?}",
            m.path,
            m.defects
        );
    }
    mails
}

fn email_to(port: u16, timeout: Duration) -> Email {
    Email::new(EmailConfig {
        smtp_host: "127.0.0.1".into(),
        smtp_port: port,
        from: "Example NOC <noc@ops.example>".into(),
        timeout,
    })
    .expect("valid config")
}

struct TestFacts {
    tenants: Vec<(TenantNotice, Vec<MailboxRow>)>,
}

impl Facts for TestFacts {
    fn affected_tenants(&self) -> Vec<TenantNotice> {
        self.tenants.iter().map(|(t, _)| t.clone()).collect()
    }
    fn affected_mailboxes(&self, tenant_id: &str) -> Vec<MailboxRow> {
        self.tenants
            .iter()
            .filter(|(t, _)| t.tenant_id == tenant_id)
            .flat_map(|(_, rows)| rows.clone())
            .collect()
    }
}

#[derive(Default)]
struct Mem(Mutex<HashMap<String, String>>);

impl Memory for Mem {
    fn get(&self, key: &str) -> Option<String> {
        self.0.lock().ok()?.get(key).cloned()
    }
    fn put(&self, key: &str, value: &str) -> Result<(), MemoryError> {
        self.0
            .lock()
            .map_err(|e| MemoryError(e.to_string()))?
            .insert(key.into(), value.into());
        Ok(())
    }
}

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, h, m, 0).unwrap()
}

fn update() -> Update {
    Update {
        id: "su-000003".into(),
        seq: 3,
        operation_id: "op-7f3a".into(),
        state: IncidentState::Identified,
        title: "IMAP logins fail on cluster eu-2".into(),
        body: "A storage fault broke mailbox indexes; reindexing is under way.".into(),
        components: vec![("imap".into(), "major_outage".into())],
        next_update: Some(at(13, 0)),
        published_by: "alice".into(),
        published_at: at(12, 0),
        simulated: false,
    }
}

fn mailbox(tenant: &str, address: &str, i: u32) -> MailboxRow {
    let states = [
        MailboxState::LockedOut,
        MailboxState::ReindexPending,
        MailboxState::Reindexing,
        MailboxState::Failed,
    ];
    let eta = if i % 7 == 3 {
        EtaRange::unknown("reindex failed; retry queued")
    } else {
        EtaRange::at(at(12, 10 + i % 40), at(13, 5 + i % 50))
    };
    MailboxRow {
        address: address.into(),
        tenant_id: tenant.into(),
        cluster_id: "eu-2".into(),
        volume: "eu-2-vol03".into(),
        state: Some(states[i as usize % states.len()]),
        reindex_position: u64::from(i),
        eta,
        queued_messages: Some(u64::from(i * 3)),
        last_error: "IMAP login failed".into(),
    }
}

fn tenant(
    id: &str,
    name: &str,
    contacts: &[&str],
    addresses: Vec<String>,
) -> (TenantNotice, Vec<MailboxRow>) {
    let rows: Vec<MailboxRow> = addresses
        .iter()
        .zip(0..)
        .map(|(a, i)| mailbox(id, a, i))
        .collect();
    let notice = TenantNotice {
        tenant_id: id.into(),
        name: name.into(),
        contacts: contacts.iter().map(|c| c.to_string()).collect(),
        affected: rows.len() as u64,
        resync_needed: 0,
        eta: EtaRange::at(at(12, 45), at(14, 30)),
    };
    (notice, rows)
}

/// Alpha: 3 mailboxes, 2 contacts. Delta: affected but no contact. Beta:
/// 120 mailboxes (one with a comma and quotes in it), 2 contacts, one of
/// them a reseller that is Gamma's contact too. Gamma: 1 mailbox, non-ASCII
/// name. Each tenant's mailboxes share a domain found nowhere else.
fn facts() -> TestFacts {
    let mut beta: Vec<String> = (1..120)
        .map(|i| format!("user{i:03}@beta-mail.example"))
        .collect();
    beta.insert(7, "\"smith, j\"@beta-mail.example".into());
    TestFacts {
        tenants: vec![
            tenant(
                "t00001",
                "Alpha Hosting",
                &["ops@alpha-contact.example", "cto@alpha-contact.example"],
                ["anna", "bert", "carl"]
                    .iter()
                    .map(|u| format!("{u}@alpha-mail.example"))
                    .collect(),
            ),
            tenant(
                "t00004",
                "Delta Ltd",
                &[],
                vec!["dora@delta-mail.example".into()],
            ),
            tenant(
                "t00002",
                "Beta Provider AG",
                &["noc@beta-contact.example", "reseller@partner.example"],
                beta,
            ),
            tenant(
                "t00003",
                "Gamma Café",
                &["reseller@partner.example"],
                vec!["solo@gamma-mail.example".into()],
            ),
        ],
    }
}

const DOMAINS: [(&str, &str); 4] = [
    ("t00001", "@alpha-mail.example"),
    ("t00002", "@beta-mail.example"),
    ("t00003", "@gamma-mail.example"),
    ("t00004", "@delta-mail.example"),
];

fn delivery(id: u64, target: &str) -> Delivery {
    Delivery {
        id,
        update_id: "su-000003".into(),
        channel: "email".into(),
        target: target.into(),
        attempts: 0,
        last_detail: String::new(),
        maybe_applied: false,
    }
}

/// One attempt of `update` to `target` with the usual facts and a fresh
/// channel memory.
async fn deliver_once(email: &Email, update: &Update, target: &str) -> Outcome {
    let facts = facts();
    let memory = Mem::default();
    let ctx = Context {
        facts: &facts,
        memory: &memory,
    };
    email.deliver(update, &delivery(1, target), &ctx).await
}

fn utc_csv(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn sent_detail(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Sent(detail) => detail,
        other => panic!("not sent: {other:?}"),
    }
}

/// Checks that `m` carries `tenant`'s data and nobody else's.
fn assert_own_slice_only(m: &Mail, facts: &TestFacts) {
    let (notice, rows) = facts
        .tenants
        .iter()
        .find(|(t, _)| t.tenant_id == m.tenant())
        .unwrap_or_else(|| panic!("{}: unknown tenant {}", m.path, m.tenant()));
    let all = m.everything();
    for (id, domain) in DOMAINS {
        if id != notice.tenant_id {
            assert!(
                !all.contains(domain),
                "{}: message for {} holds {id}'s mailboxes ({domain})",
                m.path,
                notice.tenant_id
            );
        }
    }
    let subject = m.header("Subject");
    assert!(subject.contains(&notice.name), "{subject}");
    let body = &m.body().text;
    assert!(
        body.contains(&format!("Your affected mailboxes: {}", rows.len())),
        "{body}"
    );
    assert!(
        body.contains("2024-05-01 12:45 UTC") && body.contains("2024-05-01 14:30 UTC"),
        "tenant ETA missing: {body}"
    );
}

// ------------------------------------------------------------------- tests

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs aiosmtpd: ./scripts/test runs it"
)]
#[tokio::test]
async fn each_contact_gets_one_message_with_only_its_own_tenants_mailboxes() {
    let smtpd = Smtpd::start();
    let email = smtpd.email();
    let facts = facts();
    let memory = Mem::default();
    let ctx = Context {
        facts: &facts,
        memory: &memory,
    };
    let update = update();

    let targets = email.targets(&update, &facts);
    assert_eq!(
        targets,
        [
            "t00001 ops@alpha-contact.example",
            "t00001 cto@alpha-contact.example",
            "t00002 noc@beta-contact.example",
            "t00002 reseller@partner.example",
            "t00003 reseller@partner.example",
        ],
        "one target per (tenant, contact); Delta has no contact"
    );
    let mut sent = BTreeMap::new();
    for (i, target) in targets.iter().enumerate() {
        let outcome = email
            .deliver(&update, &delivery(i as u64 + 1, target), &ctx)
            .await;
        sent.insert(target.clone(), sent_detail(&outcome).to_string());
    }

    let mails = smtpd.messages();
    assert_eq!(
        mails.len(),
        targets.len(),
        "exactly one message per delivery"
    );
    let got: BTreeSet<String> = mails
        .iter()
        .map(|m| format!("{} {}", m.tenant(), m.header("X-RcptTo")))
        .collect();
    let want: BTreeSet<String> = targets.iter().cloned().collect();
    assert_eq!(got, want, "recipients (envelope) per tenant");

    let ids: BTreeSet<&str> = mails.iter().map(|m| m.header("Message-ID")).collect();
    assert_eq!(ids.len(), mails.len(), "a Message-ID per delivery");

    for m in &mails {
        let target = format!("{} {}", m.tenant(), m.header("X-RcptTo"));
        assert_eq!(m.header("To"), m.header("X-RcptTo"));
        assert_eq!(m.header("From"), "Example NOC <noc@ops.example>");
        assert_eq!(m.header("Auto-Submitted"), "auto-generated");
        assert!(
            sent[&target].contains(m.header("Message-ID")),
            "Sent({}) names the Message-ID {}",
            sent[&target],
            m.header("Message-ID")
        );
        let subject = m.header("Subject");
        assert!(
            subject.starts_with("[warroom] IDENTIFIED: IMAP logins fail on cluster eu-2 — "),
            "{subject}"
        );
        assert!(!subject.contains("SIMULATED"), "{subject}");
        let body = &m.body().text;
        assert!(body.contains(&update.body), "the update itself: {body}");
        assert!(
            body.contains("Next update by 2024-05-01 13:00 UTC"),
            "{body}"
        );
        assert_own_slice_only(m, &facts);
    }

    // Short lists inline, with the state and both ETAs in UTC.
    for m in mails.iter().filter(|m| m.tenant() != "t00002") {
        assert!(m.attachments().is_empty(), "{}: {:?}", m.path, m.parts);
        let body = &m.body().text;
        let rows = facts.affected_mailboxes(m.tenant());
        for r in &rows {
            let line = body
                .lines()
                .find(|l| l.starts_with(&r.address))
                .unwrap_or_else(|| panic!("{} not listed: {body}", r.address));
            assert!(line.contains(r.state.unwrap().as_str()), "{line}");
            for t in [r.eta.p50, r.eta.p90].into_iter().flatten() {
                assert!(
                    line.contains(&t.format("%Y-%m-%d %H:%M UTC").to_string()),
                    "{line}"
                );
            }
        }
    }
    let gamma = mails.iter().find(|m| m.tenant() == "t00003").unwrap();
    assert!(
        gamma.header("Subject").ends_with("— Gamma Café"),
        "RFC 2047 subject decoded"
    );

    // The long list arrives as a CSV attachment holding exactly its rows.
    let beta_rows = facts.affected_mailboxes("t00002");
    let mut want_csv = vec![vec![
        "address".to_string(),
        "state".into(),
        "eta_p50".into(),
        "eta_p90".into(),
        "queued_messages".into(),
    ]];
    want_csv.extend(beta_rows.iter().map(|r| {
        vec![
            r.address.clone(),
            r.state.unwrap().as_str().into(),
            utc_csv(r.eta.p50),
            utc_csv(r.eta.p90),
            r.queued_messages.map(|n| n.to_string()).unwrap_or_default(),
        ]
    }));
    for m in mails.iter().filter(|m| m.tenant() == "t00002") {
        let att = m.attachments();
        assert_eq!(att.len(), 1, "{}: {:?}", m.path, m.parts);
        let csv = att[0];
        assert_eq!(csv.content_type, "text/csv");
        assert_eq!(csv.charset.as_deref(), Some("utf-8"));
        assert!(
            csv.filename.as_deref().unwrap_or("").ends_with(".csv"),
            "{:?}",
            csv.filename
        );
        assert_eq!(csv.csv.as_ref().unwrap(), &want_csv);
        let body = &m.body().text;
        assert!(
            body.contains("120 affected mailboxes is attached"),
            "{body}"
        );
        assert!(
            !body.contains("user001@beta-mail.example"),
            "not inline as well"
        );
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs aiosmtpd: ./scripts/test runs it"
)]
#[tokio::test]
async fn a_retry_is_recognisably_the_same_message() {
    let smtpd = Smtpd::start();
    let email = smtpd.email();
    let facts = facts();
    let memory = Mem::default();
    let ctx = Context {
        facts: &facts,
        memory: &memory,
    };
    let update = update();

    let first = delivery(42, "t00001 ops@alpha-contact.example");
    let again = Delivery {
        attempts: 1,
        last_detail: "SMTP timed out after 10s".into(),
        ..first.clone()
    };
    let other = delivery(43, "t00001 cto@alpha-contact.example");
    let a = email.deliver(&update, &first, &ctx).await;
    let b = email.deliver(&update, &again, &ctx).await;
    let c = email.deliver(&update, &other, &ctx).await;
    assert_eq!(sent_detail(&a), sent_detail(&b));
    assert_ne!(sent_detail(&a), sent_detail(&c));

    let mails = smtpd.messages();
    assert_eq!(mails.len(), 3);
    let id_of = |rcpt: &str| -> Vec<&str> {
        mails
            .iter()
            .filter(|m| m.header("X-RcptTo") == rcpt)
            .map(|m| m.header("Message-ID"))
            .collect()
    };
    let ops = id_of("ops@alpha-contact.example");
    let cto = id_of("cto@alpha-contact.example");
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0], ops[1], "a resend has the same Message-ID");
    assert_ne!(ops[0], cto[0]);
    assert!(ops[0].starts_with("<su-000003.t00001."), "{}", ops[0]);
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs aiosmtpd: ./scripts/test runs it"
)]
#[tokio::test]
async fn a_tenant_no_longer_affected_still_gets_the_update_and_nothing_else() {
    let smtpd = Smtpd::start();
    let email = smtpd.email();
    let all = facts();
    // Gamma recovered between publishing and this attempt.
    let now = TestFacts {
        tenants: all
            .tenants
            .into_iter()
            .filter(|(t, _)| t.tenant_id != "t00003")
            .collect(),
    };
    let memory = Mem::default();
    let ctx = Context {
        facts: &now,
        memory: &memory,
    };
    let outcome = email
        .deliver(
            &update(),
            &delivery(5, "t00003 reseller@partner.example"),
            &ctx,
        )
        .await;
    sent_detail(&outcome);

    let mails = smtpd.messages();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.header("X-RcptTo"), "reseller@partner.example");
    assert_eq!(m.tenant(), "t00003");
    assert!(
        m.header("Subject").ends_with("— t00003"),
        "{}",
        m.header("Subject")
    );
    let body = &m.body().text;
    assert!(
        body.contains("None of your mailboxes is affected now"),
        "{body}"
    );
    assert!(body.contains(&update().body), "{body}");
    assert!(m.attachments().is_empty());
    let everything = m.everything();
    for (_, domain) in DOMAINS {
        assert!(!everything.contains(domain), "{domain} in {everything}");
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs aiosmtpd: ./scripts/test runs it"
)]
#[tokio::test]
async fn simulated_and_hostile_text_stay_out_of_the_headers() {
    let smtpd = Smtpd::start();
    let email = smtpd.email();
    let mut facts = facts();
    facts.tenants[0].0.name = "Alpha\r\nBcc: evil@attacker.example\r\nX-Injected: yes".into();
    let mut update = update();
    update.simulated = true;
    update.title = "Drill\r\nX-Injected: title\nCc: evil@attacker.example".into();
    let memory = Mem::default();
    let ctx = Context {
        facts: &facts,
        memory: &memory,
    };
    let outcome = email
        .deliver(
            &update,
            &delivery(1, "t00001 ops@alpha-contact.example"),
            &ctx,
        )
        .await;
    sent_detail(&outcome);

    let mails = smtpd.messages();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(
        m.header("X-RcptTo"),
        "ops@alpha-contact.example",
        "no extra recipient"
    );
    for h in ["Bcc", "Cc", "X-Injected"] {
        assert!(!m.has_header(h), "{h} injected: {:?}", m.headers);
    }
    let subject = m.header("Subject");
    assert!(
        subject.starts_with("[warroom] SIMULATED IDENTIFIED: Drill "),
        "{subject}"
    );
    assert!(!subject.contains(['\r', '\n']), "{subject:?}");
    assert!(m.body().text.contains("SIMULATED"), "{}", m.body().text);
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs aiosmtpd: ./scripts/test runs it"
)]
#[tokio::test]
async fn a_permanent_rejection_fails_with_the_servers_text() {
    let smtpd = Smtpd::start();
    let email = smtpd.email();
    let mut facts = facts();
    facts.tenants[0].0.contacts = vec!["reject-me@alpha-contact.example".into()];
    let memory = Mem::default();
    let ctx = Context {
        facts: &facts,
        memory: &memory,
    };
    let target = email.targets(&update(), &facts).remove(0);
    assert_eq!(target, "t00001 reject-me@alpha-contact.example");
    match email.deliver(&update(), &delivery(1, &target), &ctx).await {
        Outcome::Failed(text) => {
            assert!(text.contains("550"), "{text}");
            assert!(
                text.contains("Recipient address rejected: User unknown"),
                "{text}"
            );
        }
        other => panic!("a 550 must be final: {other:?}"),
    }
    assert!(smtpd.messages().is_empty());
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs aiosmtpd: ./scripts/test runs it"
)]
#[tokio::test]
async fn a_transient_rejection_is_retried() {
    let smtpd = Smtpd::start();
    let email = smtpd.email();
    let target = "t00001 later-please@alpha-contact.example";
    match deliver_once(&email, &update(), target).await {
        Outcome::Retry { reason, .. } => {
            assert!(reason.contains("451"), "{reason}");
            assert!(reason.contains("try again later"), "{reason}");
        }
        other => panic!("a 451 must be retried: {other:?}"),
    }
    assert!(smtpd.messages().is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    let email = email_to(free_port(), Duration::from_secs(5));
    let outcome = deliver_once(&email, &update(), "t00001 ops@alpha-contact.example").await;
    assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_retried_after_the_timeout() {
    // Connections complete (the kernel's backlog) but nothing is ever said.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = silent.local_addr().unwrap().port();
    let email = email_to(port, Duration::from_millis(300));
    match deliver_once(&email, &update(), "t00001 ops@alpha-contact.example").await {
        Outcome::Retry { reason, .. } => assert!(reason.contains("timed out"), "{reason}"),
        other => panic!("{other:?}"),
    }
    drop(silent);
}

#[tokio::test]
async fn unusable_targets_fail_without_sending() {
    let email = email_to(free_port(), Duration::from_secs(5));
    for target in [
        "",
        "t00001",
        "t00001 not-an-address",
        "t00001 ops@alpha-contact.example\r\nRCPT TO:<evil@attacker.example>",
    ] {
        let outcome = deliver_once(&email, &update(), target).await;
        assert!(
            matches!(outcome, Outcome::Failed(_)),
            "{target:?}: {outcome:?}"
        );
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs aiosmtpd: ./scripts/test runs it"
)]
#[test]
fn preview_counts_the_messages_and_shows_each_sample_with_its_own_tenant_only() {
    require_aiosmtpd(); // the same Python parses the samples
    let email = email_to(25, Duration::from_secs(5));
    let facts = facts();
    let previews = email.preview(&update(), &facts);
    assert_eq!(
        previews.len(),
        4,
        "a summary and three samples: {previews:#?}"
    );
    assert!(previews.iter().all(|p| p.channel == "email"));
    let summary = &previews[0];
    assert_eq!(summary.content_type, "text/plain");
    assert!(
        summary.content.contains("5 messages to 3 tenants"),
        "{}",
        summary.content
    );
    assert!(
        summary
            .content
            .contains("1 affected tenant without a usable emergency contact"),
        "{}",
        summary.content
    );

    let dir = scratch_dir("preview");
    let files: Vec<PathBuf> = previews[1..]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            assert_eq!(p.content_type, "message/rfc822");
            let path = dir.join(format!("{i}.eml"));
            std::fs::write(&path, &p.content).unwrap();
            path
        })
        .collect();
    let mails = parse_files(&files);
    let _ = std::fs::remove_dir_all(&dir);
    let tenants: Vec<&str> = mails.iter().map(Mail::tenant).collect();
    assert_eq!(tenants, ["t00001", "t00002", "t00003"]);
    for m in &mails {
        assert_own_slice_only(m, &facts);
    }
    assert_eq!(
        mails[1].attachments()[0].csv.as_ref().map(Vec::len),
        Some(121),
        "the header and Beta's 120 rows"
    );
}
