//! `warroom`: the console (default) or the gateway.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use warroom::gateway::{Gateway, Hub};
use warroom::sources::simulator::{SimConfig, Simulator};

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
}

#[derive(Args, Debug, Clone)]
struct ConsoleArgs {
    /// Gateway to connect to, e.g. http://127.0.0.1:50051. Without it, an
    /// embedded gateway runs the simulated incident.
    #[arg(long, env = "WARROOM_GATEWAY", value_name = "URL")]
    gateway: Option<String>,
    #[command(flatten)]
    sim: SimArgs,
}

#[derive(Args, Debug, Clone)]
struct SimArgs {
    /// Seed of the simulated incident: the same seed replays the same incident.
    #[arg(long, default_value_t = 2008)]
    seed: u64,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 60.0, value_parser = parse_speed)]
    speed: f64,
    /// Number of simulated tenants.
    #[arg(long, default_value_t = 2_000)]
    tenants: u32,
    /// Number of simulated mailboxes.
    #[arg(long, default_value_t = 50_000)]
    mailboxes: u64,
    /// Milliseconds between ticks (each source is advanced once per tick).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    tick_ms: u64,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum SourceKind {
    /// The simulated Cluster A incident.
    Simulator,
}

#[derive(Args, Debug)]
struct GatewayArgs {
    /// Address to serve gRPC on. Loopback by default.
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Where facts come from.
    #[arg(long, value_enum, default_value_t = SourceKind::Simulator)]
    source: SourceKind,
    #[command(flatten)]
    sim: SimArgs,
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

async fn start_gateway(listen: SocketAddr, sim: &SimArgs) -> anyhow::Result<Gateway> {
    let cfg = SimConfig {
        seed: sim.seed,
        tenants: sim.tenants,
        mailboxes: sim.mailboxes,
        ..SimConfig::default()
    };
    let source = tokio::task::spawn_blocking(move || Simulator::new(cfg))
        .await?
        .map_err(|e| anyhow::anyhow!(e))?;
    let tick = Duration::from_millis(sim.tick_ms);
    let hub = Hub::new(Box::new(source), sim.speed * tick.as_secs_f64(), sim.speed);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    // A first tick so the first snapshot already has rates and ETAs.
    hub.tick();
    Gateway::serve(listener, hub, Some(tick)).await
}

fn log_to_file() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = std::env::var_os("XDG_STATE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("warroom");
    std::fs::create_dir_all(&dir).ok()?;
    let appender = tracing_appender::rolling::never(&dir, "console.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARROOM_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .try_init()
        .ok()?;
    Some(guard)
}

async fn console(args: ConsoleArgs) -> anyhow::Result<i32> {
    // Logs go to a file: the screen belongs to the TUI.
    let _guard = log_to_file();
    let (url, embedded) = match args.gateway {
        Some(url) => (url, None),
        None => {
            let gw = start_gateway(SocketAddr::from(([127, 0, 0, 1], 0)), &args.sim).await?;
            (gw.url(), Some(gw))
        }
    };
    let code = warroom::console::run(url, embedded.is_some()).await;
    if let Some(gw) = embedded {
        gw.stop().await;
    }
    code
}

async fn gateway(args: GatewayArgs) -> anyhow::Result<i32> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARROOM_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    if !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "listening beyond loopback: anyone who can reach this address can read the war room");
    }
    let SourceKind::Simulator = args.source;
    let gw = start_gateway(args.listen, &args.sim).await?;
    eprintln!(
        "warroom gateway serving warroom.v1 on {} (source: simulator, SIMULATED)",
        gw.url()
    );
    tokio::select! {
        r = gw.wait() => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            None => console(cli.console).await,
            Some(Command::Console(args)) => console(args).await,
            Some(Command::Gateway(args)) => gateway(args).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("warroom: {e:#}");
            ExitCode::from(2)
        }
    }
}
