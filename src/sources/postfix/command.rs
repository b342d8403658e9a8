//! Running `postqueue -j`: on a blocking thread, killed after its timeout,
//! its listing parsed and each queue id kept once.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{QueuedMessage, parse_postqueue};

/// Keeps one listing per queue id, the last. `postqueue` scans the maildrop,
/// incoming, active, deferred and hold queues in turn, so a message moving
/// to a later queue during the scan (active → deferred after a failed
/// attempt) is listed twice, and the later listing is where it is now. Seen
/// here: 11 queued messages polled as 1 active + 11 deferred.
pub(super) fn one_listing_per_message(msgs: Vec<QueuedMessage>) -> Vec<QueuedMessage> {
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
    pub fn new(command: Vec<String>, timeout: Duration) -> Result<Self, ConfigError> {
        check_command("postqueue", &command, timeout)?;
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
    /// with a failure (the exit code and the first line of its stderr).
    pub async fn poll(&self) -> Result<Vec<QueuedMessage>, RunError> {
        let command = self.command.clone();
        let timeout = self.timeout;
        let stdout = tokio::task::spawn_blocking(move || run(&command, timeout))
            .await
            .map_err(|e| RunError::Task {
                what: "postqueue",
                why: e.to_string(),
            })??;
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

/// Why a `postqueue` or `postfix status` command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `what` names the command: "postqueue", "postfix status".
    #[error("the {what} command is empty")]
    EmptyCommand { what: &'static str },
    #[error("the {what} command has an empty program name")]
    EmptyProgram { what: &'static str },
    #[error("the {what} timeout must be more than zero")]
    ZeroTimeout { what: &'static str },
}

/// Checks a command line and its time-out; `what` names it in the error.
pub(super) fn check_command(
    what: &'static str,
    command: &[String],
    timeout: Duration,
) -> Result<(), ConfigError> {
    match command.first() {
        None => return Err(ConfigError::EmptyCommand { what }),
        Some(p) if p.trim().is_empty() => return Err(ConfigError::EmptyProgram { what }),
        Some(_) => {}
    }
    if timeout.is_zero() {
        return Err(ConfigError::ZeroTimeout { what });
    }
    Ok(())
}

/// Why a command could not be run to the end, or failed. `command` is the
/// command line as run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("the command is empty")]
    Empty,
    /// It did not start (no such program, not allowed).
    #[error("cannot run `{command}`: {why}")]
    Start { command: String, why: String },
    /// It ran out of time and was killed.
    #[error("`{command}` did not finish within {timeout:?}; killed it")]
    TimedOut { command: String, timeout: Duration },
    #[error("waiting for `{command}` failed: {why}")]
    Wait { command: String, why: String },
    /// It exited but left a process behind that holds its output.
    #[error("`{command}` exited but its output did not close within {timeout:?}")]
    OutputLeftOpen { command: String, timeout: Duration },
    /// It exited with a failure: `how` ("exited with code 75"), and the
    /// first line of its stderr.
    #[error("`{command}` {how}: {said}")]
    Failed {
        command: String,
        how: String,
        said: String,
    },
    /// The blocking task that ran it failed.
    #[error("the {what} task failed: {why}")]
    Task { what: &'static str, why: String },
}

/// Runs `command` with stdin closed and returns its stdout; kills it after
/// `timeout`. A failed exit is an error naming the exit code and the first
/// line of stderr.
pub(super) fn run(command: &[String], timeout: Duration) -> Result<String, RunError> {
    let shown = command.join(" ");
    let ran = run_capture(command, timeout)?;
    let stderr = String::from_utf8_lossy(&ran.stderr);
    if !ran.status.success() {
        let first = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("(nothing on stderr)");
        return Err(RunError::Failed {
            command: shown,
            how: describe(ran.status),
            said: first.to_string(),
        });
    }
    if !stderr.trim().is_empty() {
        tracing::debug!(command = %shown, stderr = %stderr.trim(), "postqueue wrote to stderr");
    }
    Ok(String::from_utf8_lossy(&ran.stdout).into_owned())
}

/// How a command ended and what it printed.
pub(super) struct Ran {
    pub(super) status: ExitStatus,
    pub(super) stdout: Vec<u8>,
    pub(super) stderr: Vec<u8>,
}

/// Runs `command` with stdin closed, collecting stdout and stderr; kills it
/// after `timeout`. Errors only when it could not be run to the end: it did
/// not start, ran out of time, or left its output open.
pub(super) fn run_capture(command: &[String], timeout: Duration) -> Result<Ran, RunError> {
    let shown = command.join(" ");
    let (program, args) = command.split_first().ok_or(RunError::Empty)?;
    let deadline = Instant::now() + timeout;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RunError::Start {
            command: shown.clone(),
            why: e.to_string(),
        })?;

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
        WaitError::TimedOut => RunError::TimedOut {
            command: shown.clone(),
            timeout,
        },
        WaitError::Io(e) => RunError::Wait {
            command: shown.clone(),
            why: e.to_string(),
        },
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
                return Err(RunError::OutputLeftOpen {
                    command: shown,
                    timeout,
                });
            }
        }
    }
    Ok(Ran {
        status,
        stdout,
        stderr,
    })
}

pub(super) enum WaitError {
    TimedOut,
    Io(std::io::Error),
}

pub(super) fn wait_until(
    child: &mut std::process::Child,
    deadline: Instant,
) -> Result<ExitStatus, WaitError> {
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

pub(super) fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("failed ({status})"),
    }
}
#[cfg(test)]
mod tests {
    use super::super::tests::{REAL, msg};
    use super::super::{PostfixStatus, QueueCounts, counts};
    use super::*;
    #[test]
    fn new_rejects_nonsense() {
        // One check for both commands, each refused in its own name.
        type New = fn(Vec<String>, Duration) -> Option<String>;
        let postqueue: New = |c, t| Postqueue::new(c, t).err().map(|e| e.to_string());
        let status: New = |c, t| PostfixStatus::new(c, t).err().map(|e| e.to_string());
        let second = Duration::from_secs(1);
        for (refused, what) in [(postqueue, "postqueue"), (status, "postfix status")] {
            let said = |e: &str| Some(format!("the {what} {e}"));
            assert_eq!(refused(vec![], second), said("command is empty"));
            assert_eq!(
                refused(vec![" ".into()], second),
                said("command has an empty program name")
            );
            assert_eq!(
                refused(vec![what.into()], Duration::ZERO),
                said("timeout must be more than zero")
            );
        }
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
        .expect_err("must fail")
        .to_string();
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
        let err = p.poll().await.expect_err("must fail").to_string();
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
            .expect_err("must time out")
            .to_string();
        assert!(err.contains("did not finish within 300ms"), "{err}");
    }

    #[tokio::test]
    async fn poll_reports_a_killed_command() {
        let err = sh("kill -9 $$", Duration::from_secs(10))
            .poll()
            .await
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("killed by signal 9"), "{err}");
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
