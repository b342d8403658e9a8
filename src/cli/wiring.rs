//! From config and flags to running objects: the demo's simulator, a
//! platform's sources, a gateway, tokens, logging, keymap and theme.

use std::net::SocketAddr;
use std::time::Duration;

use super::args::*;
use warroom::client::GatewayClient;
use warroom::client::tls::ClientTls;
use warroom::config::{Config, Paths};
use warroom::console::keymap::{self, Keymap};
use warroom::console::theme::Theme;
use warroom::domain::priority::Role;
use warroom::domain::redact::Redactor;
use warroom::gateway::publish::Publishing;
use warroom::gateway::{Access, Gateway, Hub};
use warroom::sources::Source;
use warroom::sources::simulator::{SimConfig, Simulator};

/// Flags win over the config file, which wins over the defaults.
pub(crate) struct Demo {
    pub(crate) scenario: warroom::sources::simulator::scenario::Scenario,
    pub(crate) seed: u64,
    pub(crate) speed: f64,
    pub(crate) tenants: u32,
    pub(crate) mailboxes: u64,
    pub(crate) tick: Duration,
    pub(crate) skip_hours: u32,
}

pub(crate) fn demo(sim: &SimArgs, cfg: &Config) -> anyhow::Result<Demo> {
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
pub(crate) struct Feed {
    pub(crate) source: Box<dyn Source>,
    /// Wall-clock time between ticks.
    pub(crate) tick: Duration,
    /// Source seconds per wall-clock second.
    pub(crate) speed: f64,
    /// Minutes the source is moved in before serving (`--skip`), through
    /// the gateway, so its trends and ETA history start at the incident's
    /// start, not at the skip.
    pub(crate) skip_minutes: usize,
}

/// The simulated incident, moved `skip_hours` in.
pub(crate) async fn simulator_feed(d: &Demo) -> anyhow::Result<Feed> {
    let cfg = SimConfig {
        seed: d.seed,
        tenants: d.tenants,
        mailboxes: d.mailboxes,
        ..SimConfig::of(d.scenario.clone())
    };
    let source = tokio::task::spawn_blocking(move || Simulator::new(cfg))
        .await?
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(Feed {
        source: Box::new(source),
        tick: d.tick,
        speed: d.speed,
        skip_minutes: d.skip_hours as usize * 60,
    })
}

/// A real platform (Dovecot, Postfix, Prometheus) from `[platform]`.
pub(crate) fn platform_feed(
    cfg: &Config,
    state: &warroom::store::Location,
    leading: Option<tokio::sync::watch::Receiver<bool>>,
) -> anyhow::Result<Feed> {
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
    let load_query = match p.prometheus.as_ref().and_then(|pr| pr.load.as_deref()) {
        Some(q) if q.trim().is_empty() => {
            anyhow::bail!(
                "[platform.prometheus] load is empty: give a PromQL expression, or leave it out"
            )
        }
        q => q.map(str::to_string),
    };
    let prometheus = match &p.prometheus {
        None => None,
        Some(pr) => Some(
            Prometheus::new(&pr.url, timeout)
                .map_err(|e| anyhow::anyhow!("[platform.prometheus] {e}"))?,
        ),
    };
    let source = PlatformSource::start_gated(
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
            load_query,
            poll: Duration::from_millis(p.poll_ms.unwrap_or(5_000)),
            // The incident's journal: a second connection to the store.
            store: Some(warroom::store::open_at(state).map_err(|e| anyhow::anyhow!("{e}"))?),
        },
        &tokio::runtime::Handle::current(),
        leading,
    )
    .map_err(|e| anyhow::anyhow!("[platform] {e}"))?;
    Ok(Feed {
        source: Box::new(source),
        tick: Duration::from_secs(1),
        speed: 1.0,
        skip_minutes: 0,
    })
}

/// Where a gateway listens (gRPC and its status page), how the page is
/// shown, and the bounds it keeps.
pub(crate) struct Listen<'a> {
    pub(crate) grpc: SocketAddr,
    pub(crate) page: SocketAddr,
    pub(crate) page_url: Option<&'a str>,
    /// `[server] advertise_url`: where the other replicas reach this one.
    pub(crate) advertise_url: Option<&'a str>,
    /// `[gateway_tls]`: how this gateway reaches a leader serving TLS.
    pub(crate) relay_tls: ClientTls,
    /// `[server] delivery_lease_ms`.
    pub(crate) delivery_lease_ms: Option<u64>,
    pub(crate) limits: warroom::gateway::Limits,
    pub(crate) tls: Option<std::sync::Arc<warroom::gateway::tls::ServerTls>>,
}

pub(crate) async fn start_gateway(
    at: Listen<'_>,
    feed: Feed,
    store: Box<dyn warroom::store::Store>,
    leadership: Option<std::sync::Arc<warroom::store::Leadership>>,
    access: Access,
    publishing: Publishing,
) -> anyhow::Result<Gateway> {
    let Listen {
        grpc: listen,
        page: page_listen,
        page_url,
        advertise_url,
        relay_tls,
        delivery_lease_ms,
        limits,
        tls,
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
    if let Some(ms) = delivery_lease_ms {
        hub.record.set_delivery_lease(Duration::from_millis(ms));
    }
    if let Some(l) = leadership {
        hub.set_leadership(l);
        hub.set_relay_tls(relay_tls.clone());
        hub.advertise(&warroom::gateway::relay::advertised_url(
            listener.local_addr()?,
            tls.is_some(),
            advertise_url,
        ));
    }
    if feed.skip_minutes > 0 {
        let hub = hub.clone();
        tokio::task::spawn_blocking(move || hub.fast_forward(feed.skip_minutes, 60.0)).await?;
    }
    let page = tokio::net::TcpListener::bind(page_listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve the status page on {page_listen}: {e}"))?;
    // A first tick so the first snapshot already has rates and ETAs.
    hub.tick();
    let mut gw =
        Gateway::serve_secured(listener, hub, Some(feed.tick), access, limits, tls).await?;
    gw.serve_page_as(page, page_url)?;
    Ok(gw)
}

/// The gateway's bounds: `[server]` in the config over the defaults (the
/// ranges are checked when the config is read).
pub(crate) fn gateway_limits(cfg: &Config) -> warroom::gateway::Limits {
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
pub(crate) fn raise_open_files(limits: &warroom::gateway::Limits) {
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
pub(crate) fn publishing(cfg: &Config) -> anyhow::Result<Publishing> {
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
pub(crate) fn random_token() -> anyhow::Result<String> {
    warroom::random::random_hex(24)
        .map_err(|e| anyhow::anyhow!("cannot read /dev/urandom for the demo's token: {e}"))
}

/// The token this console presents: WARROOM_TOKEN, else the config's
/// token_file, else its token.
pub(crate) fn console_token(cfg: &Config) -> anyhow::Result<Option<String>> {
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
pub(crate) fn gateway_access(cfg: &Config, listen: SocketAddr) -> anyhow::Result<Access> {
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
pub(crate) fn secrets(cfg: &Config, gateway_flag: Option<&str>) -> Redactor {
    let mut r = Redactor::new();
    if let Ok(Some(t)) = console_token(cfg) {
        r = r.secret(&t);
    }
    for list in gateway_flag.into_iter().chain(cfg.gateway.as_deref()) {
        for url in warroom::client::gateway_urls(list) {
            r = r.url_userinfo(url);
        }
    }
    if let Some(server) = &cfg.server {
        if let Some(store) = &server.store {
            r = r.url_userinfo(store);
        }
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
pub(crate) struct Redacting<M> {
    pub(crate) inner: M,
    pub(crate) redactor: std::sync::Arc<Redactor>,
}

pub(crate) struct RedactingWriter<W> {
    pub(crate) inner: W,
    pub(crate) redactor: std::sync::Arc<Redactor>,
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

pub(crate) fn log_to_file(
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
pub(crate) fn resolve_keymap(
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

pub(crate) fn resolve_theme(args: &ScreenArgs, cfg: &Config) -> anyhow::Result<Theme> {
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

/// How an https:// gateway is checked and who this client is to it:
/// flags over `[gateway_tls]`.
pub(crate) fn client_tls(args: &ConnectArgs, cfg: &Config) -> ClientTls {
    let c = cfg.gateway_tls.clone().unwrap_or_default();
    let (cert, key) = if args.tls_cert.is_some() {
        (args.tls_cert.clone(), args.tls_key.clone())
    } else {
        (c.cert, c.key)
    };
    ClientTls {
        ca: args.ca.clone().or(c.ca),
        cert,
        key,
    }
}

/// The gateway's TLS from `[server.tls]`, and whether listening on
/// `listen` without it is allowed: beyond loopback it needs TLS or an
/// explicit `insecure = true`.
pub(crate) fn server_tls(
    cfg: &Config,
    listen: SocketAddr,
) -> anyhow::Result<Option<std::sync::Arc<warroom::gateway::tls::ServerTls>>> {
    let server = cfg.server.clone().unwrap_or_default();
    match &server.tls {
        Some(t) => warroom::gateway::tls::ServerTls::load(warroom::gateway::tls::TlsFiles {
            cert: t.cert.clone(),
            key: t.key.clone(),
            client_ca: t.client_ca.clone(),
            check_every: match t.reload_check_ms {
                Some(0) => None,
                Some(ms) => Some(Duration::from_millis(ms)),
                None => Some(warroom::gateway::tls::RELOAD_CHECK),
            },
        })
        .map(Some)
        .map_err(anyhow::Error::msg),
        None if listen.ip().is_loopback() => Ok(None),
        None if server.insecure == Some(true) => {
            tracing::warn!(
                %listen,
                "serving gRPC without TLS beyond loopback (insecure = true): tokens cross the network in clear text"
            );
            Ok(None)
        }
        None => anyhow::bail!(
            "refusing to listen on {listen} without TLS: tokens would cross the network in clear text. \
             Set [server.tls] cert and key (PEM files) in the config, or insecure = true under [server] \
             to serve plain text anyway (behind a TLS proxy or on a trusted network); see docs/configuration.md"
        ),
    }
}

pub(crate) fn gateway_url(args: &ConnectArgs, cfg: &Config) -> Option<String> {
    args.gateway.clone().or_else(|| cfg.gateway.clone())
}

/// A client of the configured gateway, or of an embedded demo gateway
/// started on a loopback port (returned, so the caller stops it when done).
/// In the demo the local user is its admin, with a token made up for this
/// run; its decisions last as long as the run.
/// With several replicas (`URL1,URL2`), the first that answers is used
/// (see `GatewayClient::pick_answering`); the console instead starts on
/// the first and moves on by itself (`gateway_or_demo_lazy`).
pub(crate) async fn gateway_or_demo(
    args: &ConnectArgs,
    cfg: &Config,
) -> anyhow::Result<(GatewayClient, Option<Gateway>)> {
    let (client, embedded) = gateway_or_demo_lazy(args, cfg).await?;
    client.pick_answering().await;
    Ok((client, embedded))
}

/// As `gateway_or_demo`, without asking which replica answers first.
pub(crate) async fn gateway_or_demo_lazy(
    args: &ConnectArgs,
    cfg: &Config,
) -> anyhow::Result<(GatewayClient, Option<Gateway>)> {
    Ok(match gateway_url(args, cfg) {
        Some(url) => (
            GatewayClient::connect(&url, console_token(cfg)?.as_deref(), &client_tls(args, cfg))?,
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
                    advertise_url: None,
                    relay_tls: ClientTls::default(),
                    delivery_lease_ms: None,
                    limits: gateway_limits(cfg),
                    tls: None,
                },
                simulator_feed(&demo(&args.sim, cfg)?).await?,
                warroom::store::in_memory(),
                None,
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

    /// Beyond loopback, plain text needs `insecure = true`; the refusal
    /// says what to set. Nothing is bound here.
    #[test]
    fn plain_text_beyond_loopback_is_refused_unless_insecure_says_so() {
        let open: SocketAddr = "0.0.0.0:50051".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:50051".parse().unwrap();
        let plain = Config::parse("c.toml", "[server]\n").unwrap();
        assert!(server_tls(&plain, lo).unwrap().is_none());
        let e = server_tls(&plain, open).err().unwrap().to_string();
        assert!(
            e.starts_with("refusing to listen on 0.0.0.0:50051 without TLS")
                && e.contains("Set [server.tls] cert and key")
                && e.contains("insecure = true under [server]"),
            "{e}"
        );
        let insecure = Config::parse("c.toml", "[server]\ninsecure = true\n").unwrap();
        assert!(server_tls(&insecure, open).unwrap().is_none());
        let missing = Config::parse(
            "c.toml",
            "[server.tls]\ncert = \"/nonexistent/gw.pem\"\nkey = \"/nonexistent/gw.key\"\n",
        )
        .unwrap();
        let e = server_tls(&missing, open).err().unwrap().to_string();
        assert!(
            e.starts_with("[server.tls] cert /nonexistent/gw.pem: cannot read"),
            "{e}"
        );
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
