//! `warroom info`.

use super::store_location;
use crate::cli::args::*;
use crate::cli::wiring::*;
use warroom::config::{Config, Paths};
use warroom::console::theme;
use warroom::domain::redact::url_shown;

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
        let snap = warroom::client::first_snapshot(&client).await?;
        // The role is the health service's word, not the store line's.
        let leads = client.leads().await;
        anyhow::Ok((snap, leads))
    };
    let (snap, leads) = match tokio::time::timeout(std::time::Duration::from_secs(3), asked).await {
        Err(_) => return "unknown (the gateway did not answer within 3 s)".into(),
        Ok(Err(e)) => return format!("unknown (cannot ask the gateway: {e:#})"),
        Ok(Ok(s)) => s,
    };
    let shown = |s: &str| warroom::domain::sanitize::sanitize(s).into_owned();
    match snap.sources.iter().find(|s| s.name == "store") {
        None => "single (alone on its state file; it runs the sources)".into(),
        Some(line) => {
            let role = match &leads {
                Ok(true) => "leader (it runs the sources)".to_string(),
                Ok(false) => "follower (another gateway runs the sources)".to_string(),
                Err(e) => format!("unknown (its health service did not say: {e:#})"),
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
