//! The command line: every command and option (clap).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "warroom",
    version,
    about = "Incident-response console for hosted e-mail platforms",
    long_about = "Incident-response console for hosted e-mail platforms.\n\n\
        With no gateway configured, `warroom` starts an embedded gateway fed by the \
        simulated Cluster A incident and connects to it over loopback gRPC (a drill: \
        the screen says SIMULATED)."
)]
pub(crate) struct Cli {
    /// Config file [default: $XDG_CONFIG_HOME/warroom/config.toml].
    #[arg(long, global = true, env = "WARROOM_CONFIG", value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    #[command(flatten)]
    pub(crate) console: ConsoleArgs,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// The terminal console (the default command).
    Console(ConsoleArgs),
    /// The gateway: polls sources once per tick and serves every console over gRPC.
    Gateway(GatewayArgs),
    /// Print the one-screen picture as plain text (no escape codes) and exit.
    Snapshot(SnapshotArgs),
    /// Is this mailbox, domain or tenant affected, and when is it back?
    /// Exit code 0: found, 1: not found, 2: error.
    Lookup(LookupArgs),
    /// Publish a status update to every channel (or preview it with --dry-run).
    /// Exit code 0: published (or previewed), 1: the draft has errors, 2: error.
    Publish(PublishArgs),
    /// A markdown incident report from the gateway's audit log: timeline,
    /// priority decisions, status updates.
    Report(ConnectArgs),
    /// Export data for a reseller: `warroom export tenant TENANT_ID`.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Print every path and setting in use: config, keymap, logs, state, gateway.
    Info(ConsoleArgs),
    /// Drill tools: score the simulator's forecasts against what happened.
    #[command(subcommand)]
    Drill(DrillCommand),
    /// Keymap tools.
    #[command(subcommand)]
    Keymap(KeymapCommand),
}

#[derive(Subcommand, Debug)]
pub(crate) enum DrillCommand {
    /// Run scenarios to the end, headless, for several seeds; score every ETA
    /// served (each tenant's p50/p90, the reindex ETA, the queue drain ETA,
    /// sampled every quarter of a simulated hour) against when that tenant,
    /// reindex or queue actually finished (docs/forecasting.md). Exit 1 when
    /// a phase misses the coverage goal.
    Calibrate {
        /// Shipped scenario name or file; repeat for several [default: every shipped one].
        #[arg(long, value_name = "NAME|FILE")]
        scenario: Vec<String>,
        /// Seeds per scenario (2008, 2009, …).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        seeds: u32,
        /// One JSON object per line per (scenario, phase, target, forecaster).
        #[arg(long)]
        json: bool,
        /// Also write every ETA served and what then happened to FILE (CSV).
        #[arg(long, value_name = "FILE")]
        samples: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum KeymapCommand {
    /// Validate a keymap file; errors name file:line:column.
    Check {
        /// The keymap file (TOML).
        file: PathBuf,
    },
    /// Print a shipped keymap (default, vim, emacs) to start your own from.
    Show {
        #[arg(default_value = "default")]
        name: String,
    },
}

/// Which gateway: one at a URL, or the embedded demo with its drill.
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub(crate) struct ConnectArgs {
    /// Gateway to connect to, e.g. http://127.0.0.1:50051, or several
    /// replicas separated by commas (the console moves to the next when it
    /// loses one; a command uses the first that answers). Without it, an
    /// embedded gateway runs the simulated incident.
    #[arg(long, env = "WARROOM_GATEWAY", value_name = "URL[,URL...]")]
    pub(crate) gateway: Option<String>,
    /// For an https:// gateway: the CA (PEM) that signed its certificate
    /// [default: gateway_tls.ca in the config, else the system's CA bundle].
    #[arg(long, env = "WARROOM_CA", value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// A client certificate (PEM) for a gateway that requires one
    /// [default: gateway_tls.cert in the config].
    #[arg(
        long,
        env = "WARROOM_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM) [default: gateway_tls.key].
    #[arg(
        long,
        env = "WARROOM_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub(crate) tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) sim: SimArgs,
}

/// How the screen looks and behaves: only for commands that draw it.
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub(crate) struct ScreenArgs {
    /// Shipped keymap to start from: default, vim, emacs.
    #[arg(long, env = "WARROOM_KEYMAP", value_name = "NAME")]
    pub(crate) keymap: Option<String>,
    /// Colour theme: dark, light, high-contrast (NO_COLOR turns colour off).
    #[arg(long, env = "WARROOM_THEME", value_name = "NAME")]
    pub(crate) theme: Option<String>,
    /// Shortest time between frames drawn for new data, in ms (slow links:
    /// 2000 or more; keys always answer at once) [default: 1000].
    #[arg(long, env = "WARROOM_REFRESH_MS", value_name = "MS", value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub(crate) refresh_ms: Option<u64>,
    /// Act as a viewer whatever your token allows: actions that change
    /// war-room state are hidden and refused.
    #[arg(long)]
    pub(crate) read_only: bool,
}

#[derive(Args, Debug, Clone, Default, PartialEq)]
pub(crate) struct ConsoleArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    #[command(flatten)]
    pub(crate) screen: ScreenArgs,
}

#[derive(Args, Debug, Clone, Default, PartialEq)]
pub(crate) struct SimArgs {
    /// Seed of the simulated incident: the same seed replays the same incident [default: 2008].
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Simulated seconds per real second [default: 60].
    #[arg(long, value_parser = parse_speed)]
    pub(crate) speed: Option<f64>,
    /// The drill: a shipped scenario (cluster-a-2008, small-fast-fault,
    /// slow-second-fault) or a scenario file (docs/scenarios.md) [default: cluster-a-2008].
    #[arg(long, value_name = "NAME|FILE")]
    pub(crate) scenario: Option<String>,
    /// Number of simulated tenants [default: the scenario's, 2000 for cluster-a-2008].
    #[arg(long)]
    pub(crate) tenants: Option<u32>,
    /// Number of simulated mailboxes [default: the scenario's, 50000 for cluster-a-2008].
    #[arg(long)]
    pub(crate) mailboxes: Option<u64>,
    /// Milliseconds between ticks; each source is advanced once per tick [default: 1000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub(crate) tick_ms: Option<u64>,
    /// Start the simulated incident this many hours in (0..=72).
    #[arg(long, value_name = "HOURS", value_parser = clap::value_parser!(u32).range(0..=72))]
    pub(crate) skip: Option<u32>,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub(crate) enum SourceKind {
    /// The simulated Cluster A incident.
    Simulator,
    /// A real platform: Dovecot, Postfix, Prometheus, from [platform] in the
    /// config (docs/backends.md).
    Platform,
}

#[derive(Args, Debug)]
pub(crate) struct GatewayArgs {
    /// Address to serve gRPC on. Loopback by default.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub(crate) listen: SocketAddr,
    /// Where facts come from [default: platform when the config has a
    /// [platform] section, else simulator].
    #[arg(long, value_enum)]
    pub(crate) source: Option<SourceKind>,
    /// Where the war-room state (priorities, audit, status updates) is
    /// kept: a SQLite file, or a PostgreSQL database as
    /// postgres://USER:PASSWORD@HOST:PORT/DB [default: server.store in the
    /// config, else $XDG_DATA_HOME/warroom/state.sqlite].
    #[arg(
        long = "store",
        visible_alias = "state",
        env = "WARROOM_STORE",
        value_name = "PATH|URL"
    )]
    pub(crate) store: Option<String>,
    /// Where the built-in status page listens [default: server.page_listen
    /// in the config, else 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub(crate) page_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub(crate) sim: SimArgs,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ExportCommand {
    /// Every affected mailbox of one tenant (address, state, ETA p50, ETA
    /// p90, queued messages) to stdout.
    Tenant(ExportTenantArgs),
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExportFormat {
    Csv,
    Json,
}

#[derive(Args, Debug)]
pub(crate) struct ExportTenantArgs {
    /// The tenant: its id (t00042), one of its domains (acme-title.com) or
    /// its name, matched exactly (`warroom lookup` searches).
    #[arg(value_name = "TENANT")]
    pub(crate) tenant_id: String,
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub(crate) format: ExportFormat,
    /// Only these states (repeatable) [default: locked_out, reindex_pending,
    /// reindexing, failed].
    #[arg(long = "state", value_name = "STATE", value_parser = parse_state)]
    pub(crate) states: Vec<warroom::domain::MailboxState>,
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

pub(crate) fn parse_state(s: &str) -> Result<warroom::domain::MailboxState, String> {
    warroom::domain::MailboxState::parse(s).ok_or_else(|| {
        format!(
            "unknown state {s:?}; states: {}",
            warroom::domain::MailboxState::ALL
                .map(|m| m.as_str())
                .join(", ")
        )
    })
}

#[derive(Args, Debug)]
pub(crate) struct PublishArgs {
    /// investigating, identified, monitoring or resolved.
    #[arg(long, value_parser = parse_incident_state)]
    pub(crate) state: warroom::domain::IncidentState,
    /// At most 255 characters.
    #[arg(long)]
    pub(crate) title: String,
    /// At most 25,000 characters; "-" reads it from stdin. Placeholders such
    /// as {affected_mailboxes} are filled at publish time (docs/user-guide.md).
    #[arg(long)]
    pub(crate) body: String,
    /// When the next update comes: +90m, 2h, a UTC time today (23:30) or
    /// "2026-11-30 01:30". Required unless --state resolved.
    #[arg(long, value_name = "WHEN")]
    pub(crate) next: Option<String>,
    /// A component and its status, e.g. imap=major_outage (repeatable).
    #[arg(long = "component", value_name = "ID=STATUS")]
    pub(crate) components: Vec<String>,
    /// Print exactly what each channel would receive; publish nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Go ahead despite warnings (e.g. the state going back).
    #[arg(long)]
    pub(crate) confirm_warnings: bool,
    /// Publishing twice with one id publishes once [default: a new id].
    #[arg(long, value_name = "ID")]
    pub(crate) operation_id: Option<String>,
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

pub(crate) fn parse_incident_state(s: &str) -> Result<warroom::domain::IncidentState, String> {
    warroom::domain::IncidentState::parse(s).ok_or_else(|| {
        format!("unknown state {s:?}; states: investigating, identified, monitoring, resolved")
    })
}

#[derive(Args, Debug)]
pub(crate) struct LookupArgs {
    /// A mailbox address, a domain, or a tenant id or name (prefixes and
    /// misspellings are searched too).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub(crate) query: Option<String>,
    /// Look up every line of a file (`-`: standard input), one address,
    /// domain or tenant a line (blank lines and # comments skipped): one CSV
    /// row per line with its best match, or with --json one JSON object per
    /// line. Exit code 0: every line found, 1: some not found, 2: error.
    #[arg(long, value_name = "FILE|-")]
    pub(crate) file: Option<String>,
    /// Print JSON (one object with every match) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// At most this many matches.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) limit: u32,
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

#[derive(Args, Debug)]
pub(crate) struct SnapshotArgs {
    #[command(flatten)]
    pub(crate) console: ConsoleArgs,
    /// Width of the picture in columns (the console needs at least 60).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u16).range(60..=1000))]
    pub(crate) width: u16,
    /// Height of the picture in rows (the console needs at least 16).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u16).range(16..=1000))]
    pub(crate) height: u16,
}

pub(crate) fn parse_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !v.is_finite() || v <= 0.0 || v > 100_000.0 {
        return Err(format!(
            "speed must be above 0 and at most 100000 (got {s})"
        ));
    }
    Ok(v)
}
