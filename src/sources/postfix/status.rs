//! Whether Postfix runs: `postfix status` run and read.

use std::time::Duration;

use super::Postqueue;
use super::command::{ConfigError, check_command, describe, run_capture};

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
    pub fn new(command: Vec<String>, timeout: Duration) -> Result<Self, ConfigError> {
        check_command("postfix status", &command, timeout)?;
        Ok(Self { command, timeout })
    }

    /// The default check for the instance a postqueue command reads: see
    /// [`status_command_for`].
    pub fn for_postqueue(postqueue: &Postqueue, timeout: Duration) -> Result<Self, ConfigError> {
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
            Ok(Err(why)) => {
                return Liveness::Error {
                    why: why.to_string(),
                };
            }
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
pub(super) fn config_dir_arg(command: &[String]) -> Option<String> {
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
pub(super) fn master_pid_in(said: &str) -> Option<u32> {
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
pub(super) fn silent_exit_cause(
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
pub(super) fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}
#[cfg(test)]
mod tests {
    use super::*;

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
}
