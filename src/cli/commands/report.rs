//! `warroom report`.

use crate::cli::args::*;
use crate::cli::wiring::*;
use warroom::config::Config;

pub(crate) async fn report(args: ConnectArgs, cfg: Config) -> anyhow::Result<i32> {
    let (client, embedded) = gateway_or_demo(&args, &cfg).await?;
    let text = warroom::client::report::fetch(&client).await;
    if let Some(gw) = embedded {
        gw.stop().await;
    }
    out!("{}", text?);
    Ok(0)
}
