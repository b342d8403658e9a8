//! `warroom` (the console).

use std::time::Duration;

use crate::cli::args::*;
use crate::cli::wiring::*;
use warroom::config::{Config, Paths};

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
