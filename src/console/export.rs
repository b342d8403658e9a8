//! `warroom export tenant TENANT_ID`: every affected mailbox of one tenant,
//! paged from the gateway, as CSV (RFC 4180 quoting) or JSON, for the
//! reseller who asked "which of our customers are in the 40%?".

use serde::Serialize;

use super::client::{GatewayClient, within};
use crate::api::{self, pb};
use crate::domain::MailboxState;

#[derive(Debug, Serialize, PartialEq)]
pub struct Row {
    pub address: String,
    pub state: String,
    pub eta_p50: Option<chrono::DateTime<chrono::Utc>>,
    pub eta_p90: Option<chrono::DateTime<chrono::Utc>>,
    /// None: not measured per mailbox (an empty CSV field, JSON null).
    pub queued_messages: Option<u64>,
}

/// Every mailbox of `tenant_id` in `states`, in reindex order.
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

/// One CSV field: quoted when it holds a comma, a quote or a line break,
/// with quotes doubled (RFC 4180).
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from("address,state,eta_p50,eta_p90,queued_messages\r\n");
    let ts = |t: &Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{}\r\n",
            field(&r.address),
            field(&r.state),
            ts(&r.eta_p50),
            ts(&r.eta_p90),
            r.queued_messages.map(|n| n.to_string()).unwrap_or_default()
        ));
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A minimal RFC 4180 reader for one line, to prove the writer's quoting.
    fn parse_line(line: &str) -> Vec<String> {
        let mut fields = vec![String::new()];
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    chars.next();
                    fields.last_mut().unwrap().push('"');
                }
                ('"', _) => quoted = !quoted,
                (',', false) => fields.push(String::new()),
                (c, _) => fields.last_mut().unwrap().push(c),
            }
        }
        fields
    }

    #[test]
    fn commas_and_quotes_round_trip() {
        let tricky = ["a,b", "say \"hi\"", "plain", "", "x\"", ",\",\""];
        let line = tricky
            .iter()
            .map(|s| field(s))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(parse_line(&line), tricky);
    }

    proptest! {
        #[test]
        fn any_fields_round_trip(fields in proptest::collection::vec("[^\r\n]{0,12}", 1..6)) {
            let line = fields.iter().map(|s| field(s)).collect::<Vec<_>>().join(",");
            prop_assert_eq!(parse_line(&line), fields);
        }
    }
}
