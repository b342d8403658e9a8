//! Configuration: a TOML file in the XDG config dir, overridden by
//! environment variables, overridden by flags. Unknown keys are errors (a
//! typo must not be silently ignored), reported with file:line:column.
//! `docs/config.schema.json` describes the same file for editors.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The keymaps shipped in `keymaps/` (the console embeds their texts).
pub const SHIPPED_KEYMAPS: [&str; 3] = ["default", "vim", "emacs"];

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Gateway URL, or several replicas' (a list, or one string with
    /// commas), kept as one string with commas; without it the console runs
    /// the embedded demo.
    #[serde(default, deserialize_with = "gateway_list")]
    pub gateway: Option<String>,
    /// Shipped keymap to start from: default, vim or emacs.
    pub keymap: Option<String>,
    /// dark, light or high-contrast.
    pub theme: Option<String>,
    /// Capture the mouse (scroll wheel). Off by default: capturing breaks
    /// copy and paste over SSH.
    pub mouse: Option<bool>,
    /// Shortest time between frames drawn for new data (ms, 100..=60000).
    pub refresh_ms: Option<u64>,
    /// Ring the terminal bell when a promised status update is overdue.
    pub bell: Option<bool>,
    /// The embedded demo's simulated incident.
    pub demo: Option<DemoConfig>,
    /// The bearer token this console presents to the gateway. Prefer
    /// `token_file` or the WARROOM_TOKEN environment variable.
    pub token: Option<String>,
    /// A file holding the console's token (first line).
    pub token_file: Option<PathBuf>,
    /// An `https://` gateway: the CA that signed its certificate, and a
    /// client certificate when it requires one.
    pub gateway_tls: Option<GatewayTlsSection>,
    /// `warroom gateway`: identities, roles and where state is kept.
    pub server: Option<ServerConfig>,
    /// `warroom gateway --source platform`: the real backends.
    pub platform: Option<PlatformSection>,
}

/// How the console and CLI check an `https://` gateway, and who they are
/// to it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatewayTlsSection {
    /// The CA (PEM) that signed the gateway's certificate [default: the
    /// system's CA bundle].
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM), for a gateway with `client_ca`.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
}

/// `[server.tls]`: the gateway serves gRPC over TLS.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsSection {
    /// The certificate chain (PEM), the gateway's own first.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// With it, clients must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
    /// How often the files are checked for a change, 0 for never (SIGHUP
    /// still reloads) [default: 5000].
    pub reload_check_ms: Option<u64>,
}

/// A real mail platform: tenants by recipient domain, and the backends.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlatformSection {
    /// What the console calls it [default: "Mail platform"].
    pub name: Option<String>,
    /// How often the backends are polled [default: 5000].
    pub poll_ms: Option<u64>,
    #[serde(default)]
    pub tenants: Vec<PlatformTenant>,
    pub dovecot: Option<DovecotSection>,
    pub postfix: Option<PostfixSection>,
    pub prometheus: Option<PrometheusSection>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlatformTenant {
    pub id: String,
    pub name: String,
    pub domains: Vec<String>,
    #[serde(default)]
    pub contacts: Vec<String>,
}

/// The doveadm HTTP API. The key comes from the environment or a file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DovecotSection {
    /// e.g. http://127.0.0.1:8080/doveadm/v1
    pub url: String,
    pub api_key_env: Option<String>,
    pub api_key_file: Option<PathBuf>,
    /// Repairs in flight at most [default: 4]; fewer while Dovecot is slow.
    pub max_concurrency: Option<usize>,
    /// Mailboxes probed per poll [default: 50].
    pub probes_per_poll: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostfixSection {
    /// The command that prints the queue as JSON [default: postqueue -j].
    pub command: Option<Vec<String>>,
    /// The command that tells whether Postfix runs (exit 0 running, 1
    /// stopped) [default: postfix status, with the -c DIR of `command`].
    pub status_command: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSection {
    /// e.g. http://127.0.0.1:9090
    pub url: String,
    /// PromQL for the users' load on the mailbox storage, one series, as a
    /// share of what the storage serves (about 0 when quiet, 1 saturated),
    /// e.g. its disks' busy share. With it the repair ETA draws the hours
    /// it has not lived through yet from the last week's traffic
    /// [default: none: those hours run at the current rate].
    pub load: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Callers without a token may read (never change anything). Default:
    /// on while the gateway listens on loopback only, off otherwise.
    pub anonymous_read: Option<bool>,
    /// Where the war-room state is kept: a SQLite file path, or a
    /// `postgres://` URL [default: $XDG_DATA_HOME/warroom/state.sqlite].
    /// `state`, its older name, is still read.
    #[serde(alias = "state")]
    pub store: Option<String>,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Serve gRPC over TLS.
    pub tls: Option<ServerTlsSection>,
    /// Listen beyond loopback without TLS anyway (behind a TLS proxy, on a
    /// trusted network) [default: false].
    pub insecure: Option<bool>,
    /// Where the built-in status page listens [default: 127.0.0.1:8080].
    pub page_listen: Option<std::net::SocketAddr>,
    /// The status page's address as its readers reach it (a proxy, a DNS
    /// name), shown to consoles and in messages [default: from page_listen].
    pub page_url: Option<String>,
    /// Where the other gateways on the same PostgreSQL database reach this
    /// one's gRPC while it leads (`http://HOST:PORT`) [default: from the
    /// listening address; this machine's name for 0.0.0.0].
    pub advertise_url: Option<String>,
    /// Components a status update may name [default: imap, pop, webmail,
    /// smtp-in, smtp-out].
    pub components: Option<Vec<ComponentConfig>>,
    pub webhook: Option<WebhookConfig>,
    pub statuspage: Option<StatuspageSection>,
    pub email: Option<EmailSection>,
    /// gRPC connections held at once; the status page has as many of its
    /// own [default: 8192].
    pub max_connections: Option<usize>,
    /// Connections held at once from one IP address [default: 2048].
    pub max_connections_per_peer: Option<usize>,
    /// A connection that sends nothing for this long is closed
    /// [default: 10000].
    pub handshake_timeout_ms: Option<u64>,
    /// HTTP/2 PING on idle gRPC connections every... [default: 20000]
    pub keepalive_interval_ms: Option<u64>,
    /// ...closed when the answer takes longer than [default: 20000].
    pub keepalive_timeout_ms: Option<u64>,
    /// Watch streams at once [default: 4096].
    pub max_watch_streams: Option<usize>,
    /// Watch streams at once on one connection [default: 8].
    pub max_watch_streams_per_connection: Option<usize>,
    /// A watcher that takes no update for this long is dropped
    /// [default: 120000].
    pub watch_stall_timeout_ms: Option<u64>,
    /// A status page request not complete after this long is closed
    /// [default: 10000].
    pub page_request_timeout_ms: Option<u64>,
    /// How long a delivery claimed by one gateway among replicas stays its
    /// own: another takes it over once this long has passed without an
    /// attempt recorded [default: 60000].
    pub delivery_lease_ms: Option<u64>,
}

/// The `[server]` bounds that are counts: (key, least, most).
pub const SERVER_COUNT_RANGES: [(&str, usize, usize); 4] = [
    ("max_connections", 1, 1_000_000),
    ("max_connections_per_peer", 1, 1_000_000),
    ("max_watch_streams", 1, 1_000_000),
    ("max_watch_streams_per_connection", 1, 10_000),
];

/// The `[server]` bounds that are times in milliseconds: (key, least, most).
pub const SERVER_MS_RANGES: [(&str, u64, u64); 6] = [
    ("handshake_timeout_ms", 100, 600_000),
    ("keepalive_interval_ms", 1_000, 3_600_000),
    ("keepalive_timeout_ms", 1_000, 600_000),
    ("watch_stall_timeout_ms", 1_000, 3_600_000),
    ("page_request_timeout_ms", 100, 600_000),
    ("delivery_lease_ms", 1_000, 3_600_000),
];

impl ServerConfig {
    fn counts(&self) -> [Option<usize>; 4] {
        [
            self.max_connections,
            self.max_connections_per_peer,
            self.max_watch_streams,
            self.max_watch_streams_per_connection,
        ]
    }

    fn times_ms(&self) -> [Option<u64>; 6] {
        [
            self.handshake_timeout_ms,
            self.keepalive_interval_ms,
            self.keepalive_timeout_ms,
            self.watch_stall_timeout_ms,
            self.page_request_timeout_ms,
            self.delivery_lease_ms,
        ]
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// http:// or https:// URL that receives one JSON POST per update.
    pub url: String,
}

/// Atlassian Statuspage. The API key comes from the environment or a file,
/// never from this file or a flag.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StatuspageSection {
    pub page_id: String,
    pub api_key_env: Option<String>,
    pub api_key_file: Option<PathBuf>,
    /// [default: https://api.statuspage.io/v1]
    pub base_url: Option<String>,
    /// warroom component id → Statuspage component id.
    #[serde(default)]
    pub components: std::collections::BTreeMap<String, String>,
}

/// Tenant notices by e-mail, through an SMTP relay (no TLS in this build:
/// a relay on the gateway's host or network).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailSection {
    /// host:port of the relay.
    pub smtp: String,
    pub from: String,
}

/// One person (or robot) the gateway knows. The secret comes from exactly
/// one of `token`, `token_env` or `token_file`.
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    /// viewer, operator, comms or admin.
    pub role: String,
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
}

impl std::fmt::Debug for TokenConfig {
    // The secret never reaches a log or an error message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_env", &self.token_env)
            .field("token_file", &self.token_file)
            .finish()
    }
}

/// Shortest token accepted: a guessable token is no protection.
pub const MIN_TOKEN_CHARS: usize = 16;

impl TokenConfig {
    /// The secret, read from wherever it is configured to come from. Errors
    /// name the token's owner and source, never the secret.
    pub fn secret(&self) -> Result<String, String> {
        let who = &self.name;
        let secret = match (&self.token, &self.token_env, &self.token_file) {
            (Some(t), None, None) => t.clone(),
            (None, Some(var), None) => std::env::var(var)
                .map_err(|_| format!("token of {who:?}: environment variable {var} is not set"))?,
            (None, None, Some(file)) => {
                read_secret(file).map_err(|e| format!("token of {who:?}: {e}"))?
            }
            _ => {
                return Err(format!(
                    "token of {who:?}: give exactly one of token, token_env, token_file"
                ));
            }
        };
        let secret = secret.trim().to_string();
        if secret.chars().count() < MIN_TOKEN_CHARS || secret.chars().any(|c| !c.is_ascii_graphic())
        {
            return Err(format!(
                "token of {who:?} must be at least {MIN_TOKEN_CHARS} printable ASCII characters without spaces"
            ));
        }
        Ok(secret)
    }
}

/// An API key from exactly one of an environment variable or a file (never
/// the config file itself, never a flag). `section` names the config table
/// in errors, which never hold the key.
pub fn api_key(section: &str, env: Option<&str>, file: Option<&Path>) -> Result<String, String> {
    match (env, file) {
        (Some(var), None) => std::env::var(var)
            .map_err(|_| format!("[{section}] api_key_env: environment variable {var} is not set")),
        (None, Some(f)) => read_secret(f).map_err(|e| format!("[{section}] api_key_file: {e}")),
        _ => Err(format!(
            "[{section}] give exactly one of api_key_env, api_key_file (the key never goes in the config file or on the command line)"
        )),
    }
}

/// The first line of a secret file, trimmed.
pub fn read_secret(file: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    pub seed: Option<u64>,
    pub speed: Option<f64>,
    pub tenants: Option<u32>,
    pub mailboxes: Option<u64>,
    pub tick_ms: Option<u64>,
    /// A shipped scenario's name or a scenario file (docs/scenarios.md).
    pub scenario: Option<String>,
}

/// A file the program cannot use (the config, a keymap, a scenario),
/// located in it: `file:line:column: message`, or `file: message` when
/// there is no place to point at (line 0: the file cannot be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FileError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl FileError {
    /// The error at byte `offset` of `text`, the contents of `file`.
    pub fn at(file: &str, text: &str, offset: usize, message: String) -> Self {
        let (line, column) = line_col(text, offset);
        FileError {
            file: file.to_string(),
            line,
            column,
            message,
        }
    }

    /// An error about the whole file (it cannot be read).
    pub fn whole(file: &str, message: String) -> Self {
        FileError {
            file: file.to_string(),
            line: 0,
            column: 0,
            message,
        }
    }
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

/// 1-based line and column (in characters) of a byte offset in `text`, for
/// errors that point into a file.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A parse error without the value it is about: "invalid type: integer
/// `98765432109876543`, expected a string" is where a token written
/// without quotes was echoed back. The file, line and column say where it
/// is; the value itself may be a secret, so it is never repeated.
fn without_value(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (found, expected) = rest.split_once(", expected").unwrap_or((rest, ""));
            let kind = found.split(['`', '"']).next().unwrap_or("").trim();
            let tail = if expected.is_empty() {
                String::new()
            } else {
                format!(", expected{expected}")
            };
            return format!("{prefix}{kind}{tail}");
        }
    }
    message.to_string()
}

pub const THEMES: [&str; 3] = ["dark", "light", "high-contrast"];

impl Config {
    /// Parses and checks a config file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Config, FileError> {
        let err = |offset: usize, message: String| FileError::at(file, text, offset, message);
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            err(at, without_value(e.message().trim()))
        })?;
        // Values that parse but cannot work: point at the key.
        let at = |key: &str| {
            text.find(&format!("\n{key}"))
                .map(|i| i + 1)
                .or_else(|| text.starts_with(key).then_some(0))
                .unwrap_or(0)
        };
        let keymaps = SHIPPED_KEYMAPS;
        if let Some(k) = cfg
            .keymap
            .as_ref()
            .filter(|k| !keymaps.contains(&k.as_str()))
        {
            return Err(err(
                at("keymap"),
                format!(
                    "unknown keymap {k:?}; shipped keymaps: {}",
                    keymaps.join(", ")
                ),
            ));
        }
        if let Some(t) = cfg.theme.as_ref().filter(|t| !THEMES.contains(&t.as_str())) {
            return Err(err(
                at("theme"),
                format!("unknown theme {t:?}; themes: {}", THEMES.join(", ")),
            ));
        }
        if cfg
            .gateway
            .as_ref()
            .is_some_and(|g| g.split(',').all(|u| u.trim().is_empty()))
        {
            return Err(err(
                at("gateway"),
                "gateway names no URL: give one, e.g. https://gw.example.net:50051, or a list of replicas".into(),
            ));
        }
        if let Some(g) = cfg.gateway.as_ref().and_then(|g| {
            g.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .find(|g| !g.starts_with("http://") && !g.starts_with("https://"))
        }) {
            let g = crate::domain::redact::url_shown(g);
            return Err(err(
                at("gateway"),
                format!(
                    "gateway {g:?} must be a URL such as https://gw.example.net:50051 (TLS) or http://127.0.0.1:50051"
                ),
            ));
        }
        if let Some(t) = &cfg.gateway_tls
            && t.cert.is_some() != t.key.is_some()
        {
            return Err(err(
                at("[gateway_tls]"),
                "[gateway_tls] a client certificate needs both cert and key".into(),
            ));
        }
        if let Some(r) = cfg.refresh_ms.filter(|r| !(100..=60_000).contains(r)) {
            return Err(err(
                at("refresh_ms"),
                format!("refresh_ms must be 100..=60000 (got {r})"),
            ));
        }
        let server = cfg.server.clone().unwrap_or_default();
        for (key, url, example) in [
            ("page_url", &server.page_url, "https://status.example.net/"),
            (
                "advertise_url",
                &server.advertise_url,
                "http://gw1.example.net:7000",
            ),
        ] {
            let Some(u) = url else { continue };
            let host = u
                .strip_prefix("https://")
                .or_else(|| u.strip_prefix("http://"))
                .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
            if !host.is_some_and(|h| !h.is_empty() && !h.contains(char::is_whitespace)) {
                return Err(err(
                    at(key),
                    format!(
                        "{key} {:?} must be an http:// or https:// URL with a host, such as {example}",
                        crate::domain::redact::url_shown(u)
                    ),
                ));
            }
        }
        for t in &server.tokens {
            let at_name = text
                .find(&format!("\"{}\"", t.name))
                .unwrap_or_else(|| at("[[server.tokens]]"));
            if crate::domain::priority::Role::parse(&t.role).is_none() {
                return Err(err(
                    at_name,
                    format!(
                        "token {:?}: unknown role {:?}; roles: viewer, operator, comms, admin",
                        t.name, t.role
                    ),
                ));
            }
            if t.name.trim().is_empty() || t.name.chars().any(char::is_control) {
                return Err(err(at_name, "a token needs a printable name".into()));
            }
            let sources = [
                t.token.is_some(),
                t.token_env.is_some(),
                t.token_file.is_some(),
            ];
            if sources.iter().filter(|s| **s).count() != 1 {
                return Err(err(
                    at_name,
                    format!(
                        "token {:?}: give exactly one of token, token_env, token_file",
                        t.name
                    ),
                ));
            }
        }
        for ((key, least, most), value) in SERVER_COUNT_RANGES.iter().zip(server.counts()) {
            if let Some(v) = value.filter(|v| !(*least..=*most).contains(v)) {
                return Err(err(
                    at(key),
                    format!("{key} must be {least}..={most} (got {v})"),
                ));
            }
        }
        for ((key, least, most), value) in SERVER_MS_RANGES.iter().zip(server.times_ms()) {
            if let Some(v) = value.filter(|v| !(*least..=*most).contains(v)) {
                return Err(err(
                    at(key),
                    format!("{key} must be {least}..={most} (got {v})"),
                ));
            }
        }
        if let Some(ms) = server
            .tls
            .as_ref()
            .and_then(|t| t.reload_check_ms)
            .filter(|ms| *ms != 0 && !(1_000..=3_600_000).contains(ms))
        {
            return Err(err(
                at("reload_check_ms"),
                format!("reload_check_ms must be 0 (never) or 1000..=3600000 (got {ms})"),
            ));
        }
        let demo = cfg.demo.clone().unwrap_or_default();
        if let Some(s) = demo
            .speed
            .filter(|s| !(s.is_finite() && *s > 0.0 && *s <= 100_000.0))
        {
            return Err(err(
                at("speed"),
                format!("speed must be above 0 and at most 100000 (got {s})"),
            ));
        }
        if let Some(t) = demo.tick_ms.filter(|t| !(50..=60_000).contains(t)) {
            return Err(err(
                at("tick_ms"),
                format!("tick_ms must be 50..=60000 (got {t})"),
            ));
        }
        Ok(cfg)
    }

    /// Loads `path`; a missing file is an empty config, an unreadable or
    /// invalid one an error.
    pub fn load(path: &Path) -> Result<Config, FileError> {
        let file = path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|e| FileError::at(&file, "", 0, format!("not UTF-8 text ({e})")))?;
                Config::parse(&file, &text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(FileError::whole(&file, format!("cannot read: {e}"))),
        }
    }
}

/// Every path warroom uses, from the XDG base directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config_file: PathBuf,
    pub keymap_file: PathBuf,
    pub state_dir: PathBuf,
    pub log_file: PathBuf,
    /// The gateway's war-room state (priorities, audit).
    pub state_file: PathBuf,
    /// The console's unpublished status update.
    pub draft_file: PathBuf,
}

fn xdg(var: &str, home_rel: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(home_rel)))
        .unwrap_or_else(std::env::temp_dir)
        .join("warroom")
}

impl Paths {
    /// `config_override` is `--config` or `WARROOM_CONFIG`.
    pub fn resolve(config_override: Option<PathBuf>) -> Paths {
        let config_dir = xdg("XDG_CONFIG_HOME", ".config");
        let state_dir = xdg("XDG_STATE_HOME", ".local/state");
        Paths {
            config_file: config_override.unwrap_or_else(|| config_dir.join("config.toml")),
            keymap_file: config_dir.join("keymap.toml"),
            log_file: state_dir.join("console.log"),
            draft_file: state_dir.join("draft.json"),
            state_file: xdg("XDG_DATA_HOME", ".local/share").join("state.sqlite"),
            state_dir,
        }
    }
}

/// `gateway = "URL"`, `gateway = "URL1,URL2"` or `gateway = ["URL1", "URL2"]`:
/// one string with commas either way.
fn gateway_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct List;
    impl<'de> serde::de::Visitor<'de> for List {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a gateway URL, or a list of gateway URLs (replicas)")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
            let mut urls = Vec::new();
            while let Some(u) = seq.next_element::<String>()? {
                urls.push(u);
            }
            Ok(urls.join(","))
        }
    }
    d.deserialize_any(List).map(Some)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_config_parses() {
        let c = Config::parse(
            "c.toml",
            "gateway = \"http://10.0.0.1:50051\"\nkeymap = \"vim\"\ntheme = \"light\"\n[demo]\nspeed = 120\n",
        )
        .unwrap();
        assert_eq!(c.keymap.as_deref(), Some("vim"));
        assert_eq!(c.demo.unwrap().speed, Some(120.0));
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = Config::parse("c.toml", "theme = \"dark\"\nkeymaps = \"vim\"\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1), "{e}");
        assert!(e.message.contains("unknown field `keymaps`"), "{e}");
        let e = Config::parse("c.toml", "theme = \"dark\"\nkeymap = \"nano\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(
            e.message.contains("shipped keymaps: default, vim, emacs"),
            "{e}"
        );
        let e = Config::parse("c.toml", "[demo]\nspeed = -1\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("c.toml:2:1: speed must be above 0"),
            "{e}"
        );
        let e = Config::parse("c.toml", "[server]\nmax_connections = 0\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml:2:1: max_connections must be 1..=1000000 (got 0)"
        );
        let e = Config::parse(
            "c.toml",
            "[server]\nstate = \"s\"\nhandshake_timeout_ms = 5\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml:3:1: handshake_timeout_ms must be 100..=600000 (got 5)"
        );
        let e = Config::parse("c.toml", "gateway = 5\n").unwrap_err();
        assert!(e.message.contains("invalid type"), "{e}");
        // Replicas: a list, or one string with commas; every URL checked.
        for text in [
            "gateway = [\"http://gw1:7000\", \"https://gw2:7000\"]\n",
            "gateway = \"http://gw1:7000, https://gw2:7000\"\n",
        ] {
            let c = Config::parse("c.toml", text).unwrap();
            assert_eq!(
                c.gateway
                    .as_deref()
                    .unwrap()
                    .split(',')
                    .map(str::trim)
                    .collect::<Vec<_>>(),
                ["http://gw1:7000", "https://gw2:7000"]
            );
        }
        let e =
            Config::parse("c.toml", "gateway = [\"http://gw1:7000\", \"gw2:7000\"]\n").unwrap_err();
        assert!(
            e.message.contains("gateway \"gw2:7000\" must be a URL"),
            "{e}"
        );
        let e = Config::parse("c.toml", "gateway = []\n").unwrap_err();
        assert!(e.message.contains("gateway names no URL"), "{e}");
    }

    #[test]
    fn tls_settings_parse_and_a_half_client_certificate_is_refused() {
        let c = Config::parse(
            "c.toml",
            "gateway = \"https://gw.example.net:50051\"\n\
             [gateway_tls]\nca = \"/etc/warroom/ca.pem\"\n\
             [server.tls]\ncert = \"s.pem\"\nkey = \"s.key\"\nclient_ca = \"ca.pem\"\nreload_check_ms = 0\n",
        )
        .unwrap();
        assert_eq!(
            c.gateway_tls.unwrap().ca.as_deref(),
            Some(Path::new("/etc/warroom/ca.pem"))
        );
        let tls = c.server.unwrap().tls.unwrap();
        assert_eq!(tls.client_ca.as_deref(), Some(Path::new("ca.pem")));
        assert_eq!(tls.reload_check_ms, Some(0));
        let e = Config::parse("c.toml", "[gateway_tls]\ncert = \"c.pem\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml:1:1: [gateway_tls] a client certificate needs both cert and key"
        );
        let e = Config::parse("c.toml", "[server.tls]\ncert = \"c.pem\"\n").unwrap_err();
        assert!(e.message.contains("missing field `key`"), "{e}");
        let e = Config::parse(
            "c.toml",
            "[server.tls]\ncert = \"c.pem\"\nkey = \"k\"\nreload_check_ms = 10\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml:4:1: reload_check_ms must be 0 (never) or 1000..=3600000 (got 10)"
        );
    }

    #[test]
    fn a_page_or_advertised_url_must_be_an_http_url_with_a_host() {
        let c = Config::parse(
            "c.toml",
            "[server]\npage_url = \"https://status.example.net/\"\nadvertise_url = \"http://gw1:7000\"\n",
        )
        .unwrap();
        let server = c.server.unwrap();
        assert_eq!(
            server.page_url.as_deref(),
            Some("https://status.example.net/")
        );
        assert_eq!(server.advertise_url.as_deref(), Some("http://gw1:7000"));
        for key in ["page_url", "advertise_url"] {
            for bad in ["status.example.net", "https://", "ftp://x/", "http:// x/"] {
                let e =
                    Config::parse("c.toml", &format!("[server]\n{key} = \"{bad}\"\n")).unwrap_err();
                assert!(
                    e.to_string().starts_with(&format!("c.toml:2:1: {key}"))
                        && e.message.contains("http:// or https:// URL with a host"),
                    "{bad}: {e}"
                );
            }
        }
    }

    #[test]
    fn a_secret_in_the_wrong_type_is_not_echoed_back() {
        for (text, want) in [
            (
                "[server]\n[[server.tokens]]\nname = \"ana\"\nrole = \"admin\"\ntoken = 98765432109876543\n",
                "c.toml:5:9: invalid type: integer, expected a string",
            ),
            (
                "[server]\nanonymous_read = \"SECRET-9876543210\"\n",
                "c.toml:2:18: invalid type: string, expected a boolean",
            ),
            (
                "gateway = \"ftp://ana:SECRET-9876543210@gw.example\"\n",
                "c.toml:1:1: gateway \"ftp://***@gw.example\" must be a URL",
            ),
        ] {
            let e = Config::parse("c.toml", text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
            assert!(
                !e.contains("98765432109876543") && !e.contains("SECRET"),
                "{e}"
            );
        }
    }
}
