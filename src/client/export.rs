//! `warroom export tenant TENANT_ID`: every affected mailbox of one tenant,
//! paged from the gateway, as CSV (RFC 4180 quoting) or JSON, for the
//! reseller who asked "which of our customers are in the 40%?".

use super::{GatewayClient, within};
use crate::api::{self, pb};
use crate::domain::MailboxState;
pub use crate::domain::csv::{Row, csv, field};

/// Every mailbox of `tenant_id` in `states`, in reindex order.
/// The tenant id for what support typed: a tenant id, or a domain or
/// tenant name that matches exactly (`acme-title.com`). None: nothing
/// matches exactly (a misspelling is not guessed for an export).
pub async fn tenant_of(
    client: &GatewayClient,
    query: &str,
) -> anyhow::Result<Option<super::lookup::Match>> {
    let found = super::lookup::matches(client, query, 1)
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(found.matches.into_iter().find(|m| {
        m.kind != "mailbox" && m.quality == Some(crate::lookup::MatchQuality::Exact.as_str())
    }))
}

pub async fn fetch(
    client: &GatewayClient,
    tenant_id: &str,
    states: &[MailboxState],
) -> anyhow::Result<Vec<Row>> {
    let mut raw = client.raw();
    let mut token = String::new();
    let mut rows = Vec::new();
    loop {
        let request = pb::ListMailboxesRequest {
            tenant_id: tenant_id.to_string(),
            states: states
                .iter()
                .map(|&s| api::mailbox_state_to_pb(s) as i32)
                .collect(),
            sort: pb::MailboxSort::Eta as i32,
            page_size: 1_000,
            page_token: token.clone(),
        };
        let page = within(30, raw.list_mailboxes(request))
            .await
            .map_err(|f| anyhow::anyhow!("{}", f.describe()))?;
        rows.extend(page.mailboxes.iter().map(|m| {
            let m = api::mailbox_from_pb(m);
            Row {
                address: m.address,
                state: m.state.map_or("unknown", |s| s.as_str()).to_string(),
                eta_p50: m.eta.p50,
                eta_p90: m.eta.p90,
                queued_messages: m.queued_messages,
            }
        }));
        if page.next_page_token.is_empty() {
            return Ok(rows);
        }
        token = page.next_page_token;
    }
}

/// Writes a tenant's affected mailboxes to `dir` as CSV, from the console.
/// Returns the file's path and the number of rows.
pub async fn to_file(
    client: &GatewayClient,
    tenant_id: &str,
    dir: &std::path::Path,
) -> Result<(std::path::PathBuf, usize), String> {
    let rows = fetch(client, tenant_id, &MailboxState::AFFECTED)
        .await
        .map_err(|e| format!("export failed: {e}"))?;
    // Ids come from the gateway: keep only safe characters in a file name.
    let safe: String = tenant_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    let name = format!(
        "warroom-{safe}-affected-{}.csv",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    let path = dir.join(name);
    std::fs::write(&path, csv(&rows))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((path, rows.len()))
}
