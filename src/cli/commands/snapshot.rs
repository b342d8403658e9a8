//! `warroom snapshot`.

use crate::cli::args::*;
use crate::cli::wiring::*;
use warroom::config::Config;
use warroom::console::keymap::Keymap;

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
