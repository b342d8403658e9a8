//! A throwaway PostgreSQL cluster for one test: `initdb` under a temp dir,
//! the server on a 127.0.0.1 ephemeral port, stopped and removed on drop.
//! As root (CI) the server runs as the `postgres` user, as PostgreSQL
//! refuses to run as root.

use std::path::PathBuf;
use std::process::Command;

/// A password in every URL the tests use: the cluster trusts loopback, so it
/// is never checked, but it must never appear in what warroom says.
pub const PASSWORD: &str = "pg-S3cret-pw-0123";

pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

fn bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL installed (/usr/lib/postgresql): ./scripts/test installs it")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl PgCluster {
    /// A new cluster, started.
    pub fn start(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("wr-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = PgCluster {
            dir,
            bin: bin_dir(),
            port: super::tmux::free_port(),
        };
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&c.dir)
                .status()
                .unwrap();
            assert!(ok.success(), "chown the cluster's directory");
        }
        c.run(
            "initdb",
            &[
                "-D",
                &c.data(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        );
        // The port was free when picked, but tests running beside this one
        // bind ephemeral ports too: a port taken in between is retried.
        let mut tries = 0;
        while let Err(e) = c.try_start() {
            tries += 1;
            assert!(tries < 5, "{e}");
            c.port = super::tmux::free_port();
        }
        c
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        if let Err(e) = self.try_run(tool, args) {
            panic!("{e}");
        }
    }

    fn try_run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).output().unwrap();
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        Err(format!(
            "{tool} {args:?}: {}{}\nserver.log:\n{log}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// Starts the server (again) on the same port, waiting until it accepts.
    pub fn start_again(&self) {
        if let Err(e) = self.try_start() {
            panic!("{e}");
        }
    }

    fn try_start(&self) -> Result<(), String> {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off -c max_connections=50",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.try_run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "-o",
                &opts,
                "start",
            ],
        )
    }

    /// Stops the server (fast shutdown: sessions are cut).
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// The URL of database `db` (created by `create_db`, or `postgres`).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// Runs `sql` in database `db` with psql.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let exe = self.bin.join("psql");
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", db, "-X", "-q", "-A", "-t"])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A new empty database; its URL.
    pub fn create_db(&self, db: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {db}"));
        self.url(db)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl");
        let data = self.data();
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
