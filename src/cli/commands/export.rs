//! `warroom export`.

use crate::cli::args::*;
use crate::cli::wiring::*;
use warroom::config::Config;

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
