//! The inbound mail queue of a Postfix instance, read with `postqueue -j`.
//!
//! `postqueue -j` (Postfix 3.1 and later) prints one JSON object per queued
//! message:
//!
//! ```text
//! {"queue_name": "deferred", "queue_id": "4C55C9D4159", "arrival_time": 1795985896,
//!  "message_size": 285, "forced_expire": false, "sender": "ops@warroom.test",
//!  "recipients": [{"address": "alice@acme.test", "delay_reason": "deferred transport"}]}
//! ```
//!
//! Fields this module does not know are ignored; `delay_reason` is absent
//! for recipients that have not been tried yet. A line that cannot be read is
//! reported and skipped, never fatal: one odd message must not hide the rest
//! of the queue during an incident.
//!
//! [`Postqueue`] runs the command (on a blocking thread, killed when it takes
//! longer than its timeout) and parses what it prints. Run it as root or as a
//! member of the `postdrop` group (postqueue is set-gid `postdrop`); a
//! non-default `-c CONFIG_DIR` must be listed in `alternate_config_directories`
//! of the default `main.cf` unless the caller is root.
//!
//! As root, `postqueue` reads the queue directory itself and exits 0 while
//! Postfix is stopped, so a queue listing is no sign of life:
//! [`PostfixStatus`] checks liveness with `postfix status`. [`QueueFlow`]
//! turns successive listings into arrivals and departures (per recipient
//! domain); [`per_domain`] and [`per_address`] count what is queued.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    /// Why delivery to this recipient was deferred; `None` when it has not
    /// been tried yet.
    pub delay_reason: Option<String>,
}

/// One message in a Postfix queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// `active`, `deferred`, `hold`, `incoming` or `maildrop`.
    pub queue_name: String,
    pub queue_id: String,
    /// When the message entered the queue; `None` when Postfix did not say
    /// (or said something that is not a Unix time).
    pub arrival_time: Option<DateTime<Utc>>,
    /// Bytes; 0 when Postfix did not say.
    pub message_size: u64,
    /// Envelope sender; empty for bounces (the null sender `<>`).
    pub sender: String,
    pub recipients: Vec<Recipient>,
}

#[derive(Deserialize)]
struct RawMessage {
    queue_name: String,
    queue_id: String,
    #[serde(default)]
    arrival_time: Option<serde_json::Value>,
    #[serde(default)]
    message_size: Option<u64>,
    #[serde(default)]
    sender: Option<String>,
    #[serde(default)]
    recipients: Vec<RawRecipient>,
}

#[derive(Deserialize)]
struct RawRecipient {
    address: String,
    #[serde(default)]
    delay_reason: Option<String>,
}

/// How much of a bad line a problem report quotes.
const QUOTE_CHARS: usize = 120;

/// Parses the output of `postqueue -j`: one JSON object per line. Unknown
/// fields are ignored and a missing `delay_reason` is fine. Blank lines are
/// skipped; every other line that cannot be read is reported in the second
/// list (`line N: why: the line`) and skipped.
pub fn parse_postqueue(text: &str) -> (Vec<QueuedMessage>, Vec<String>) {
    let mut messages = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<RawMessage>(line) {
            Ok(raw) => messages.push(QueuedMessage {
                queue_name: raw.queue_name,
                queue_id: raw.queue_id,
                arrival_time: raw.arrival_time.as_ref().and_then(unix_time),
                message_size: raw.message_size.unwrap_or(0),
                sender: raw.sender.unwrap_or_default(),
                recipients: raw
                    .recipients
                    .into_iter()
                    .map(|r| Recipient {
                        address: r.address,
                        delay_reason: r.delay_reason,
                    })
                    .collect(),
            }),
            Err(e) => problems.push(format!("line {}: {e}: {}", index + 1, quote(line))),
        }
    }
    (messages, problems)
}

/// A Unix time in seconds (integer or fractional) as a UTC time.
fn unix_time(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    if let Some(secs) = value.as_i64() {
        return DateTime::from_timestamp(secs, 0);
    }
    let secs = value.as_f64()?;
    if !secs.is_finite() {
        return None;
    }
    // `as` saturates; out-of-range values give None below.
    DateTime::from_timestamp_millis((secs * 1000.0).round() as i64)
}

fn quote(line: &str) -> String {
    crate::domain::format::clip(line, QUOTE_CHARS + 1)
}

/// Messages per Postfix queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub active: u64,
    pub deferred: u64,
    pub hold: u64,
    pub incoming: u64,
    pub maildrop: u64,
}

impl QueueCounts {
    /// Messages in all five queues.
    pub fn total(&self) -> u64 {
        self.active + self.deferred + self.hold + self.incoming + self.maildrop
    }

    /// Adds `n` messages to the queue named `queue`; a queue Postfix does
    /// not document (none today) is not counted.
    pub fn add(&mut self, queue: &str, n: u64) {
        match queue {
            "active" => self.active += n,
            "deferred" => self.deferred += n,
            "hold" => self.hold += n,
            "incoming" => self.incoming += n,
            "maildrop" => self.maildrop += n,
            _ => {}
        }
    }
}

/// Counts messages per queue.
pub fn counts(msgs: &[QueuedMessage]) -> QueueCounts {
    let mut c = QueueCounts::default();
    for m in msgs {
        c.add(&m.queue_name, 1);
    }
    c
}

/// The domain of an address, lower-cased and without a trailing dot; `None`
/// when there is no `@` or nothing after it. The last `@` counts, so a quoted
/// local part holding `@` is handled.
pub fn recipient_domain(address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (_, domain) = address.rsplit_once('@')?;
    let domain = domain.trim_end_matches('.');
    if domain.is_empty() {
        None
    } else {
        Some(domain.to_lowercase())
    }
}

/// Messages queued per recipient domain (lower-cased); a message to two
/// domains counts once for each, a message to two addresses of one domain
/// once. Recipients without a domain are not counted.
pub fn per_domain(msgs: &[QueuedMessage]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for m in msgs {
        let domains: BTreeSet<String> = m
            .recipients
            .iter()
            .filter_map(|r| recipient_domain(&r.address))
            .collect();
        for d in domains {
            *out.entry(d).or_insert(0) += 1;
        }
    }
    out
}

/// An address as a mailbox key: trimmed, without `<>`, lower-cased, without
/// a trailing dot; `None` when nothing is left.
fn mailbox_key(address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let address = address.trim_end_matches('.');
    if address.is_empty() {
        None
    } else {
        Some(address.to_lowercase())
    }
}

/// Messages queued per recipient address (lower-cased, so per mailbox): a
/// message to two addresses counts once for each, a message listing one
/// address twice (in any case) once. Postfix lists only the recipients not
/// yet delivered, so a message half delivered counts only for the rest.
pub fn per_address(msgs: &[QueuedMessage]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for m in msgs {
        let addresses: BTreeSet<String> = m
            .recipients
            .iter()
            .filter_map(|r| mailbox_key(&r.address))
            .collect();
        for a in addresses {
            *out.entry(a).or_insert(0) += 1;
        }
    }
    out
}

/// What [`QueueFlow::observe`] saw change since the previous observation.
#[derive(Debug, Clone, PartialEq)]
pub enum Flow {
    /// The first observation: there is nothing to compare with yet. Not the
    /// same as "nothing arrived and nothing left".
    NotMeasuredYet,
    Measured(FlowStep),
}

/// Messages that entered and left the queue between two observations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowStep {
    /// Messages queued now under a queue id that was not queued before (or
    /// was, for a message with another arrival time).
    pub arrived: u64,
    /// `arrived` per recipient domain (a message to two domains counts for
    /// each, as in [`per_domain`]).
    pub arrived_per_domain: BTreeMap<String, u64>,
    /// Messages gone from the queue: absent from this observation and the
    /// one before (see [`QueueFlow`] for why two), or replaced under their
    /// queue id by another message. Delivered, bounced, expired or deleted:
    /// the queue does not say which.
    pub left: u64,
    /// `left` per recipient domain, from the recipients still queued when
    /// the message was last seen.
    pub left_per_domain: BTreeMap<String, u64>,
    /// Messages absent from this observation only: counted in `left` at the
    /// next observation if still absent, forgotten if they show again.
    pub missing: u64,
    /// Seconds since the previous observation; 0 when the clock went back.
    pub seconds: f64,
}

/// What the tracker remembers of one queued message.
#[derive(Debug, Clone)]
struct Tracked {
    arrival_time: Option<DateTime<Utc>>,
    domains: BTreeSet<String>,
}

impl Tracked {
    fn of(m: &QueuedMessage) -> Self {
        Tracked {
            arrival_time: m.arrival_time,
            domains: m
                .recipients
                .iter()
                .filter_map(|r| recipient_domain(&r.address))
                .collect(),
        }
    }

    /// Whether `other`, seen under the same queue id, is the same message: a
    /// message keeps its arrival time; an unknown one is given the benefit
    /// of the doubt.
    fn same_message(&self, other: &Tracked) -> bool {
        match (self.arrival_time, other.arrival_time) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

fn add_domains(to: &mut BTreeMap<String, u64>, domains: &BTreeSet<String>) {
    for d in domains {
        *to.entry(d.clone()).or_insert(0) += 1;
    }
}

/// Arrivals and departures of the queue, from successive `postqueue -j`
/// snapshots fed to [`QueueFlow::observe`]. A message is known by its queue
/// id and arrival time; moving between the incoming, active, deferred and
/// hold queues keeps both, so it is no flow.
///
/// What it cannot see:
/// - A message that arrives and leaves between two observations is counted
///   neither way; the rates are those of messages that stayed at least one
///   poll.
/// - The `maildrop` queue is left out: it holds local submissions (and all
///   of them while Postfix is down) under file names that pickup replaces by
///   new queue ids, so counting it would count every such message as having
///   left maildrop and arrived again. A message arrives when it is in the
///   queue proper.
/// - `postqueue` scans maildrop, incoming, active, deferred, hold in turn, so
///   a message moving to an earlier queue during the scan (deferred → active
///   at a queue run, hold → deferred on release) is missing from that one
///   snapshot, and one moving to a later queue may be listed twice (counted
///   once here). So a message is counted as left only when it is absent from
///   two observations in a row: departures are reported one poll late.
/// - Queue ids repeat. With `enable_long_queue_ids = no` (the default) an id
///   is 5 hex digits of the microsecond of creation plus the queue file's
///   inode number; inodes are reused as soon as files are deleted, so a
///   later message can get the id of one that left when the microseconds
///   match too (about 1 in 10^6 per reused inode). That is harmless unless it
///   happens between two observations; then the arrival time tells the two
///   apart when Postfix reports it. Long ids (seconds, microseconds, inode)
///   do not repeat. Changing the setting renames queued files (new ids: each
///   counts as left and arrived), as does `postsuper -r` (requeue).
/// - "Left" is not "delivered": bounced, expired and deleted messages leave
///   too, and a bounce notice arrives as a new message (null sender). A
///   message delivered to some recipients stays queued for the others and
///   does not count as left.
///
/// Memory: the ids (with their recipient domains) of the last snapshot and
/// of those missing from it only, so bounded by the queue size.
#[derive(Debug, Clone, Default)]
pub struct QueueFlow {
    last_at: Option<DateTime<Utc>>,
    /// In the last observation.
    queued: HashMap<String, Tracked>,
    /// In the one before, not in the last.
    missing: HashMap<String, Tracked>,
}

impl QueueFlow {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many messages it remembers (at most the last two queue sizes).
    pub fn tracked(&self) -> usize {
        self.queued.len() + self.missing.len()
    }

    /// Compares `msgs`, the queue as polled at `at`, with the previous
    /// observation. The first observation gives [`Flow::NotMeasuredYet`].
    pub fn observe(&mut self, at: DateTime<Utc>, msgs: &[QueuedMessage]) -> Flow {
        let mut now: HashMap<String, Tracked> = HashMap::with_capacity(msgs.len());
        for m in msgs.iter().filter(|m| m.queue_name != "maildrop") {
            now.entry(m.queue_id.clone())
                .or_insert_with(|| Tracked::of(m));
        }
        let Some(last_at) = self.last_at.replace(at) else {
            self.queued = now;
            self.missing.clear();
            return Flow::NotMeasuredYet;
        };

        let mut step = FlowStep {
            seconds: ((at - last_at).num_milliseconds().max(0) as f64) / 1000.0,
            ..FlowStep::default()
        };
        let mut queued = std::mem::take(&mut self.queued);
        let mut missing = std::mem::take(&mut self.missing);
        for (id, seen) in &now {
            let before = queued.remove(id).or_else(|| missing.remove(id));
            match before {
                Some(old) if old.same_message(seen) => {}
                Some(old) => {
                    step.left += 1;
                    add_domains(&mut step.left_per_domain, &old.domains);
                    step.arrived += 1;
                    add_domains(&mut step.arrived_per_domain, &seen.domains);
                }
                None => {
                    step.arrived += 1;
                    add_domains(&mut step.arrived_per_domain, &seen.domains);
                }
            }
        }
        // Missing twice in a row: gone.
        for old in missing.values() {
            step.left += 1;
            add_domains(&mut step.left_per_domain, &old.domains);
        }
        // Missing once (what is left of the previous snapshot).
        step.missing = queued.len() as u64;
        self.missing = queued;
        self.queued = now;
        Flow::Measured(step)
    }
}

/// Keeps one listing per queue id, the last. `postqueue` scans the maildrop,
/// incoming, active, deferred and hold queues in turn, so a message moving
/// to a later queue during the scan (active → deferred after a failed
/// attempt) is listed twice, and the later listing is where it is now. Seen
/// here: 11 queued messages polled as 1 active + 11 deferred.
fn one_listing_per_message(msgs: Vec<QueuedMessage>) -> Vec<QueuedMessage> {
    let mut at: std::collections::HashMap<String, usize> =
        std::collections::HashMap::with_capacity(msgs.len());
    let mut out: Vec<QueuedMessage> = Vec::with_capacity(msgs.len());
    for m in msgs {
        match at.get(&m.queue_id) {
            Some(&i) => out[i] = m,
            None => {
                at.insert(m.queue_id.clone(), out.len());
                out.push(m);
            }
        }
    }
    out
}

/// Runs `postqueue -j` (or any command printing the same) and parses it.
#[derive(Debug, Clone)]
pub struct Postqueue {
    command: Vec<String>,
    timeout: Duration,
}

impl Postqueue {
    /// `command` is the program and its arguments, e.g.
    /// `["postqueue", "-c", "/etc/postfix", "-j"]`; `timeout` bounds one poll.
    pub fn new(command: Vec<String>, timeout: Duration) -> Result<Self, String> {
        match command.first() {
            None => return Err("the postqueue command is empty".into()),
            Some(p) if p.trim().is_empty() => {
                return Err("the postqueue command has an empty program name".into());
            }
            Some(_) => {}
        }
        if timeout.is_zero() {
            return Err("the postqueue timeout must be more than zero".into());
        }
        Ok(Self { command, timeout })
    }

    /// The command as given to [`Postqueue::new`].
    pub fn command(&self) -> &[String] {
        &self.command
    }

    /// Runs the command once and parses its output, one entry per queue id
    /// (a message that moved during the scan can be listed twice; the later
    /// listing is kept). Lines that cannot be read are logged (tracing
    /// `warn`) and skipped. Errors say what failed: the
    /// program could not start, ran out of time (it is then killed), or exited
    /// with a failure (the exit code and the first line of its stderr). Errors say what failed: the
    /// program could not start, ran out of time (it is then killed), or exited
    /// with a failure (the exit code and the first line of its stderr).
    pub async fn poll(&self) -> Result<Vec<QueuedMessage>, String> {
        let command = self.command.clone();
        let timeout = self.timeout;
        let stdout = tokio::task::spawn_blocking(move || run(&command, timeout))
            .await
            .map_err(|e| format!("the postqueue task failed: {e}"))??;
        let (messages, problems) = parse_postqueue(&stdout);
        let messages = one_listing_per_message(messages);
        if let Some(first) = problems.first() {
            tracing::warn!(
                command = %self.command.join(" "),
                bad_lines = problems.len(),
                first = %first,
                "postqueue output had lines that could not be read"
            );
        }
        Ok(messages)
    }
}

/// Runs `command` with stdin closed and returns its stdout; kills it after
/// `timeout`. A failed exit is an error naming the exit code and the first
/// line of stderr.
fn run(command: &[String], timeout: Duration) -> Result<String, String> {
    let shown = command.join(" ");
    let ran = run_capture(command, timeout)?;
    let stderr = String::from_utf8_lossy(&ran.stderr);
    if !ran.status.success() {
        let first = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("(nothing on stderr)");
        return Err(format!("`{shown}` {}: {first}", describe(ran.status)));
    }
    if !stderr.trim().is_empty() {
        tracing::debug!(command = %shown, stderr = %stderr.trim(), "postqueue wrote to stderr");
    }
    Ok(String::from_utf8_lossy(&ran.stdout).into_owned())
}

/// How a command ended and what it printed.
struct Ran {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `command` with stdin closed, collecting stdout and stderr; kills it
/// after `timeout`. Errors only when it could not be run to the end: it did
/// not start, ran out of time, or left its output open.
fn run_capture(command: &[String], timeout: Duration) -> Result<Ran, String> {
    let shown = command.join(" ");
    let (program, args) = command
        .split_first()
        .ok_or_else(|| "the command is empty".to_string())?;
    let deadline = Instant::now() + timeout;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;

    // Both pipes are drained on their own threads so a chatty stderr cannot
    // block the child while we wait for it.
    let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
    let drain = |mut pipe: Box<dyn Read + Send>, is_stdout: bool| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send((is_stdout, buf));
        });
    };
    let mut readers = 0;
    if let Some(out) = child.stdout.take() {
        drain(Box::new(out), true);
        readers += 1;
    }
    if let Some(err) = child.stderr.take() {
        drain(Box::new(err), false);
        readers += 1;
    }
    drop(tx);

    let status = wait_until(&mut child, deadline).map_err(|e| match e {
        WaitError::TimedOut => format!("`{shown}` did not finish within {timeout:?}; killed it"),
        WaitError::Io(e) => format!("waiting for `{shown}` failed: {e}"),
    })?;

    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    for _ in 0..readers {
        // The child has exited; its pipes close unless it left a process
        // behind that holds them.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(200));
        match rx.recv_timeout(left) {
            Ok((true, buf)) => stdout = buf,
            Ok((false, buf)) => stderr = buf,
            Err(_) => {
                return Err(format!(
                    "`{shown}` exited but its output did not close within {timeout:?}"
                ));
            }
        }
    }
    Ok(Ran {
        status,
        stdout,
        stderr,
    })
}

enum WaitError {
    TimedOut,
    Io(std::io::Error),
}

fn wait_until(child: &mut std::process::Child, deadline: Instant) -> Result<ExitStatus, WaitError> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait().map_err(WaitError::Io)? {
            return Ok(status);
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(WaitError::TimedOut);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("failed ({status})"),
    }
}

/// Whether Postfix is running, as told by [`PostfixStatus::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// The master daemon runs. `master_pid` when the command printed it
    /// (`postfix status` prints it only to a terminal, so usually `None`).
    Running { master_pid: Option<u32> },
    /// Postfix is not running; `said` is what the command printed, or how it
    /// exited when it printed nothing.
    Stopped { said: String },
    /// The check could not tell: the command did not start, ran out of time
    /// (it is then killed), was killed, exited with an unexpected code, or
    /// said it could not check (`fatal:`, `error:`, `panic:`). `why` says which.
    Error { why: String },
}

impl Liveness {
    pub fn is_running(&self) -> bool {
        matches!(self, Liveness::Running { .. })
    }
}

impl std::fmt::Display for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Liveness::Running {
                master_pid: Some(pid),
            } => write!(f, "running (master pid {pid})"),
            Liveness::Running { master_pid: None } => write!(f, "running"),
            Liveness::Stopped { said } => write!(f, "stopped: {said}"),
            Liveness::Error { why } => write!(f, "cannot tell whether Postfix runs: {why}"),
        }
    }
}

/// Checks that Postfix is running by running `postfix status` (or another
/// command that answers the same way), independently of `postqueue`: as root,
/// `postqueue -j` reads the queue directory itself and exits 0 while Postfix
/// is down, so a queue listing says nothing about liveness.
///
/// Why `postfix status` and not another signal: it asks the master daemon's
/// own lock on `pid/master.pid` (`master -t`), which the kernel releases the
/// moment the master exits, even on `kill -9`. So the first check after
/// Postfix stops says so, and a process that crashed is not mistaken for one
/// that runs. The pid file alone is left behind after a crash or `kill -9`
/// (the pid then names a zombie, or later any other process), and it is
/// readable by root only. An SMTP connect tests one listener, not the mail
/// system: it needs the address of a listener, is answered by whatever holds
/// the port, and a busy smtpd may accept and not greet; it belongs to a
/// separate "smtp-in" probe.
///
/// What Postfix 3.7 does (seen here): running → exit 0; stopped → exit 1.
/// It explains itself (`postfix/postfix-script: the Postfix mail system is
/// running: PID: 1234` or `... is not running`) only on a terminal and in the
/// mail log, never on a pipe: as a daemon runs it, both answers are silent
/// and every check adds one line to the mail log. A silent exit 1 also
/// means "this process is not root" (`postfix` is reserved for the
/// superuser) or "no such configuration directory"; [`PostfixStatus::check`]
/// tells those apart from "stopped" when the command is `postfix` itself and
/// reports them as [`Liveness::Error`]. Run as another user, configure a
/// command that gains root (e.g. through sudo).
#[derive(Debug, Clone)]
pub struct PostfixStatus {
    command: Vec<String>,
    timeout: Duration,
}

impl PostfixStatus {
    /// `command` is the program and its arguments, e.g.
    /// `["postfix", "-c", "/etc/postfix", "status"]`; `timeout` bounds one
    /// check (the command is killed when it runs longer).
    pub fn new(command: Vec<String>, timeout: Duration) -> Result<Self, String> {
        match command.first() {
            None => return Err("the postfix status command is empty".into()),
            Some(p) if p.trim().is_empty() => {
                return Err("the postfix status command has an empty program name".into());
            }
            Some(_) => {}
        }
        if timeout.is_zero() {
            return Err("the postfix status timeout must be more than zero".into());
        }
        Ok(Self { command, timeout })
    }

    /// The default check for the instance a postqueue command reads: see
    /// [`status_command_for`].
    pub fn for_postqueue(postqueue: &Postqueue, timeout: Duration) -> Result<Self, String> {
        Self::new(status_command_for(postqueue.command()), timeout)
    }

    /// The command as given.
    pub fn command(&self) -> &[String] {
        &self.command
    }

    /// Runs the command once and reads its answer (see [`read_status`]).
    pub async fn check(&self) -> Liveness {
        let command = self.command.clone();
        let timeout = self.timeout;
        let ran = tokio::task::spawn_blocking(move || run_capture(&command, timeout)).await;
        let ran = match ran {
            Ok(Ok(ran)) => ran,
            Ok(Err(why)) => return Liveness::Error { why },
            Err(e) => {
                return Liveness::Error {
                    why: format!("the postfix status task failed: {e}"),
                };
            }
        };
        let shown = self.command.join(" ");
        let mut said = String::from_utf8_lossy(&ran.stdout).into_owned();
        said.push_str(&String::from_utf8_lossy(&ran.stderr));
        if ran.status.code() == Some(1) && said.trim().is_empty() {
            let cause = silent_exit_cause(&self.command, effective_uid(), |p| p.is_file());
            if let Some(why) = cause {
                return Liveness::Error {
                    why: format!("`{shown}` exited 1 and printed nothing: {why}"),
                };
            }
        }
        match read_status(ran.status.code(), &said) {
            Liveness::Stopped { said } if said.is_empty() => Liveness::Stopped {
                said: format!(
                    "`{shown}` exited 1 (Postfix explains only on a terminal and in its log)"
                ),
            },
            Liveness::Error { why } => Liveness::Error {
                why: format!("`{shown}` {}: {why}", describe(ran.status)),
            },
            other => other,
        }
    }
}

/// The `postfix status` command for the instance that `postqueue` (a
/// postqueue command line) reads: `-c DIR` (or `-cDIR`) is carried over, and
/// `postfix` is taken from the same directory when postqueue is named by
/// path (`/usr/sbin/postqueue` → `/usr/sbin/postfix`).
pub fn status_command_for(postqueue: &[String]) -> Vec<String> {
    let program = match postqueue.first() {
        Some(p) if p.ends_with("/postqueue") => {
            format!("{}postfix", &p[..p.len() - "postqueue".len()])
        }
        _ => "postfix".to_string(),
    };
    let mut command = vec![program];
    if let Some(dir) = config_dir_arg(postqueue) {
        command.push("-c".into());
        command.push(dir);
    }
    command.push("status".into());
    command
}

/// The value of `-c DIR` or `-cDIR` among a Postfix command's arguments.
fn config_dir_arg(command: &[String]) -> Option<String> {
    let mut args = command.iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-c" {
            return args.next().cloned();
        }
        if let Some(dir) = arg.strip_prefix("-c")
            && !arg.starts_with("--")
        {
            return Some(dir.to_string());
        }
    }
    None
}

/// Reads an answer of `postfix status`: its exit code (`None` when killed
/// by a signal) and all it printed. What it says wins over the exit code (a
/// wrapper such as `script` may exit 0 whatever Postfix answered):
/// "is not running" → stopped; `fatal:`, `error:` or `panic:` → it could not
/// check. Otherwise exit 0 → running (with the pid after `PID:` if printed),
/// exit 1 → stopped (`said` empty when it printed nothing), anything else →
/// error.
pub fn read_status(exit_code: Option<i32>, output: &str) -> Liveness {
    let said = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let lower = said.to_lowercase();
    if lower.contains("is not running") {
        return Liveness::Stopped { said };
    }
    if ["fatal:", "error:", "panic:"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return Liveness::Error { why: said };
    }
    match exit_code {
        Some(0) => Liveness::Running {
            master_pid: master_pid_in(&said),
        },
        Some(1) => Liveness::Stopped { said },
        _ if said.is_empty() => Liveness::Error {
            why: "(nothing printed)".into(),
        },
        _ => Liveness::Error { why: said },
    }
}

/// The number after `PID:` in a `postfix status` answer.
fn master_pid_in(said: &str) -> Option<u32> {
    let (_, rest) = said.split_once("PID:")?;
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Why `postfix status` may have exited 1 without a word for a reason other
/// than "stopped": the `postfix` program runs for the superuser only, and
/// stops when its configuration directory has no `main.cf`. Only judged when
/// the command runs `postfix` itself (a wrapper such as sudo changes both);
/// `euid` is this process's effective uid when known.
fn silent_exit_cause(
    command: &[String],
    euid: Option<u32>,
    is_file: impl Fn(&std::path::Path) -> bool,
) -> Option<String> {
    let program = command.first()?;
    if program.rsplit('/').next() != Some("postfix") {
        return None;
    }
    if let Some(uid) = euid
        && uid != 0
    {
        return Some(format!(
            "the postfix command runs for root only and this process runs as uid {uid}; \
             configure a status command that gains root"
        ));
    }
    let dir = config_dir_arg(command)?;
    let main_cf = std::path::Path::new(&dir).join("main.cf");
    if !is_file(&main_cf) {
        return Some(format!("there is no {}", main_cf.display()));
    }
    None
}

/// This process's effective uid, from `/proc/self/status` (Linux).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as Postfix 3.7 prints them (`postqueue -j`).
    const REAL: &str = r#"{"queue_name": "deferred", "queue_id": "4C55C9D4159", "arrival_time": 1795985896, "message_size": 285, "forced_expire": false, "sender": "ops@warroom.test", "recipients": [{"address": "alice@acme.test", "delay_reason": "deferred transport"}, {"address": "bob@Globex.test", "delay_reason": "deferred transport"}]}
{"queue_name": "active", "queue_id": "4E0A39D4158", "arrival_time": 1795985897, "message_size": 1024, "forced_expire": false, "sender": "", "recipients": [{"address": "carol@acme.test"}]}
"#;

    #[test]
    fn parses_real_lines() {
        let (msgs, problems) = parse_postqueue(REAL);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(msgs.len(), 2);
        let m = &msgs[0];
        assert_eq!(m.queue_name, "deferred");
        assert_eq!(m.queue_id, "4C55C9D4159");
        assert_eq!(m.arrival_time, DateTime::from_timestamp(1_795_985_896, 0));
        assert_eq!(m.message_size, 285);
        assert_eq!(m.sender, "ops@warroom.test");
        assert_eq!(
            m.recipients,
            vec![
                Recipient {
                    address: "alice@acme.test".into(),
                    delay_reason: Some("deferred transport".into()),
                },
                Recipient {
                    address: "bob@Globex.test".into(),
                    delay_reason: Some("deferred transport".into()),
                },
            ]
        );
        // Not yet tried: no delay_reason. A bounce: null sender.
        assert_eq!(msgs[1].recipients[0].delay_reason, None);
        assert_eq!(msgs[1].sender, "");
    }

    #[test]
    fn ignores_unknown_fields() {
        let line = r#"{"queue_name":"hold","queue_id":"A1","arrival_time":1,"message_size":3,"sender":"s@x.test","recipients":[{"address":"r@y.test","delay_reason":"x","orig_rcpt":"o@y.test","dsn":{"a":[1]}}],"future_field":{"nested":[1,2,3]},"forced_expire":true}"#;
        let (msgs, problems) = parse_postqueue(line);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].queue_name, "hold");
        assert_eq!(msgs[0].recipients[0].address, "r@y.test");
    }

    #[test]
    fn tolerates_missing_optional_fields() {
        let line =
            r#"{"queue_name":"maildrop","queue_id":"B2","recipients":[{"address":"r@y.test"}]}"#;
        let (msgs, problems) = parse_postqueue(line);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(msgs[0].arrival_time, None);
        assert_eq!(msgs[0].message_size, 0);
        assert_eq!(msgs[0].sender, "");
        assert_eq!(msgs[0].recipients[0].delay_reason, None);
    }

    #[test]
    fn odd_arrival_times_are_none_not_errors() {
        for t in [r#""yesterday""#, "null", "1e300", "-1e300", "true"] {
            let line = format!(
                r#"{{"queue_name":"active","queue_id":"C3","arrival_time":{t},"sender":"","recipients":[]}}"#
            );
            let (msgs, problems) = parse_postqueue(&line);
            assert!(problems.is_empty(), "{t}: {problems:?}");
            assert_eq!(msgs[0].arrival_time, None, "{t}");
        }
        let line = r#"{"queue_name":"active","queue_id":"C3","arrival_time":1795985896.5,"sender":"","recipients":[]}"#;
        let (msgs, _) = parse_postqueue(line);
        assert_eq!(
            msgs[0].arrival_time,
            DateTime::from_timestamp_millis(1_795_985_896_500)
        );
    }

    #[test]
    fn reports_garbage_lines_and_keeps_the_rest() {
        let text = format!(
            "postqueue: warning: Mail system is down -- accessing queue directly\n\
             {}\n\
             \n\
             {{\"queue_name\":\"deferred\"}}\n\
             [1,2,3]\n\
             {{\"queue_name\":\"deferred\",\"queue_id\":\"D4\",\"message_size\":-5,\"recipients\":[]}}\n\
             {{\"queue_name\":\"deferred\",\"queue_id\":\"E5\",\"recipients\":[{{\"address\":\"a@b.test\"\n\
             {}\n\
             \u{0}\u{fffd}{}\n",
            REAL.lines().next().unwrap_or_default(),
            REAL.lines().nth(1).unwrap_or_default(),
            "x".repeat(500),
        );
        let (msgs, problems) = parse_postqueue(&text);
        assert_eq!(msgs.len(), 2);
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems[0].starts_with("line 1: "), "{}", problems[0]);
        assert!(problems[1].starts_with("line 4: "), "{}", problems[1]);
        assert!(problems[1].contains("queue_id"), "{}", problems[1]);
        // Long lines are quoted, not copied whole.
        assert!(problems[5].chars().count() < 300, "{}", problems[5]);
    }

    #[test]
    fn empty_output_is_an_empty_queue() {
        let (msgs, problems) = parse_postqueue("");
        assert!(msgs.is_empty() && problems.is_empty());
        assert_eq!(counts(&msgs), QueueCounts::default());
        assert!(per_domain(&msgs).is_empty());
    }

    fn msg(queue: &str, rcpts: &[&str]) -> QueuedMessage {
        QueuedMessage {
            queue_name: queue.into(),
            queue_id: "X".into(),
            arrival_time: None,
            message_size: 1,
            sender: "s@x.test".into(),
            recipients: rcpts
                .iter()
                .map(|a| Recipient {
                    address: (*a).into(),
                    delay_reason: None,
                })
                .collect(),
        }
    }

    #[test]
    fn counts_per_queue() {
        let msgs = vec![
            msg("active", &[]),
            msg("deferred", &[]),
            msg("deferred", &[]),
            msg("hold", &[]),
            msg("incoming", &[]),
            msg("maildrop", &[]),
            msg("maildrop", &[]),
            msg("corrupt", &[]),
        ];
        let c = counts(&msgs);
        assert_eq!(
            c,
            QueueCounts {
                active: 1,
                deferred: 2,
                hold: 1,
                incoming: 1,
                maildrop: 2,
            }
        );
        assert_eq!(c.total(), 7);
    }

    #[test]
    fn per_domain_counts_messages_not_recipients() {
        let msgs = vec![
            msg("deferred", &["a@acme.test"]),
            msg("deferred", &["b@ACME.test", "c@globex.test"]),
            msg("deferred", &["d@globex.test", "e@Globex.Test."]),
            msg(
                "deferred",
                &["\"odd@local\"@initech.test", "<f@initech.test>"],
            ),
            msg("deferred", &["postmaster", "g@"]),
        ];
        let d = per_domain(&msgs);
        let want: BTreeMap<String, u64> =
            [("acme.test", 2), ("globex.test", 2), ("initech.test", 1)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        assert_eq!(d, want);
    }

    #[test]
    fn new_rejects_nonsense() {
        assert!(Postqueue::new(vec![], Duration::from_secs(1)).is_err());
        assert!(Postqueue::new(vec![" ".into()], Duration::from_secs(1)).is_err());
        assert!(Postqueue::new(vec!["postqueue".into()], Duration::ZERO).is_err());
        let p = Postqueue::new(
            vec!["postqueue".into(), "-j".into()],
            Duration::from_secs(1),
        );
        assert_eq!(p.map(|p| p.command().len()).ok(), Some(2));
    }

    fn sh(script: &str, timeout: Duration) -> Postqueue {
        Postqueue::new(vec!["/bin/sh".into(), "-c".into(), script.into()], timeout)
            .expect("valid command")
    }

    #[tokio::test]
    async fn poll_parses_command_output_and_skips_bad_lines() {
        let script = format!(
            "printf '%s\\n' '{}' 'not json'; echo 'postqueue: warning: queue is down' >&2",
            REAL.lines().next().unwrap_or_default()
        );
        let msgs = sh(&script, Duration::from_secs(10)).poll().await;
        let msgs = msgs.expect("poll works");
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].queue_id, "4C55C9D4159");
    }

    #[tokio::test]
    async fn poll_reports_exit_code_and_first_stderr_line() {
        let err = sh(
            "echo; echo 'postqueue: fatal: open /nowhere/main.cf: No such file' >&2; echo second >&2; exit 75",
            Duration::from_secs(10),
        )
        .poll()
        .await
        .expect_err("must fail");
        assert!(err.contains("exited with code 75"), "{err}");
        // Only the first non-blank stderr line (the command is quoted too).
        assert!(
            err.ends_with(
                "exited with code 75: postqueue: fatal: open /nowhere/main.cf: No such file"
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn poll_reports_a_missing_program() {
        let p = Postqueue::new(
            vec!["/nonexistent/postqueue".into(), "-j".into()],
            Duration::from_secs(5),
        )
        .expect("valid command");
        let err = p.poll().await.expect_err("must fail");
        assert!(
            err.contains("cannot run `/nonexistent/postqueue -j`"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn poll_kills_a_command_that_hangs() {
        let err = sh("exec sleep 30", Duration::from_millis(300))
            .poll()
            .await
            .expect_err("must time out");
        assert!(err.contains("did not finish within 300ms"), "{err}");
    }

    #[tokio::test]
    async fn poll_reports_a_killed_command() {
        let err = sh("kill -9 $$", Duration::from_secs(10))
            .poll()
            .await
            .expect_err("must fail");
        assert!(err.contains("killed by signal 9"), "{err}");
    }

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    /// What Postfix 3.7 prints on a terminal (seen here with `script`).
    const SAYS_RUNNING: &str =
        "postfix/postfix-script: the Postfix mail system is running: PID: 18767\r\n";
    const SAYS_STOPPED: &str = "postfix/postfix-script: the Postfix mail system is not running\r\n";

    #[test]
    fn read_status_follows_the_exit_code_when_silent() {
        assert_eq!(
            read_status(Some(0), ""),
            Liveness::Running { master_pid: None }
        );
        assert_eq!(
            read_status(Some(1), "\n"),
            Liveness::Stopped { said: "".into() }
        );
        assert!(matches!(read_status(Some(2), ""), Liveness::Error { .. }));
        assert!(matches!(read_status(None, ""), Liveness::Error { .. }));
    }

    #[test]
    fn read_status_reads_what_postfix_says_on_a_terminal() {
        assert_eq!(
            read_status(Some(0), SAYS_RUNNING),
            Liveness::Running {
                master_pid: Some(18767)
            }
        );
        let stopped = read_status(Some(1), SAYS_STOPPED);
        assert_eq!(
            stopped,
            Liveness::Stopped {
                said: "postfix/postfix-script: the Postfix mail system is not running".into()
            }
        );
        // A wrapper that exits 0 whatever Postfix said (script without -e).
        assert!(matches!(
            read_status(Some(0), SAYS_STOPPED),
            Liveness::Stopped { .. }
        ));
        // Could not check: not root, no configuration.
        for said in [
            "postfix: error: to submit mail, use the Postfix sendmail command\n\
             postfix: fatal: the postfix command is reserved for the superuser\n",
            "postfix: fatal: open /nowhere/main.cf: No such file or directory\n",
        ] {
            for code in [Some(0), Some(1)] {
                let got = read_status(code, said);
                assert!(
                    matches!(&got, Liveness::Error { why } if why.contains("postfix: ")),
                    "{got:?}"
                );
            }
        }
        assert_eq!(
            read_status(Some(0), "PID: none").to_string(),
            "running",
            "a PID that is not a number is not a pid"
        );
        assert_eq!(
            read_status(Some(0), SAYS_RUNNING).to_string(),
            "running (master pid 18767)"
        );
    }

    #[test]
    fn status_command_follows_the_postqueue_command() {
        assert_eq!(
            status_command_for(&strings(&[
                "/usr/sbin/postqueue",
                "-c",
                "/etc/postfix-out",
                "-j"
            ])),
            strings(&["/usr/sbin/postfix", "-c", "/etc/postfix-out", "status"])
        );
        assert_eq!(
            status_command_for(&strings(&["postqueue", "-j", "-c/srv/pf"])),
            strings(&["postfix", "-c", "/srv/pf", "status"])
        );
        assert_eq!(
            status_command_for(&strings(&["postqueue", "-j"])),
            strings(&["postfix", "status"])
        );
        // Not postqueue by path (a test double, a wrapper): plain postfix.
        assert_eq!(
            status_command_for(&strings(&["/opt/bin/fake-queue", "-j"])),
            strings(&["postfix", "status"])
        );
        let pq = Postqueue::new(
            strings(&["/usr/sbin/postqueue", "-c", "/x", "-j"]),
            Duration::from_secs(1),
        )
        .expect("valid");
        let st = PostfixStatus::for_postqueue(&pq, Duration::from_secs(1)).expect("valid");
        assert_eq!(
            st.command(),
            strings(&["/usr/sbin/postfix", "-c", "/x", "status"])
        );
    }

    #[test]
    fn a_silent_exit_1_is_blamed_on_what_can_be_seen() {
        let cmd = strings(&["/usr/sbin/postfix", "-c", "/etc/pf", "status"]);
        let exists = |_: &std::path::Path| true;
        let absent = |_: &std::path::Path| false;
        let not_root = silent_exit_cause(&cmd, Some(1000), exists).expect("not root");
        assert!(not_root.contains("uid 1000"), "{not_root}");
        let no_conf = silent_exit_cause(&cmd, Some(0), absent).expect("no main.cf");
        assert!(no_conf.contains("/etc/pf/main.cf"), "{no_conf}");
        // Root, configuration there: nothing else to blame, so it is stopped.
        assert_eq!(silent_exit_cause(&cmd, Some(0), exists), None);
        assert_eq!(silent_exit_cause(&cmd, None, exists), None);
        // A wrapper decides for itself who runs postfix.
        let sudo = strings(&["sudo", "-n", "/usr/sbin/postfix", "status"]);
        assert_eq!(silent_exit_cause(&sudo, Some(1000), absent), None);
    }

    #[test]
    fn status_new_rejects_nonsense() {
        assert!(PostfixStatus::new(vec![], Duration::from_secs(1)).is_err());
        assert!(PostfixStatus::new(strings(&[""]), Duration::from_secs(1)).is_err());
        assert!(PostfixStatus::new(strings(&["postfix", "status"]), Duration::ZERO).is_err());
    }

    fn status_sh(script: &str, timeout: Duration) -> PostfixStatus {
        PostfixStatus::new(strings(&["/bin/sh", "-c", script]), timeout).expect("valid command")
    }

    #[tokio::test]
    async fn check_runs_the_command_and_reads_its_exit() {
        let s = Duration::from_secs(10);
        assert_eq!(
            status_sh("exit 0", s).check().await,
            Liveness::Running { master_pid: None }
        );
        let stopped = status_sh("exit 1", s).check().await;
        assert!(
            matches!(&stopped, Liveness::Stopped { said } if said.contains("exited 1")),
            "{stopped:?}"
        );
        let said = status_sh(&format!("printf '{SAYS_STOPPED}' >&2; exit 1"), s)
            .check()
            .await;
        assert_eq!(
            said,
            Liveness::Stopped {
                said: "postfix/postfix-script: the Postfix mail system is not running".into()
            }
        );
        let odd = status_sh("echo 'postfix: fatal: bad things' >&2; exit 1", s)
            .check()
            .await;
        assert!(
            matches!(&odd, Liveness::Error { why } if why.contains("exited with code 1: postfix: fatal: bad things")),
            "{odd:?}"
        );
    }

    #[tokio::test]
    async fn check_cannot_tell_when_the_command_fails_to_answer() {
        let hung = status_sh("exec sleep 30", Duration::from_millis(300))
            .check()
            .await;
        assert!(
            matches!(&hung, Liveness::Error { why } if why.contains("did not finish within 300ms; killed it")),
            "{hung:?}"
        );
        let killed = status_sh("kill -9 $$", Duration::from_secs(10))
            .check()
            .await;
        assert!(
            matches!(&killed, Liveness::Error { why } if why.contains("killed by signal 9")),
            "{killed:?}"
        );
        let missing = PostfixStatus::new(
            strings(&["/nonexistent/postfix", "status"]),
            Duration::from_secs(5),
        )
        .expect("valid")
        .check()
        .await;
        assert!(
            matches!(&missing, Liveness::Error { why } if why.contains("cannot run `/nonexistent/postfix status`")),
            "{missing:?}"
        );
    }

    #[test]
    fn per_address_counts_messages_per_mailbox() {
        let msgs = vec![
            msg("deferred", &["Alice@Acme.test"]),
            msg(
                "deferred",
                &["alice@acme.test", "<ALICE@acme.test>", "bob@acme.test"],
            ),
            msg("hold", &["bob@acme.test.", "carol@globex.test"]),
            msg("deferred", &["postmaster", " ", "<>"]),
            msg("deferred", &[]),
        ];
        let want: BTreeMap<String, u64> = [
            ("alice@acme.test", 2),
            ("bob@acme.test", 2),
            ("carol@globex.test", 1),
            ("postmaster", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(per_address(&msgs), want);
        assert!(per_address(&[]).is_empty());
    }

    fn queued(queue: &str, id: &str, arrival: i64, rcpts: &[&str]) -> QueuedMessage {
        QueuedMessage {
            queue_id: id.into(),
            arrival_time: DateTime::from_timestamp(arrival, 0),
            ..msg(queue, rcpts)
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_985_000 + secs, 0).unwrap_or_default()
    }

    fn step(flow: Flow) -> FlowStep {
        match flow {
            Flow::Measured(step) => step,
            Flow::NotMeasuredYet => panic!("expected a measured step"),
        }
    }

    fn per(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(d, n)| (d.to_string(), *n)).collect()
    }

    #[test]
    fn flow_is_not_measured_on_the_first_observation() {
        let mut f = QueueFlow::new();
        let full = vec![queued("deferred", "A", 1, &["a@acme.test"])];
        assert_eq!(f.observe(at(0), &full), Flow::NotMeasuredYet);
        let mut g = QueueFlow::new();
        assert_eq!(g.observe(at(0), &[]), Flow::NotMeasuredYet);
        // The second one is measured, even when nothing changed.
        let s = step(g.observe(at(5), &[]));
        assert_eq!((s.arrived, s.left, s.missing, s.seconds), (0, 0, 0, 5.0));
    }

    #[test]
    fn flow_counts_arrivals_per_domain_and_ignores_moves_between_queues() {
        let mut f = QueueFlow::new();
        f.observe(at(0), &[queued("deferred", "A", 1, &["a@acme.test"])]);
        let s = step(f.observe(
            at(10),
            &[
                queued("hold", "A", 1, &["a@acme.test"]),
                queued("incoming", "B", 2, &["b@acme.test", "c@Globex.test"]),
                queued("active", "C", 3, &["d@globex.test"]),
                // Listed twice by a scan that raced a move: one message.
                queued("deferred", "C", 3, &["d@globex.test"]),
                // Waiting for pickup: not in the queue proper yet.
                queued("maildrop", "D", 4, &["e@acme.test"]),
            ],
        ));
        assert_eq!(s.arrived, 2);
        assert_eq!(
            s.arrived_per_domain,
            per(&[("acme.test", 1), ("globex.test", 2)])
        );
        assert_eq!((s.left, s.missing, s.seconds), (0, 0, 10.0));
        assert!(s.left_per_domain.is_empty());
    }

    #[test]
    fn flow_counts_a_departure_once_it_is_absent_twice() {
        let mut f = QueueFlow::new();
        let a = queued("deferred", "A", 1, &["a@acme.test", "x@globex.test"]);
        let b = queued("deferred", "B", 2, &["b@acme.test"]);
        let c = queued("deferred", "C", 3, &["c@initech.test"]);
        f.observe(at(0), &[a.clone(), b.clone(), c.clone()]);
        // A and B gone from this snapshot: not yet counted.
        let s = step(f.observe(at(5), std::slice::from_ref(&c)));
        assert_eq!((s.arrived, s.left, s.missing), (0, 0, 2));
        // Still gone: they left.
        let s = step(f.observe(at(10), std::slice::from_ref(&c)));
        assert_eq!((s.arrived, s.left, s.missing), (0, 2, 0));
        assert_eq!(
            s.left_per_domain,
            per(&[("acme.test", 2), ("globex.test", 1)])
        );
        assert_eq!(f.tracked(), 1, "memory follows the queue");
    }

    #[test]
    fn flow_forgives_a_message_missing_from_one_scan() {
        let mut f = QueueFlow::new();
        let a = queued("deferred", "A", 1, &["a@acme.test"]);
        let b = queued("deferred", "B", 2, &["b@acme.test"]);
        f.observe(at(0), &[a.clone(), b.clone()]);
        // A moved deferred → active while the scan was between the two.
        let s = step(f.observe(at(5), std::slice::from_ref(&b)));
        assert_eq!(s.missing, 1);
        let a_active = QueuedMessage {
            queue_name: "active".into(),
            ..a
        };
        let s = step(f.observe(at(10), &[a_active, b]));
        assert_eq!((s.arrived, s.left, s.missing), (0, 0, 0));
    }

    #[test]
    fn flow_tells_a_reused_queue_id_from_the_message_that_had_it() {
        let mut f = QueueFlow::new();
        let old = queued("deferred", "4C55C9D4159", 100, &["a@acme.test"]);
        f.observe(at(0), std::slice::from_ref(&old));
        f.observe(at(5), &[]);
        let s = step(f.observe(at(10), &[]));
        assert_eq!(s.left, 1);
        // Later another message gets the same queue id: it arrived.
        let new = queued("incoming", "4C55C9D4159", 200, &["b@globex.test"]);
        let s = step(f.observe(at(15), std::slice::from_ref(&new)));
        assert_eq!((s.arrived, s.left), (1, 0));
        assert_eq!(s.arrived_per_domain, per(&[("globex.test", 1)]));

        // Reused between two observations: the arrival time tells.
        let newer = queued("incoming", "4C55C9D4159", 300, &["c@initech.test"]);
        let s = step(f.observe(at(20), std::slice::from_ref(&newer)));
        assert_eq!((s.arrived, s.left, s.missing), (1, 1, 0));
        assert_eq!(s.left_per_domain, per(&[("globex.test", 1)]));
        assert_eq!(s.arrived_per_domain, per(&[("initech.test", 1)]));

        // Missing once, then back as another message: the old one left.
        f.observe(at(25), &[]);
        let other = queued("incoming", "4C55C9D4159", 400, &["d@acme.test"]);
        let s = step(f.observe(at(30), std::slice::from_ref(&other)));
        assert_eq!((s.arrived, s.left, s.missing), (1, 1, 0));
        assert_eq!(s.left_per_domain, per(&[("initech.test", 1)]));

        // Without arrival times the same id is taken for the same message.
        let unknown = QueuedMessage {
            arrival_time: None,
            ..other
        };
        let s = step(f.observe(at(35), &[unknown]));
        assert_eq!((s.arrived, s.left), (0, 0));
    }

    #[test]
    fn flow_seconds_never_go_negative() {
        let mut f = QueueFlow::new();
        f.observe(at(100), &[]);
        assert_eq!(step(f.observe(at(40), &[])).seconds, 0.0);
        assert_eq!(step(f.observe(at(41), &[])).seconds, 1.0);
    }

    #[test]
    fn flow_memory_is_bounded_by_the_queue() {
        let mut f = QueueFlow::new();
        let mut left = 0;
        for round in 0..50_i64 {
            // 1000 new messages every round; last round's are gone.
            let msgs: Vec<QueuedMessage> = (0..1000)
                .map(|i| queued("deferred", &format!("{round}-{i}"), round, &["a@acme.test"]))
                .collect();
            if let Flow::Measured(s) = f.observe(at(round), &msgs) {
                assert_eq!(s.arrived, 1000);
                left += s.left;
            }
            assert!(f.tracked() <= 2000, "{}", f.tracked());
        }
        assert_eq!(
            left,
            48 * 1000,
            "all but the last two rounds confirmed gone"
        );
    }

    #[test]
    fn a_message_listed_twice_is_kept_once_where_it_was_seen_last() {
        let mut a_active = msg("active", &["a@acme.test"]);
        a_active.queue_id = "A".into();
        let mut b = msg("deferred", &["b@acme.test"]);
        b.queue_id = "B".into();
        let a_deferred = QueuedMessage {
            queue_name: "deferred".into(),
            ..a_active.clone()
        };
        let got = one_listing_per_message(vec![a_active, b.clone(), a_deferred.clone()]);
        assert_eq!(got, vec![a_deferred, b]);
    }

    #[tokio::test]
    async fn poll_lists_each_queue_id_once() {
        let first = REAL.lines().next().unwrap_or_default();
        let moved = first.replace("\"deferred\"", "\"hold\"");
        let script = format!("printf '%s\\n' '{first}' '{moved}'");
        let msgs = sh(&script, Duration::from_secs(10))
            .poll()
            .await
            .expect("poll works");
        assert_eq!(
            counts(&msgs),
            QueueCounts {
                hold: 1,
                ..QueueCounts::default()
            }
        );
    }
}
