//! `warroom gateway`: where it keeps its state, and serving.

use std::net::SocketAddr;

use crate::cli::args::*;
use crate::cli::wiring::*;
use warroom::config::{Config, Paths};

/// Where `warroom gateway` keeps the war-room state: `--store`, else
/// `WARROOM_STORE`, else `WARROOM_STATE` (its older name), else `[server]
/// store`, else the default file.
pub(crate) fn store_location(
    flag: Option<&str>,
    cfg: &Config,
    paths: &Paths,
) -> warroom::store::Location {
    use warroom::store::Location;
    flag.map(str::to_string)
        .or_else(|| {
            ["WARROOM_STORE", "WARROOM_STATE"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        })
        .or_else(|| cfg.server.as_ref().and_then(|s| s.store.clone()))
        .map_or_else(
            || Location::File(paths.state_file.clone()),
            |s| Location::parse(&s),
        )
}

pub(crate) async fn gateway(args: GatewayArgs, cfg: Config, paths: Paths) -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    let state = store_location(args.store.as_deref(), &cfg, &paths);
    let mut redactor = secrets(&cfg, None);
    if let warroom::store::Location::Postgres(url) = &state {
        redactor = redactor.url_userinfo(url);
    }
    tracing_subscriber::fmt()
        .with_writer(Redacting {
            inner: std::io::stderr,
            redactor: std::sync::Arc::new(redactor),
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
    let tls = server_tls(&cfg, args.listen)?;
    let access = gateway_access(&cfg, args.listen)?;
    let store = warroom::store::open_at(&state).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Gateways on one PostgreSQL database elect the one that runs the
    // sources; a SQLite file has one gateway, which always does.
    let leadership = match &state {
        warroom::store::Location::Postgres(url) => {
            warroom::store::Leadership::campaign(url).map_err(|e| anyhow::anyhow!("{e}"))?
        }
        warroom::store::Location::File(_) => {
            warroom::store::Leadership::single(&format!("SQLite at {}", state.shown()))
        }
    };
    let gate = matches!(state, warroom::store::Location::Postgres(_)).then(|| leadership.leading());
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
        SourceKind::Platform => platform_feed(&cfg, &state, gate)?,
    };
    let simulated = matches!(source, SourceKind::Simulator);
    let limits = gateway_limits(&cfg);
    raise_open_files(&limits);
    let gw = start_gateway(
        Listen {
            grpc: args.listen,
            page: page_listen,
            page_url: cfg.server.as_ref().and_then(|s| s.page_url.as_deref()),
            advertise_url: cfg.server.as_ref().and_then(|s| s.advertise_url.as_deref()),
            relay_tls: cfg
                .gateway_tls
                .clone()
                .map(|t| warroom::client::tls::ClientTls {
                    ca: t.ca,
                    cert: t.cert,
                    key: t.key,
                })
                .unwrap_or_default(),
            delivery_lease_ms: cfg.server.as_ref().and_then(|s| s.delivery_lease_ms),
            limits,
            tls: tls.clone(),
        },
        feed,
        store,
        Some(leadership),
        access,
        publishing(&cfg)?,
    )
    .await?;
    eprintln!(
        "warroom gateway serving warroom.v1 on {}{} (source: {}; state: {})",
        gw.url(),
        match &tls {
            Some(t) if t.requires_client_certificates() => " (TLS, client certificates required)",
            Some(_) => " (TLS)",
            None => "",
        },
        if simulated {
            "simulator, SIMULATED"
        } else {
            "platform"
        },
        state.shown()
    );
    // With TLS, SIGHUP reloads the certificate (the gateway listens for
    // it); without, it stops the gateway as SIGTERM does.
    let mut signals = warroom::console::terminal::Signals::new_without_hangup(tls.is_some())?;
    tokio::select! {
        r = gw.wait() => r?,
        _ = signals.recv() => {}
    }
    Ok(0)
}
