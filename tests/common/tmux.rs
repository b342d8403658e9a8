//! Real binaries in real terminals: a private tmux server per session, and
//! gateway processes on free loopback ports.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tmux server of our own (`-L socket`) with one session, "w".
pub struct Session {
    socket: String,
}

impl Session {
    /// Starts `sh -c cmd` in a `width`×`height` terminal, in `dir`.
    pub fn start(socket: &str, dir: &std::path::Path, width: u16, height: u16, cmd: &str) -> Self {
        let s = Session {
            socket: socket.to_string(),
        };
        s.run(&[
            "new-session",
            "-d",
            "-c",
            dir.to_str().unwrap(),
            "-s",
            "w",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "sh",
            "-c",
            cmd,
        ]);
        s
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs (scripts/test installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "w"])
    }

    /// The screen once `pred` holds; fails the test after `limit`.
    pub fn wait(&self, pred: impl Fn(&str) -> bool, what: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "never {what}:\n{s}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The screen once it shows every one of `what` (60 s at most).
    pub fn wait_for(&self, what: &[&str]) -> String {
        self.wait(
            |s| what.iter().all(|w| s.contains(w)),
            &format!("showed {what:?}"),
            Duration::from_secs(60),
        )
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "w"];
        args.extend(keys);
        self.run(&args);
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "w", "-l", text]);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

#[path = "../fixtures/ports.rs"]
mod ports;
pub use ports::free_port;

/// `warroom gateway` on 127.0.0.1:`port` with a small simulation, quiet,
/// its state in `data_dir` unless `args` says otherwise.
pub fn spawn_gateway(
    port: u16,
    data_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_warroom"))
        .args([
            "gateway",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tenants",
            "200",
            "--mailboxes",
            "5000",
        ])
        .args(args)
        .env("WARROOM_LOG", "error")
        .env("XDG_DATA_HOME", data_dir)
        .env("XDG_CONFIG_HOME", data_dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gateway starts")
}

/// When `port` first accepted a connection (30 s at most).
pub fn wait_listening(port: u16) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "gateway never listened");
        std::thread::sleep(Duration::from_millis(10));
    }
}
