//! `warroom`: the console (default), the gateway, and commands for scripts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use warroom::config::{Config, Paths};
use warroom::console::client::GatewayClient;
use warroom::console::keymap::{self, Keymap};
use warroom::console::theme::{self, Theme};
use warroom::domain::priority::Role;
use warroom::domain::redact::{Redactor, url_shown};
use warroom::gateway::publish::Publishing;
use warroom::gateway::{Access, Gateway, Hub};
use warroom::sources::Source;
use warroom::sources::simulator::{SimConfig, Simulator};

/// `print!` that returns the write error instead of panicking: a reader
/// that closes the pipe (`warroom export … | head -2`) ends the command
/// quietly, as with any Unix tool (see `main`).
macro_rules! out {
    ($($arg:tt)*) => {
        std::io::Write::write_fmt(&mut std::io::stdout(), format_args!($($arg)*))?
    };
}

/// `println!` that returns the write error instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        out!($($arg)*);
        out!("\n");
    }};
}

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
struct Cli {
    /// Config file [default: $XDG_CONFIG_HOME/warroom/config.toml].
    #[arg(long, global = true, env = "WARROOM_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    console: ConsoleArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
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
enum DrillCommand {
    /// Run scenarios to the end, headless, for several seeds; score every ETA
    /// served (each tenant's p50/p90, the reindex ETA, the queue drain ETA,
    /// sampled every simulated hour) against when that tenant, reindex or
    /// queue actually finished (docs/forecasting.md). Exit 1 when a phase
    /// misses the coverage goal.
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
    },
}

#[derive(Subcommand, Debug)]
enum KeymapCommand {
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
struct ConnectArgs {
    /// Gateway to connect to, e.g. http://127.0.0.1:50051. Without it, an
    /// embedded gateway runs the simulated incident.
    #[arg(long, env = "WARROOM_GATEWAY", value_name = "URL")]
    gateway: Option<String>,
    #[command(flatten)]
    sim: SimArgs,
}

/// How the screen looks and behaves: only for commands that draw it.
#[derive(Args, Debug, Clone, Default, PartialEq)]
struct ScreenArgs {
    /// Shipped keymap to start from: default, vim, emacs.
    #[arg(long, env = "WARROOM_KEYMAP", value_name = "NAME")]
    keymap: Option<String>,
    /// Colour theme: dark, light, high-contrast (NO_COLOR turns colour off).
    #[arg(long, env = "WARROOM_THEME", value_name = "NAME")]
    theme: Option<String>,
    /// Shortest time between frames drawn for new data, in ms (slow links:
    /// 2000 or more; keys always answer at once) [default: 1000].
    #[arg(long, env = "WARROOM_REFRESH_MS", value_name = "MS", value_parser = clap::value_parser!(u64).range(100..=60_000))]
    refresh_ms: Option<u64>,
    /// Act as a viewer whatever your token allows: actions that change
    /// war-room state are hidden and refused.
    #[arg(long)]
    read_only: bool,
}

#[derive(Args, Debug, Clone, Default, PartialEq)]
struct ConsoleArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    screen: ScreenArgs,
}

#[derive(Args, Debug, Clone, Default, PartialEq)]
struct SimArgs {
    /// Seed of the simulated incident: the same seed replays the same incident [default: 2008].
    #[arg(long)]
    seed: Option<u64>,
    /// Simulated seconds per real second [default: 60].
    #[arg(long, value_parser = parse_speed)]
    speed: Option<f64>,
    /// The drill: a shipped scenario (cluster-a-2008, small-fast-fault,
    /// slow-second-fault) or a scenario file (docs/scenarios.md) [default: cluster-a-2008].
    #[arg(long, value_name = "NAME|FILE")]
    scenario: Option<String>,
    /// Number of simulated tenants [default: the scenario's, 2000 for cluster-a-2008].
    #[arg(long)]
    tenants: Option<u32>,
    /// Number of simulated mailboxes [default: the scenario's, 50000 for cluster-a-2008].
    #[arg(long)]
    mailboxes: Option<u64>,
    /// Milliseconds between ticks; each source is advanced once per tick [default: 1000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    tick_ms: Option<u64>,
    /// Start the simulated incident this many hours in (0..=72).
    #[arg(long, value_name = "HOURS", value_parser = clap::value_parser!(u32).range(0..=72))]
    skip: Option<u32>,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum SourceKind {
    /// The simulated Cluster A incident.
    Simulator,
    /// A real platform: Dovecot, Postfix, Prometheus, from [platform] in the
    /// config (docs/backends.md).
    Platform,
}

#[derive(Args, Debug)]
struct GatewayArgs {
    /// Address to serve gRPC on. Loopback by default.
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Where facts come from [default: platform when the config has a
    /// [platform] section, else simulator].
    #[arg(long, value_enum)]
    source: Option<SourceKind>,
    /// The war-room state file (priorities, audit) [default: server.state
    /// in the config, else $XDG_DATA_HOME/warroom/state.sqlite].
    #[arg(long, env = "WARROOM_STATE", value_name = "PATH")]
    state: Option<PathBuf>,
    /// Where the built-in status page listens [default: server.page_listen
    /// in the config, else 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    page_listen: Option<SocketAddr>,
    #[command(flatten)]
    sim: SimArgs,
}

#[derive(Subcommand, Debug)]
enum ExportCommand {
    /// Every affected mailbox of one tenant (address, state, ETA p50, ETA
    /// p90, queued messages) to stdout.
    Tenant(ExportTenantArgs),
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum ExportFormat {
    Csv,
    Json,
}

#[derive(Args, Debug)]
struct ExportTenantArgs {
    /// The tenant: its id (t00042), one of its domains (acme-title.com) or
    /// its name, matched exactly (`warroom lookup` searches).
    #[arg(value_name = "TENANT")]
    tenant_id: String,
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    format: ExportFormat,
    /// Only these states (repeatable) [default: locked_out, reindex_pending,
    /// reindexing, failed].
    #[arg(long = "state", value_name = "STATE", value_parser = parse_state)]
    states: Vec<warroom::domain::MailboxState>,
    #[command(flatten)]
    connect: ConnectArgs,
}

fn parse_state(s: &str) -> Result<warroom::domain::MailboxState, String> {
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
struct PublishArgs {
    /// investigating, identified, monitoring or resolved.
    #[arg(long, value_parser = parse_incident_state)]
    state: warroom::domain::IncidentState,
    /// At most 255 characters.
    #[arg(long)]
    title: String,
    /// At most 25,000 characters; "-" reads it from stdin. Placeholders such
    /// as {affected_mailboxes} are filled at publish time (docs/user-guide.md).
    #[arg(long)]
    body: String,
    /// When the next update comes: +90m, 2h, a UTC time today (23:30) or
    /// "2026-11-30 01:30". Required unless --state resolved.
    #[arg(long, value_name = "WHEN")]
    next: Option<String>,
    /// A component and its status, e.g. imap=major_outage (repeatable).
    #[arg(long = "component", value_name = "ID=STATUS")]
    components: Vec<String>,
    /// Print exactly what each channel would receive; publish nothing.
    #[arg(long)]
    dry_run: bool,
    /// Go ahead despite warnings (e.g. the state going back).
    #[arg(long)]
    confirm_warnings: bool,
    /// Publishing twice with one id publishes once [default: a new id].
    #[arg(long, value_name = "ID")]
    operation_id: Option<String>,
    #[command(flatten)]
    connect: ConnectArgs,
}

fn parse_incident_state(s: &str) -> Result<warroom::domain::IncidentState, String> {
    warroom::domain::IncidentState::parse(s).ok_or_else(|| {
        format!("unknown state {s:?}; states: investigating, identified, monitoring, resolved")
    })
}

#[derive(Args, Debug)]
struct LookupArgs {
    /// A mailbox address, a domain, or a tenant id or name (prefixes and
    /// misspellings are searched too).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    query: Option<String>,
    /// Look up every line of a file (`-`: standard input), one address,
    /// domain or tenant a line (blank lines and # comments skipped): one CSV
    /// row per line with its best match, or with --json one JSON object per
    /// line. Exit code 0: every line found, 1: some not found, 2: error.
    #[arg(long, value_name = "FILE|-")]
    file: Option<String>,
    /// Print JSON (one object with every match) instead of text.
    #[arg(long)]
    json: bool,
    /// At most this many matches.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    limit: u32,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Args, Debug)]
struct SnapshotArgs {
    #[command(flatten)]
    console: ConsoleArgs,
    /// Width of the picture in columns (the console needs at least 60).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u16).range(60..=1000))]
    width: u16,
    /// Height of the picture in rows (the console needs at least 16).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u16).range(16..=1000))]
    height: u16,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !v.is_finite() || v <= 0.0 || v > 100_000.0 {
        return Err(format!(
            "speed must be above 0 and at most 100000 (got {s})"
        ));
    }
    Ok(v)
}

/// Flags win over the config file, which wins over the defaults.
struct Demo {
    scenario: warroom::sources::simulator::scenario::Scenario,
    seed: u64,
    speed: f64,
    tenants: u32,
    mailboxes: u64,
    tick: Duration,
    skip_hours: u32,
}

fn demo(sim: &SimArgs, cfg: &Config) -> anyhow::Result<Demo> {
    let d = cfg.demo.clone().unwrap_or_default();
    let scenario = match sim.scenario.as_ref().or(d.scenario.as_ref()) {
        Some(s) => warroom::sources::simulator::scenario::Scenario::load(s)
            .map_err(|e| anyhow::anyhow!("invalid scenario: {e}"))?,
        None => Default::default(),
    };
    let demo = Demo {
        tenants: sim.tenants.or(d.tenants).unwrap_or(scenario.scale.tenants),
        mailboxes: sim
            .mailboxes
            .or(d.mailboxes)
            .unwrap_or(scenario.scale.mailboxes),
        scenario,
        seed: sim.seed.or(d.seed).unwrap_or(2008),
        speed: sim.speed.or(d.speed).unwrap_or(60.0),
        tick: Duration::from_millis(sim.tick_ms.or(d.tick_ms).unwrap_or(1_000)),
        skip_hours: sim.skip.unwrap_or(0),
    };
    let step = demo.speed * demo.tick.as_secs_f64();
    if step > 86_400.0 {
        anyhow::bail!(
            "--speed {} with --tick-ms {} makes one tick {step:.0} simulated seconds; at most one day (86400) per tick",
            demo.speed,
            demo.tick.as_millis()
        );
    }
    Ok(demo)
}

/// Where a gateway's facts come from, and how its clock runs.
struct Feed {
    source: Box<dyn Source>,
    /// Wall-clock time between ticks.
    tick: Duration,
    /// Source seconds per wall-clock second.
    speed: f64,
}

/// The simulated incident, moved `skip_hours` in.
async fn simulator_feed(d: &Demo) -> anyhow::Result<Feed> {
    let cfg = SimConfig {
        seed: d.seed,
        tenants: d.tenants,
        mailboxes: d.mailboxes,
        ..SimConfig::of(d.scenario.clone())
    };
    let skip_steps = d.skip_hours as usize * 60;
    let source = tokio::task::spawn_blocking(move || {
        let mut sim = Simulator::new(cfg)?;
        for _ in 0..skip_steps {
            sim.advance(60.0);
        }
        Ok::<_, String>(sim)
    })
    .await?
    .map_err(|e| anyhow::anyhow!(e))?;
    Ok(Feed {
        source: Box::new(source),
        tick: d.tick,
        speed: d.speed,
    })
}

/// A real platform (Dovecot, Postfix, Prometheus) from `[platform]`.
fn platform_feed(cfg: &Config, state: &std::path::Path) -> anyhow::Result<Feed> {
    use warroom::sources::dovecot::Doveadm;
    use warroom::sources::platform::{DovecotSpec, PlatformConfig, PlatformSource, TenantSpec};
    use warroom::sources::postfix::{PostfixStatus, Postqueue};
    use warroom::sources::prometheus::Prometheus;
    use warroom::sources::reindex::Limits;
    let p = cfg.platform.clone().ok_or_else(|| {
        anyhow::anyhow!(
            "--source platform needs a [platform] section in the config (docs/backends.md)"
        )
    })?;
    let timeout = Duration::from_secs(10);
    let dovecot = match &p.dovecot {
        None => None,
        Some(d) => {
            let key = warroom::config::api_key(
                "platform.dovecot",
                d.api_key_env.as_deref(),
                d.api_key_file.as_deref(),
            )
            .map_err(anyhow::Error::msg)?;
            Some(DovecotSpec {
                client: Doveadm::new(&d.url, &key, timeout)
                    .map_err(|e| anyhow::anyhow!("[platform.dovecot] {e}"))?,
                probes_per_poll: d.probes_per_poll.unwrap_or(50),
                limits: Limits {
                    max_concurrency: d.max_concurrency.unwrap_or(4),
                    ..Limits::default()
                },
            })
        }
    };
    let postqueue = match &p.postfix {
        None => None,
        Some(pf) => Some(
            Postqueue::new(
                pf.command
                    .clone()
                    .unwrap_or_else(|| vec!["postqueue".into(), "-j".into()]),
                timeout,
            )
            .map_err(|e| anyhow::anyhow!("[platform.postfix] {e}"))?,
        ),
    };
    // Postfix' liveness is asked of Postfix itself: as root, `postqueue -j`
    // lists the queue with Postfix stopped.
    let postfix_status = match (&p.postfix, &postqueue) {
        (Some(pf), Some(pq)) => Some(
            match &pf.status_command {
                Some(cmd) => PostfixStatus::new(cmd.clone(), timeout),
                None => PostfixStatus::for_postqueue(pq, timeout),
            }
            .map_err(|e| anyhow::anyhow!("[platform.postfix] {e}"))?,
        ),
        _ => None,
    };
    let prometheus = match &p.prometheus {
        None => None,
        Some(pr) => Some(
            Prometheus::new(&pr.url, timeout)
                .map_err(|e| anyhow::anyhow!("[platform.prometheus] {e}"))?,
        ),
    };
    let source = PlatformSource::start(
        PlatformConfig {
            name: p.name.clone().unwrap_or_else(|| "Mail platform".into()),
            tenants: p
                .tenants
                .iter()
                .map(|t| TenantSpec {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    domains: t.domains.clone(),
                    contacts: t.contacts.clone(),
                })
                .collect(),
            dovecot,
            postqueue,
            postfix_status,
            prometheus,
            poll: Duration::from_millis(p.poll_ms.unwrap_or(5_000)),
            // The incident's journal: a second connection to the state file.
            store: Some(warroom::store::open(state).map_err(|e| anyhow::anyhow!("{e}"))?),
        },
        &tokio::runtime::Handle::current(),
    )
    .map_err(|e| anyhow::anyhow!("[platform] {e}"))?;
    Ok(Feed {
        source: Box::new(source),
        tick: Duration::from_secs(1),
        speed: 1.0,
    })
}

/// Where a gateway listens (gRPC and its status page), how the page is
/// shown, and the bounds it keeps.
struct Listen<'a> {
    grpc: SocketAddr,
    page: SocketAddr,
    page_url: Option<&'a str>,
    limits: warroom::gateway::Limits,
}

async fn start_gateway(
    at: Listen<'_>,
    feed: Feed,
    store: Box<dyn warroom::store::Store>,
    access: Access,
    publishing: Publishing,
) -> anyhow::Result<Gateway> {
    let Listen {
        grpc: listen,
        page: page_listen,
        page_url,
        limits,
    } = at;
    let hub = Hub::with_store(
        feed.source,
        store,
        feed.speed * feed.tick.as_secs_f64(),
        feed.speed,
    )?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    hub.set_publishing(publishing);
    let page = tokio::net::TcpListener::bind(page_listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve the status page on {page_listen}: {e}"))?;
    // A first tick so the first snapshot already has rates and ETAs.
    hub.tick();
    let mut gw = Gateway::serve_limited(listener, hub, Some(feed.tick), access, limits).await?;
    gw.serve_page_as(page, page_url)?;
    Ok(gw)
}

/// The gateway's bounds: `[server]` in the config over the defaults (the
/// ranges are checked when the config is read).
fn gateway_limits(cfg: &Config) -> warroom::gateway::Limits {
    let s = cfg.server.clone().unwrap_or_default();
    let d = warroom::gateway::Limits::default();
    let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
    warroom::gateway::Limits {
        max_connections: s.max_connections.unwrap_or(d.max_connections),
        max_connections_per_peer: s
            .max_connections_per_peer
            .unwrap_or(d.max_connections_per_peer),
        handshake_timeout: ms(s.handshake_timeout_ms, d.handshake_timeout),
        keepalive_interval: ms(s.keepalive_interval_ms, d.keepalive_interval),
        keepalive_timeout: ms(s.keepalive_timeout_ms, d.keepalive_timeout),
        max_watch_streams: s.max_watch_streams.unwrap_or(d.max_watch_streams),
        max_watch_streams_per_connection: s
            .max_watch_streams_per_connection
            .unwrap_or(d.max_watch_streams_per_connection),
        watch_stall_timeout: ms(s.watch_stall_timeout_ms, d.watch_stall_timeout),
        page_request_timeout: ms(s.page_request_timeout_ms, d.page_request_timeout),
    }
}

/// Raises the open-file limit to its hard limit and says whether the
/// connection caps fit in it: the caps, not EMFILE, must be what refuses.
fn raise_open_files(limits: &warroom::gateway::Limits) {
    match warroom::gateway::conn::raise_nofile_limit() {
        Ok((before, after)) => {
            if before != after {
                tracing::info!("open-file limit raised from {before} to {after}");
            }
            // gRPC and page connections, plus the state file, logs and
            // backends.
            let needed = 2 * limits.max_connections as u64 + 256;
            if after < needed {
                tracing::warn!(
                    "the open-file limit ({after}) is below what max_connections ({}) needs ({needed}): raise it (ulimit -n, LimitNOFILE=) or lower server.max_connections",
                    limits.max_connections
                );
            }
        }
        Err(e) => tracing::warn!("cannot raise the open-file limit: {e}"),
    }
}

/// The channels and components from the gateway's config. Secrets are read
/// here, at start: a missing key stops the gateway with a clear message
/// rather than failing every delivery later.
fn publishing(cfg: &Config) -> anyhow::Result<Publishing> {
    let server = cfg.server.clone().unwrap_or_default();
    let mut p = Publishing::default();
    if let Some(c) = &server.components {
        p.components = c.iter().map(|c| (c.id.clone(), c.name.clone())).collect();
    }
    let timeout = Duration::from_secs(10);
    if let Some(w) = &server.webhook {
        p.channels.push(std::sync::Arc::new(
            warroom::channels::webhook::Webhook::new(&w.url, timeout)
                .map_err(anyhow::Error::msg)?,
        ));
    }
    if let Some(e) = &server.email {
        use warroom::channels::email::{Email, EmailConfig};
        let (host, port) = e
            .smtp
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_string(), p.parse().ok()?)))
            .ok_or_else(|| anyhow::anyhow!("[server.email] smtp {:?} must be host:port", e.smtp))?;
        p.channels.push(std::sync::Arc::new(
            Email::new(EmailConfig {
                smtp_host: host,
                smtp_port: port,
                from: e.from.clone(),
                timeout,
            })
            .map_err(|e| anyhow::anyhow!("[server.email] {e}"))?,
        ));
    }
    if let Some(sp) = &server.statuspage {
        use warroom::channels::statuspage::{DEFAULT_BASE_URL, Statuspage, StatuspageConfig};
        let api_key = warroom::config::api_key(
            "server.statuspage",
            sp.api_key_env.as_deref(),
            sp.api_key_file.as_deref(),
        )
        .map_err(anyhow::Error::msg)?;
        p.channels.push(std::sync::Arc::new(
            Statuspage::new(StatuspageConfig {
                base_url: sp
                    .base_url
                    .clone()
                    .unwrap_or_else(|| DEFAULT_BASE_URL.into()),
                page_id: sp.page_id.clone(),
                api_key,
                components: sp.components.clone(),
                timeout,
            })
            .map_err(|e| anyhow::anyhow!("[server.statuspage] {e}"))?,
        ));
    }
    Ok(p)
}

/// A fresh secret for the embedded demo's local admin.
fn random_token() -> anyhow::Result<String> {
    warroom::random::random_hex(24)
        .map_err(|e| anyhow::anyhow!("cannot read /dev/urandom for the demo's token: {e}"))
}

/// The token this console presents: WARROOM_TOKEN, else the config's
/// token_file, else its token.
fn console_token(cfg: &Config) -> anyhow::Result<Option<String>> {
    if let Ok(t) = std::env::var("WARROOM_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(Some(t.trim().to_string()));
    }
    if let Some(file) = &cfg.token_file {
        return warroom::config::read_secret(file)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("token_file: {e}"));
    }
    Ok(cfg.token.clone())
}

/// The gateway's identities from its config; anonymous reads default to
/// on only while it listens on loopback.
fn gateway_access(cfg: &Config, listen: SocketAddr) -> anyhow::Result<Access> {
    let server = cfg.server.clone().unwrap_or_default();
    let mut tokens = Vec::new();
    for t in &server.tokens {
        let role = Role::parse(&t.role)
            .ok_or_else(|| anyhow::anyhow!("token of {:?}: unknown role {:?}", t.name, t.role))?;
        tokens.push((
            t.secret().map_err(anyhow::Error::msg)?,
            t.name.clone(),
            role,
        ));
    }
    let anonymous_read = server
        .anonymous_read
        .unwrap_or_else(|| listen.ip().is_loopback());
    Access::new(tokens, anonymous_read).map_err(anyhow::Error::msg)
}

/// Every secret the configuration names, read as the gateway and the
/// console read them, for the log writer: whatever a library logs (an HTTP
/// client's error names the URL it failed to reach), no line holds one.
fn secrets(cfg: &Config, gateway_flag: Option<&str>) -> Redactor {
    let mut r = Redactor::new();
    if let Ok(Some(t)) = console_token(cfg) {
        r = r.secret(&t);
    }
    for url in gateway_flag.into_iter().chain(cfg.gateway.as_deref()) {
        r = r.url_userinfo(url);
    }
    if let Some(server) = &cfg.server {
        for t in &server.tokens {
            if let Ok(secret) = t.secret() {
                r = r.secret(&secret);
            }
        }
        if let Some(w) = &server.webhook {
            r = r.secret_url(&w.url);
            if let Ok(u) = reqwest::Url::parse(&w.url) {
                r = r.secret_url(u.as_str());
            }
        }
        if let Some(sp) = &server.statuspage
            && let Ok(key) = warroom::config::api_key(
                "server.statuspage",
                sp.api_key_env.as_deref(),
                sp.api_key_file.as_deref(),
            )
        {
            r = r.secret(&key);
        }
    }
    if let Some(p) = &cfg.platform {
        if let Some(d) = &p.dovecot {
            r = r.url_userinfo(&d.url);
            if let Ok(key) = warroom::config::api_key(
                "platform.dovecot",
                d.api_key_env.as_deref(),
                d.api_key_file.as_deref(),
            ) {
                r = r.secret(&key);
            }
        }
        if let Some(pr) = &p.prometheus {
            r = r.url_userinfo(&pr.url);
        }
    }
    r
}

/// A log writer that writes each line with every configured secret
/// replaced (tracing's formatter writes one event in one call).
#[derive(Clone)]
struct Redacting<M> {
    inner: M,
    redactor: std::sync::Arc<Redactor>,
}

struct RedactingWriter<W> {
    inner: W,
    redactor: std::sync::Arc<Redactor>,
}

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for Redacting<M>
{
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.inner.make_writer(),
            redactor: self.redactor.clone(),
        }
    }
}

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner
            .write_all(self.redactor.redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn log_to_file(
    paths: &Paths,
    redactor: Redactor,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    // Opened here rather than by tracing_appender, which panics when the
    // file cannot be created: no log file is no reason to stop the console.
    std::fs::create_dir_all(&paths.state_dir).ok()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.log_file)
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    tracing_subscriber::fmt()
        .with_writer(Redacting {
            inner: writer,
            redactor: std::sync::Arc::new(redactor),
        })
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARROOM_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .try_init()
        .ok()?;
    Some(guard)
}

/// The keymap to use: the shipped base, then the user's file over it. A bad
/// user file does not stop the console: it runs on the shipped keymap and
/// says why.
fn resolve_keymap(
    args: &ScreenArgs,
    cfg: &Config,
    paths: &Paths,
) -> anyhow::Result<(Keymap, Option<String>)> {
    let base = args
        .keymap
        .clone()
        .or_else(|| cfg.keymap.clone())
        .unwrap_or_else(|| "default".into());
    let shipped = Keymap::builtin(&base).map_err(|e| anyhow::anyhow!("--keymap: {e}"))?;
    let user = match std::fs::read_to_string(&paths.keymap_file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((shipped, None)),
        Err(e) => {
            let why = format!(
                "{}: cannot read ({e}); using the {base} keymap",
                paths.keymap_file.display()
            );
            return Ok((shipped, Some(why)));
        }
    };
    let base_text = keymap::builtin_text(&base)
        .map_err(anyhow::Error::msg)?
        .to_string();
    match Keymap::build(
        &format!("{base} + keymap.toml"),
        &[
            (format!("keymaps/{base}.toml"), base_text),
            (paths.keymap_file.display().to_string(), user),
        ],
    ) {
        Ok(k) => Ok((k, None)),
        Err(e) => Ok((shipped, Some(format!("using the {base} keymap: {e}")))),
    }
}

fn resolve_theme(args: &ScreenArgs, cfg: &Config) -> anyhow::Result<Theme> {
    let name = args
        .theme
        .clone()
        .or_else(|| cfg.theme.clone())
        .unwrap_or_else(|| "dark".into());
    Theme::named(&name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown theme {name:?}; themes: {}",
            warroom::config::THEMES.join(", ")
        )
    })
}

fn gateway_url(args: &ConnectArgs, cfg: &Config) -> Option<String> {
    args.gateway.clone().or_else(|| cfg.gateway.clone())
}

/// A client of the configured gateway, or of an embedded demo gateway
/// started on a loopback port (returned, so the caller stops it when done).
/// In the demo the local user is its admin, with a token made up for this
/// run; its decisions last as long as the run.
async fn gateway_or_demo(
    args: &ConnectArgs,
    cfg: &Config,
) -> anyhow::Result<(GatewayClient, Option<Gateway>)> {
    Ok(match gateway_url(args, cfg) {
        Some(url) => (
            GatewayClient::with_token(&url, console_token(cfg)?.as_deref())?,
            None,
        ),
        None => {
            let token = random_token()?;
            let user = std::env::var("USER")
                .ok()
                .filter(|u| !u.trim().is_empty() && !u.chars().any(char::is_control))
                .unwrap_or_else(|| "local user".into());
            let access = Access::new(vec![(token.clone(), user, Role::Admin)], true)
                .map_err(anyhow::Error::msg)?;
            let gw = start_gateway(
                Listen {
                    grpc: SocketAddr::from(([127, 0, 0, 1], 0)),
                    page: SocketAddr::from(([127, 0, 0, 1], 0)),
                    page_url: None,
                    limits: gateway_limits(cfg),
                },
                simulator_feed(&demo(&args.sim, cfg)?).await?,
                warroom::store::in_memory(),
                access,
                Publishing::default(),
            )
            .await?;
            (
                GatewayClient::with_token(&gw.url(), Some(&token))?,
                Some(gw),
            )
        }
    })
}

async fn console(args: ConsoleArgs, cfg: Config, paths: Paths) -> anyhow::Result<i32> {
    let theme = resolve_theme(&args.screen, &cfg)?;
    let (keymap, warning) = resolve_keymap(&args.screen, &cfg, &paths)?;
    // Logs go to a file: the screen belongs to the TUI.
    let _guard = log_to_file(&paths, secrets(&cfg, args.connect.gateway.as_deref()));
    if let Some(w) = &warning {
        tracing::warn!("{w}");
    }
    let (client, embedded) = gateway_or_demo(&args.connect, &cfg).await?;
    let code = warroom::console::run(warroom::console::Options {
        client,
        read_only: args.screen.read_only,
        simulated_hint: embedded.is_some(),
        keymap,
        theme,
        mouse: cfg.mouse.unwrap_or(false),
        startup_warning: warning,
        refresh: Duration::from_millis(args.screen.refresh_ms.or(cfg.refresh_ms).unwrap_or(1_000)),
        draft_path: paths.draft_file.clone(),
        bell: cfg.bell.unwrap_or(false),
    })
    .await;
    if let Some(gw) = embedded {
        gw.stop().await;
    }
    code
}

async fn gateway(args: GatewayArgs, cfg: Config, paths: Paths) -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(Redacting {
            inner: std::io::stderr,
            redactor: std::sync::Arc::new(secrets(&cfg, None)),
        })
        // Colour only on a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARROOM_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    if !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "listening beyond loopback: anyone who can reach this address can read the war room");
    }
    let access = gateway_access(&cfg, args.listen)?;
    let state = args
        .state
        .clone()
        .or_else(|| cfg.server.as_ref().and_then(|s| s.state.clone()))
        .unwrap_or_else(|| paths.state_file.clone());
    let store = warroom::store::open(&state).map_err(|e| anyhow::anyhow!("{e}"))?;
    let page_listen = args
        .page_listen
        .or_else(|| cfg.server.as_ref().and_then(|s| s.page_listen))
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    // A [platform] section means the platform: a gateway that silently ran
    // the simulator beside a configured platform would mislead the war room.
    let source = args.source.unwrap_or(if cfg.platform.is_some() {
        SourceKind::Platform
    } else {
        SourceKind::Simulator
    });
    let feed = match source {
        SourceKind::Simulator => simulator_feed(&demo(&args.sim, &cfg)?).await?,
        SourceKind::Platform => platform_feed(&cfg, &state)?,
    };
    let simulated = matches!(source, SourceKind::Simulator);
    let limits = gateway_limits(&cfg);
    raise_open_files(&limits);
    let gw = start_gateway(
        Listen {
            grpc: args.listen,
            page: page_listen,
            page_url: cfg.server.as_ref().and_then(|s| s.page_url.as_deref()),
            limits,
        },
        feed,
        store,
        access,
        publishing(&cfg)?,
    )
    .await?;
    eprintln!(
        "warroom gateway serving warroom.v1 on {} (source: {}; state: {})",
        gw.url(),
        if simulated {
            "simulator, SIMULATED"
        } else {
            "platform"
        },
        state.display()
    );
    let mut signals = warroom::console::terminal::Signals::new()?;
    tokio::select! {
        r = gw.wait() => r?,
        _ = signals.recv() => {}
    }
    Ok(0)
}

async fn snapshot(args: SnapshotArgs, cfg: Config) -> anyhow::Result<i32> {
    // The picture has no colour and takes no keys, but a theme or keymap
    // that does not exist is a mistake worth saying, as the console does.
    resolve_theme(&args.console.screen, &cfg)?;
    if let Some(k) = args.console.screen.keymap.as_ref().or(cfg.keymap.as_ref()) {
        Keymap::builtin(k).map_err(|e| anyhow::anyhow!("--keymap: {e}"))?;
    }
    let (client, embedded) = gateway_or_demo(&args.console.connect, &cfg).await?;
    let text = warroom::console::snapshot::text(&client, args.width, args.height).await;
    if let Some(gw) = embedded {
        gw.stop().await;
    }
    out!("{}", text?);
    Ok(0)
}

async fn lookup(args: LookupArgs, cfg: Config) -> anyhow::Result<i32> {
    use warroom::console::lookup;
    let Some(query) = args.query.as_deref() else {
        return lookup_file(&args, cfg).await;
    };
    // Refuse a bad query before starting anything.
    if let Err(why) = lookup::check_query(query) {
        anyhow::bail!("{why}");
    }
    let (client, embedded) = gateway_or_demo(&args.connect, &cfg).await?;
    let answer = lookup::ask(&client, query, args.limit).await;
    if let Some(gw) = embedded {
        gw.stop().await;
    }
    let answer = answer?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&answer)?);
    } else if answer.matches.is_empty() {
        eprintln!(
            "warroom: nothing matches {:?}: no such mailbox, domain or tenant",
            answer.query
        );
    } else {
        out!("{}", lookup::text(&answer));
    }
    Ok(if answer.matches.is_empty() { 1 } else { 0 })
}

/// `warroom lookup --file`: every line over one streaming call, printed as
/// it is answered.
async fn lookup_file(args: &LookupArgs, cfg: Config) -> anyhow::Result<i32> {
    use warroom::console::lookup;
    let path = args.file.as_deref().unwrap_or("-");
    let input: Box<dyn std::io::BufRead + Send> = if path == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let f =
            std::fs::File::open(path).map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
        Box::new(std::io::BufReader::new(f))
    };
    let (client, embedded) = gateway_or_demo(&args.connect, &cfg).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut missing = 0usize;
    let limit = if args.json { args.limit } else { 1 };
    let asked = {
        use std::io::Write;
        if !args.json {
            write!(out, "{}\r\n", lookup::BULK_CSV_HEADER)?;
        }
        let mut record = String::new();
        lookup::ask_many(&client, input, limit, |row| {
            missing += usize::from(row.matches.is_empty());
            if args.json {
                serde_json::to_writer(&mut out, &row)?;
                out.write_all(b"\n")
            } else {
                record.clear();
                lookup::bulk_csv(&row, &mut record);
                out.write_all(record.as_bytes())
            }
        })
        .await
    };
    if let Some(gw) = embedded {
        gw.stop().await;
    }
    std::io::Write::flush(&mut out)?;
    let asked = asked?;
    if missing > 0 {
        eprintln!("warroom: {missing} of {asked} lines matched nothing");
    }
    Ok(if missing > 0 { 1 } else { 0 })
}

/// `warroom publish`: the same draft the composer builds, linted locally
/// for what needs no gateway (the time), then previewed or published.
async fn publish(args: PublishArgs, cfg: Config) -> anyhow::Result<i32> {
    use warroom::console::{client, composer};
    use warroom::domain::sanitize::sanitize;
    let body = if args.body == "-" {
        let mut b = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut b)
            .map_err(|e| anyhow::anyhow!("cannot read the body from stdin: {e}"))?;
        b
    } else {
        args.body.clone()
    };
    let draft = composer::DraftFile {
        state: args.state.as_str().into(),
        title: args.title.clone(),
        body,
        components: args.components.join(","),
        next: args.next.clone().unwrap_or_default(),
        operation_id: args
            .operation_id
            .clone()
            .unwrap_or_else(composer::operation_id),
        saved_at: chrono::Utc::now(),
    };
    let (gw, embedded) = gateway_or_demo(&args.connect, &cfg).await?;
    // "+30m" and "23:30" are on the incident's clock, as in the composer.
    let now = client::source_clock(&gw).await?;
    let code = match draft.to_pb(now) {
        Err((_, why)) => {
            eprintln!("warroom: not published: {why}");
            Ok(1)
        }
        Ok(request) if args.dry_run => preview_to_stdout(&gw, request, now).await,
        Ok(request) => match client::publish(
            &gw,
            request,
            draft.operation_id.clone(),
            args.confirm_warnings,
        )
        .await
        {
            Ok(u) => {
                outln!("published {} ({} deliveries)", u.id, u.deliveries.len());
                Ok(0)
            }
            // Not published, whoever said no (the draft, the role, an
            // unreachable gateway): 1, as the user guide says.
            Err((why, findings)) => {
                if !findings.is_empty() && findings.iter().all(|f| !f.error) {
                    // The gateway names the API's field; here it is a flag.
                    eprintln!(
                        "warroom: not published: {} to confirm; publish again with \
                         --confirm-warnings to go ahead",
                        match findings.len() {
                            1 => "1 warning".to_string(),
                            n => format!("{n} warnings"),
                        }
                    );
                } else {
                    eprintln!("warroom: not published: {}", sanitize(&why));
                }
                for f in &findings {
                    if f.field == client::MORE_FINDINGS {
                        eprintln!(
                            "  {} (warroom publish --dry-run lists them all)",
                            sanitize(f.message.trim_end_matches("; a preview lists them all"))
                        );
                        continue;
                    }
                    eprintln!(
                        "  {} {}: {}",
                        if f.error { "error" } else { "warning" },
                        sanitize(&f.field),
                        sanitize(&f.message)
                    );
                }
                Ok(1)
            }
        },
    };
    if let Some(g) = embedded {
        g.stop().await;
    }
    code
}

async fn preview_to_stdout(
    gw: &GatewayClient,
    draft: warroom::api::pb::StatusUpdateDraft,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<i32> {
    let next = warroom::api::from_ts(draft.next_update_at.as_ref());
    let (findings, previews) = warroom::console::client::preview(gw, draft)
        .await
        .map_err(anyhow::Error::msg)?;
    match next {
        Some(t) => outln!(
            "next update: {} UTC (in {})",
            t.format("%Y-%m-%d %H:%M"),
            warroom::domain::format::duration(t - now)
        ),
        None => outln!("next update: none (resolved)"),
    }
    let errors = findings.iter().filter(|f| f.error).count();
    for f in &findings {
        eprintln!(
            "{} {}: {}",
            if f.error { "error" } else { "warning" },
            f.field,
            f.message
        );
    }
    for (channel, content_type, content) in &previews {
        outln!("\n== {channel} ({content_type})");
        for line in content.lines() {
            outln!("{}", warroom::domain::sanitize::sanitize(line));
        }
    }
    outln!("\n(dry run: nothing published)");
    Ok(if errors > 0 { 1 } else { 0 })
}

async fn report(args: ConnectArgs, cfg: Config) -> anyhow::Result<i32> {
    let (client, embedded) = gateway_or_demo(&args, &cfg).await?;
    let text = warroom::console::report::fetch(&client).await;
    if let Some(gw) = embedded {
        gw.stop().await;
    }
    out!("{}", text?);
    Ok(0)
}

async fn export(cmd: ExportCommand, cfg: Config) -> anyhow::Result<i32> {
    use warroom::console::export;
    let ExportCommand::Tenant(args) = cmd;
    let (client, embedded) = gateway_or_demo(&args.connect, &cfg).await?;
    let states = if args.states.is_empty() {
        warroom::domain::MailboxState::AFFECTED.to_vec()
    } else {
        args.states.clone()
    };
    let rows = match export::tenant_of(&client, &args.tenant_id).await {
        Ok(Some(id)) => export::fetch(&client, &id, &states).await.map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    if let Some(gw) = embedded {
        gw.stop().await;
    }
    let Some(rows) = rows? else {
        eprintln!(
            "warroom: no tenant matches {:?}: give a tenant id, a domain or a tenant's name (`warroom lookup` searches)",
            args.tenant_id
        );
        return Ok(1);
    };
    match args.format {
        ExportFormat::Csv => out!("{}", export::csv(&rows)),
        ExportFormat::Json => outln!("{}", serde_json::to_string_pretty(&rows)?),
    }
    Ok(0)
}

fn info(args: ConsoleArgs, cfg: &Config, paths: &Paths) -> anyhow::Result<i32> {
    let exists = |p: &std::path::Path| if p.exists() { "" } else { " (not present)" };
    let (keymap, warning) = resolve_keymap(&args.screen, cfg, paths)?;
    resolve_theme(&args.screen, cfg)?;
    outln!(
        "config file:  {}{}",
        paths.config_file.display(),
        exists(&paths.config_file)
    );
    outln!(
        "keymap file:  {}{}",
        paths.keymap_file.display(),
        exists(&paths.keymap_file)
    );
    outln!("keymap:       {}", keymap.name());
    if let Some(w) = warning {
        outln!("keymap error: {w}");
    }
    outln!(
        "theme:        {}{}",
        args.screen
            .theme
            .clone()
            .or_else(|| cfg.theme.clone())
            .unwrap_or_else(|| "dark".into()),
        if theme::no_color_env() {
            " (NO_COLOR set: no colour)"
        } else {
            ""
        }
    );
    outln!("log file:     {}", paths.log_file.display());
    outln!("state dir:    {}", paths.state_dir.display());
    outln!(
        "gateway state: {} (for `warroom gateway`)",
        cfg.server
            .as_ref()
            .and_then(|s| s.state.clone())
            .unwrap_or_else(|| paths.state_file.clone())
            .display()
    );
    let demo = gateway_url(&args.connect, cfg).is_none();
    outln!(
        "token:        {}",
        match console_token(cfg) {
            // The embedded demo's gateway is yours: no token needed.
            _ if demo => "not needed (the embedded demo makes you its admin)".to_string(),
            Ok(Some(_)) => "set (not shown)".to_string(),
            Ok(None) => "none (anonymous: read only)".to_string(),
            Err(e) => format!("error: {e}"),
        }
    );
    match gateway_url(&args.connect, cfg) {
        Some(url) => outln!("gateway:      {}", url_shown(&url)),
        None => outln!("gateway:      embedded demo (simulated incident on a loopback port)"),
    }
    Ok(0)
}

async fn drill(cmd: DrillCommand) -> anyhow::Result<i32> {
    use warroom::domain::calibration::{meets_goal, table};
    use warroom::sources::simulator::{drill, scenario};
    let DrillCommand::Calibrate {
        scenario: names,
        seeds,
        json,
    } = cmd;
    let names: Vec<String> = if names.is_empty() {
        scenario::SHIPPED
            .iter()
            .map(|(n, ..)| n.to_string())
            .collect()
    } else {
        names
    };
    let scenarios = names
        .iter()
        .map(|n| scenario::Scenario::load(n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("invalid scenario: {e}"))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scores = tokio::task::spawn_blocking(move || drill::calibrate(&scenarios, seeds, threads))
        .await?
        .map_err(anyhow::Error::msg)?;
    if json {
        for s in &scores {
            outln!("{}", serde_json::to_string(s)?);
        }
    } else {
        out!("{}", table(&scores));
    }
    let missed = scores
        .iter()
        .filter(|s| s.forecaster == warroom::domain::calibration::Forecaster::Warroom)
        .any(|s| !meets_goal(s));
    Ok(if missed { 1 } else { 0 })
}

fn keymap_cmd(cmd: KeymapCommand) -> anyhow::Result<i32> {
    match cmd {
        KeymapCommand::Check { file } => {
            let text = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
            let text = String::from_utf8(text)
                .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", file.display()))?;
            let base = keymap::builtin_text("default")
                .map_err(anyhow::Error::msg)?
                .to_string();
            match Keymap::build(
                "check",
                &[
                    ("keymaps/default.toml".into(), base),
                    (file.display().to_string(), text),
                ],
            ) {
                Ok(_) => {
                    outln!("{}: ok", file.display());
                    Ok(0)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(1)
                }
            }
        }
        KeymapCommand::Show { name } => {
            let text = keymap::builtin_text(&name).map_err(anyhow::Error::msg)?;
            out!("{text}");
            Ok(0)
        }
    }
}

/// `--gateway URL snapshot --width 80` as `snapshot --gateway URL --width
/// 80`: the command (and a subcommand of it) first, then every option in
/// the order given. `--config` may stay anywhere, but moves too.
fn options_after_command(args: &[String]) -> Vec<String> {
    use clap::CommandFactory;
    let cli = Cli::command();
    let at = args.iter().position(|a| cli.find_subcommand(a).is_some());
    let Some(at) = at else {
        return args.to_vec();
    };
    let mut command = vec![args[at].clone()];
    let mut rest = args[at + 1..].to_vec();
    // `export tenant ID`, `keymap check FILE`: the subcommand leads too.
    if let Some(sub) = cli.find_subcommand(&args[at])
        && rest
            .first()
            .is_some_and(|a| sub.find_subcommand(a).is_some())
    {
        command.push(rest.remove(0));
    }
    command
        .into_iter()
        .chain(args[..at].iter().cloned())
        .chain(rest)
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.is_some() && cli.console != ConsoleArgs::default() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        eprintln!(
            "warroom: put options after the command name: `warroom {}`",
            options_after_command(&args).join(" ")
        );
        return ExitCode::from(2);
    }
    let paths = Paths::resolve(cli.config.clone());
    let cfg = match Config::load(&paths.config_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warroom: invalid config: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warroom: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            None => console(cli.console, cfg, paths).await,
            Some(Command::Console(args)) => console(args, cfg, paths).await,
            Some(Command::Gateway(args)) => gateway(args, cfg, paths).await,
            Some(Command::Snapshot(args)) => snapshot(args, cfg).await,
            Some(Command::Lookup(args)) => lookup(args, cfg).await,
            Some(Command::Export(cmd)) => export(cmd, cfg).await,
            Some(Command::Report(args)) => report(args, cfg).await,
            Some(Command::Publish(args)) => publish(args, cfg).await,
            Some(Command::Info(args)) => info(args, &cfg, &paths),
            Some(Command::Keymap(cmd)) => keymap_cmd(cmd),
            Some(Command::Drill(cmd)) => drill(cmd).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        // The reader went away (`| head`): nothing left to say to anyone.
        Err(e) if is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warroom: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Whatever a library logs, a configured secret is not in the line.
    #[test]
    fn every_configured_secret_is_replaced_in_log_lines() {
        let cfg = Config::parse(
            "c.toml",
            "gateway = \"http://ana:SECRETPW123@gw.example:1\"\n\
             [server]\n[[server.tokens]]\nname = \"cy\"\nrole = \"comms\"\n\
             token = \"SECRETTOKEN123-comms-0123456789\"\n\
             [server.webhook]\nurl = \"https://hooks.example/services/SECRETPATH123?k=SECRETQUERY123\"\n",
        )
        .unwrap();
        let sink = Sink::default();
        let writer = Redacting {
            inner: {
                let s = sink.clone();
                move || s.clone()
            },
            redactor: Arc::new(secrets(&cfg, Some("http://bo:SECRETFLAG123@h:2"))),
        };
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(
                url = "https://hooks.example/services/SECRETPATH123?k=SECRETQUERY123",
                "authorization: Bearer SECRETTOKEN123-comms-0123456789, gateway ana:SECRETPW123, bo:SECRETFLAG123"
            );
        });
        let line = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(
            line.contains("TRACE") && line.contains("<redacted>"),
            "{line}"
        );
        for s in [
            "SECRETPATH123",
            "SECRETQUERY123",
            "SECRETTOKEN123",
            "SECRETPW123",
            "SECRETFLAG123",
        ] {
            assert!(!line.contains(s), "{s} in {line}");
        }
    }
}
