//! One function per command: `warroom`, `gateway`, `snapshot`, `lookup`,
//! `publish`, `report`, `export`, `info`, `drill`, `keymap`.

use std::net::SocketAddr;
use std::time::Duration;

use super::args::*;
use super::wiring::*;
use warroom::client::GatewayClient;
use warroom::config::{Config, Paths};
use warroom::console::keymap::{self, Keymap};
use warroom::console::theme;
use warroom::domain::redact::url_shown;

pub(crate) async fn console(args: ConsoleArgs, cfg: Config, paths: Paths) -> anyhow::Result<i32> {
    let theme = resolve_theme(&args.screen, &cfg)?;
    let (keymap, warning) = resolve_keymap(&args.screen, &cfg, &paths)?;
    // Logs go to a file: the screen belongs to the TUI.
    let _guard = log_to_file(&paths, secrets(&cfg, args.connect.gateway.as_deref()));
    if let Some(w) = &warning {
        tracing::warn!("{w}");
    }
    let (client, embedded) = gateway_or_demo_lazy(&args.connect, &cfg).await?;
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

pub(crate) async fn snapshot(args: SnapshotArgs, cfg: Config) -> anyhow::Result<i32> {
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

pub(crate) async fn lookup(args: LookupArgs, cfg: Config) -> anyhow::Result<i32> {
    use warroom::client::lookup;
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
pub(crate) async fn lookup_file(args: &LookupArgs, cfg: Config) -> anyhow::Result<i32> {
    use warroom::client::lookup;
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
pub(crate) async fn publish(args: PublishArgs, cfg: Config) -> anyhow::Result<i32> {
    use warroom::client::{self, draft};
    use warroom::domain::sanitize::sanitize;
    let body = if args.body == "-" {
        let mut b = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut b)
            .map_err(|e| anyhow::anyhow!("cannot read the body from stdin: {e}"))?;
        b
    } else {
        args.body.clone()
    };
    let draft = draft::DraftFile {
        state: args.state.as_str().into(),
        title: args.title.clone(),
        body,
        components: args.components.join(","),
        next: args.next.clone().unwrap_or_default(),
        operation_id: args
            .operation_id
            .clone()
            .unwrap_or_else(draft::operation_id),
        saved_at: chrono::Utc::now(),
    };
    let (gw, embedded) = gateway_or_demo(&args.connect, &cfg).await?;
    // "+30m" and "23:30" are on the incident's clock, as in the composer.
    let now = client::source_clock(&gw).await?;
    let code = match draft.to_draft(now) {
        Err((_, why)) => {
            eprintln!("warroom: not published: {why}");
            Ok(1)
        }
        Ok(request) if args.dry_run => preview_to_stdout(&gw, &request, now).await,
        Ok(request) => match client::publish(
            &gw,
            &request,
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

pub(crate) async fn preview_to_stdout(
    gw: &GatewayClient,
    draft: &warroom::domain::status::Draft,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<i32> {
    let next = draft.next_update;
    let (findings, previews) = warroom::client::preview(gw, draft)
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
        outln!(
            "\n== {}",
            warroom::domain::sanitize::sanitize(&warroom::client::draft::preview_label(
                channel,
                content_type
            ))
        );
        for line in content.lines() {
            outln!("{}", warroom::domain::sanitize::sanitize(line));
        }
    }
    outln!("\n(dry run: nothing published)");
    Ok(if errors > 0 { 1 } else { 0 })
}

pub(crate) async fn report(args: ConnectArgs, cfg: Config) -> anyhow::Result<i32> {
    let (client, embedded) = gateway_or_demo(&args, &cfg).await?;
    let text = warroom::client::report::fetch(&client).await;
    if let Some(gw) = embedded {
        gw.stop().await;
    }
    out!("{}", text?);
    Ok(0)
}

pub(crate) async fn export(cmd: ExportCommand, cfg: Config) -> anyhow::Result<i32> {
    use warroom::client::export;
    let ExportCommand::Tenant(args) = cmd;
    let (client, embedded) = gateway_or_demo(&args.connect, &cfg).await?;
    let states = if args.states.is_empty() {
        warroom::domain::MailboxState::AFFECTED.to_vec()
    } else {
        args.states.clone()
    };
    let tenant = export::tenant_of(&client, &args.tenant_id).await;
    let rows = match &tenant {
        Ok(Some(t)) => export::fetch(&client, &t.tenant_id, &states)
            .await
            .map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(anyhow::anyhow!("{e:#}")),
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
    // A list from before the damage sweep has probed every mailbox holds
    // only what was found so far: said on stderr, so the file stays data.
    if let Ok(Some(t)) = &tenant
        && let Some(n) = t.unchecked_mailboxes.filter(|&n| n > 0)
    {
        eprintln!(
            "warroom: {} of {} mailboxes of {} are not checked yet: this list holds only those checked so far",
            warroom::domain::format::thousands(n),
            warroom::domain::format::thousands(t.mailboxes.unwrap_or(0)),
            t.tenant_id
        );
    }
    match args.format {
        ExportFormat::Csv => out!("{}", export::csv(&rows)),
        ExportFormat::Json => outln!("{}", serde_json::to_string_pretty(&rows)?),
    }
    Ok(0)
}

pub(crate) async fn info(args: ConsoleArgs, cfg: &Config, paths: &Paths) -> anyhow::Result<i32> {
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
        store_location(None, cfg, paths).shown()
    );
    let url = gateway_url(&args.connect, cfg);
    let demo = url.is_none();
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
    match url {
        Some(url) => {
            let urls = warroom::client::gateway_urls(&url);
            outln!(
                "gateway:      {}",
                urls.iter()
                    .map(|u| url_shown(u))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let tls = client_tls(&args.connect, cfg);
            if let Some(https) = urls.iter().find(|u| u.starts_with("https://")) {
                match warroom::client::tls::Connector::new(&tls, &url_shown(https)) {
                    Ok(c) => outln!(
                        "gateway TLS:  yes; its certificate must be signed by {}",
                        c.trust()
                    ),
                    Err(e) => outln!("gateway TLS:  error: {e}"),
                }
                match &tls.cert {
                    Some(cert) => outln!("client cert:  {}", cert.display()),
                    None => outln!("client cert:  none"),
                }
            } else {
                outln!("gateway TLS:  no (plain text: http://)");
            }
            outln!(
                "gateway role: {}",
                gateway_role(&args.connect, cfg, &url).await
            );
        }
        None => {
            outln!("gateway:      embedded demo (simulated incident on a loopback port)");
            outln!("gateway role: single (the embedded demo: its state is in memory)");
        }
    }
    Ok(0)
}

/// What the gateway says of itself: leader, follower or single, with its
/// store line (the database, since when it leads, or since when the
/// database has been out of reach). Asked within 3 s.
async fn gateway_role(args: &ConnectArgs, cfg: &Config, url: &str) -> String {
    let asked = async {
        let client = warroom::client::GatewayClient::connect(
            url,
            console_token(cfg)?.as_deref(),
            &client_tls(args, cfg),
        )?;
        client.pick_answering().await;
        warroom::client::first_snapshot(&client).await
    };
    let snap = match tokio::time::timeout(std::time::Duration::from_secs(3), asked).await {
        Err(_) => return "unknown (the gateway did not answer within 3 s)".into(),
        Ok(Err(e)) => return format!("unknown (cannot ask the gateway: {e:#})"),
        Ok(Ok(s)) => s,
    };
    let shown = |s: &str| warroom::domain::sanitize::sanitize(s).into_owned();
    match snap.sources.iter().find(|s| s.name == "store") {
        None => "single (alone on its state file; it runs the sources)".into(),
        Some(line) => {
            let role = if line.message.contains(" · leader since ") {
                "leader (it runs the sources)"
            } else {
                "follower (another gateway runs the sources)"
            };
            let health = warroom::api::pb::HealthStatus::try_from(line.health).map_or(
                "unknown",
                |h| match h {
                    warroom::api::pb::HealthStatus::Ok => "ok",
                    warroom::api::pb::HealthStatus::Degraded => "degraded",
                    warroom::api::pb::HealthStatus::Down => "down",
                    _ => "unknown",
                },
            );
            format!("{role}; store {health}: {}", shown(&line.message))
        }
    }
}

pub(crate) async fn drill(cmd: DrillCommand) -> anyhow::Result<i32> {
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

pub(crate) fn keymap_cmd(cmd: KeymapCommand) -> anyhow::Result<i32> {
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
