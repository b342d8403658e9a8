//! Status updates in the gateway: lint a draft, fill its placeholders from
//! the live figures, store it with one outbox row per channel and target
//! (one transaction, with the audit event), and let the outbox worker
//! deliver. Also the board every console's header shows.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::hub::Hub;
use super::record::redacted;
use crate::api::pb;
use crate::channels::{self, Channel, Facts, Preview, TenantNotice, Update};
use crate::domain::forecast::EtaRange;
use crate::domain::format::counted;
use crate::domain::status::{self, Draft, Figures, Finding};
use crate::domain::{MailboxRow, MailboxState, Overview};
use crate::sources::MailboxQuery;
use crate::store::{DeliveryStatus, Store, StoreError};

/// What the gateway publishes to.
pub struct Publishing {
    pub channels: Vec<Arc<dyn Channel>>,
    /// (id, name) of the components an update may name.
    pub components: Vec<(String, String)>,
    /// The built-in page's address, shown on every console.
    pub page_url: String,
}

/// The components of a mail platform, as the service health panel names
/// them.
pub fn default_components() -> Vec<(String, String)> {
    [
        ("imap", "IMAP"),
        ("pop", "POP3"),
        ("webmail", "Webmail"),
        ("smtp-in", "Inbound mail (SMTP)"),
        ("smtp-out", "Outbound mail (SMTP)"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

impl Default for Publishing {
    fn default() -> Self {
        Publishing {
            channels: vec![Arc::new(channels::Page)],
            components: default_components(),
            page_url: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Errors in the draft: nothing published.
    #[error("{}", summary(.0))]
    Lint(Vec<Finding>),
    /// Only warnings, not confirmed: nothing published.
    #[error("{}", summary(.0))]
    Unconfirmed(Vec<Finding>),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// A refusal's `grpc-message`: how many findings, and the first one
/// (clipped). Every finding is in the details (`refusal_details`); a
/// message naming 60 of them took the trailers over HTTP/2's 16 KiB and
/// clients got "h2 protocol error" instead of any of them.
fn summary(f: &[Finding]) -> String {
    let errors = f.iter().filter(|f| f.error).count() as u64;
    let warnings = f.len() as u64 - errors;
    let (e, w) = (
        counted(errors, "error", "errors"),
        counted(warnings, "warning", "warnings"),
    );
    let counts = match (errors, warnings) {
        (0, _) => format!("{w} to confirm"),
        (_, 0) => e,
        _ => format!("{e} and {w}"),
    };
    match f.first() {
        None => "refused".into(),
        Some(first) => format!(
            "refused: {counts}{} {}: {}",
            if f.len() == 1 { ":" } else { "; first:" },
            first.field,
            crate::domain::format::clip(&first.message, SUMMARY_CHARS)
        ),
    }
}

/// The first finding's message in a refusal's `grpc-message`, at most.
const SUMMARY_CHARS: usize = 200;
/// A refusal's details (before base64, which adds a third) stay under
/// this, so details, message and the other trailers fit in the 16 KiB of
/// header list HTTP/2 clients accept by default.
pub const DETAILS_BUDGET_BYTES: usize = 8 * 1024;
/// When every finding whole does not fit, each message is clipped to this
/// many bytes (UTF-8, with its `…`): 60 findings of any length fit.
pub const CLIPPED_FINDING_BYTES: usize = 100;

/// `s` in at most `max` bytes, cut at a character and ending with `…` when cut.
fn clip_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

pub fn finding_to_pb(f: &Finding) -> pb::LintFinding {
    pb::LintFinding {
        error: f.error,
        field: f.field.to_string(),
        message: f.message.clone(),
    }
}

/// A refused publish's findings as its status details: every finding
/// whole when they fit in `DETAILS_BUDGET_BYTES`; otherwise each clipped
/// to `CLIPPED_FINDING_BYTES`, in order (errors first), as many
/// as fit, and how many were left out.
pub fn refusal_details(f: &[Finding]) -> pb::PreviewStatusUpdateResponse {
    use prost::Message;
    let mut out = pb::PreviewStatusUpdateResponse {
        findings: f.iter().map(finding_to_pb).collect(),
        ..Default::default()
    };
    if out.encoded_len() <= DETAILS_BUDGET_BYTES {
        return out;
    }
    out.findings.clear();
    // Room for the count itself (a tag and a varint).
    let mut used = 1 + 5;
    for finding in f {
        let mut one = finding_to_pb(finding);
        one.message = clip_bytes(&one.message, CLIPPED_FINDING_BYTES);
        let len = one.encoded_len();
        let framed = 1 + prost::length_delimiter_len(len) + len;
        if used + framed > DETAILS_BUDGET_BYTES {
            break;
        }
        used += framed;
        out.findings.push(one);
    }
    out.findings_left_out = u32::try_from(f.len() - out.findings.len()).unwrap_or(u32::MAX);
    out
}

/// The live facts channels read, from the hub's source.
pub struct HubFacts<'a>(pub &'a Hub);

impl Facts for HubFacts<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }

    fn page_url(&self) -> String {
        self.0.record.publishing().page_url.clone()
    }

    fn affected_tenants(&self) -> Vec<TenantNotice> {
        let view = self.0.view();
        let src = view.source();
        src.tenants()
            .iter()
            .filter(|t| t.affected() > 0 || t.states.get(MailboxState::ResyncNeeded) > 0)
            .map(|t| notice(src, t))
            .collect()
    }

    fn tenant_notice(&self, tenant_id: &str) -> Option<TenantNotice> {
        let view = self.0.view();
        let src = view.source();
        src.tenant(tenant_id).map(|t| notice(src, &t))
    }

    /// In one query: the sources build a tenant's whole list to page it,
    /// so paging here would cost one full pass per page.
    fn affected_mailboxes(&self, tenant_id: &str) -> Vec<MailboxRow> {
        let q = MailboxQuery {
            tenant_id: tenant_id.to_string(),
            // Without service, and those whose clients must resync: both
            // are in a tenant's notice.
            states: MailboxState::AFFECTED
                .into_iter()
                .chain([MailboxState::ResyncNeeded])
                .collect(),
            sort_by_eta: true,
            offset: 0,
            limit: usize::MAX,
        };
        self.0
            .view()
            .source()
            .mailboxes(&q)
            .map(|page| page.rows)
            .unwrap_or_default()
    }
}

/// What a tenant's notice says: its contacts, count and ETA.
fn notice(src: &dyn crate::sources::Source, t: &crate::domain::TenantRow) -> TenantNotice {
    TenantNotice {
        contacts: src.contacts(&t.id),
        tenant_id: t.id.to_string(),
        name: t.name.to_string(),
        affected: t.affected(),
        resync_needed: t.states.get(MailboxState::ResyncNeeded),
        eta: t.eta.clone(),
    }
}

/// "Oct 07 08:41–Oct 08 13:40 UTC", absolute (a status update is read
/// later, elsewhere), or why there is no estimate.
fn eta_text(eta: &EtaRange) -> String {
    let f = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M").to_string();
    match (eta.p50, eta.p90) {
        (Some(a), Some(b)) if f(a) == f(b) => format!("{} UTC", f(a)),
        (Some(a), Some(b)) => format!("{}–{} UTC", f(a), f(b)),
        _ if eta.reason.is_empty() => "not estimated yet".into(),
        _ => format!("not estimated yet ({})", eta.reason),
    }
}

/// The figures a body's placeholders are filled with, from the overview.
pub fn figures(o: &Overview) -> Figures {
    let t = &o.totals;
    // The cluster in trouble: the one with the most mailboxes affected.
    let c = o.clusters.iter().max_by_key(|c| c.affected_mailboxes);
    let done = t.restored_mailboxes as f64;
    let whole = done + t.affected_mailboxes as f64;
    Figures {
        affected_mailboxes: t.affected_mailboxes,
        affected_tenants: t.affected_tenants,
        restored_pct: if whole > 0.0 {
            100.0 * done / whole
        } else {
            100.0
        },
        queue_depth: t.queued_messages,
        queue_eta: c.map_or_else(
            || "not estimated yet".into(),
            |c| eta_text(&c.queue.drain_eta),
        ),
        reindex_eta: c.map_or_else(|| "not estimated yet".into(), |c| eta_text(&c.reindex.eta)),
    }
}

impl Hub {
    /// Lints `draft` against the last published state and this gateway's
    /// components, and renders it as it would go out now (with the id and
    /// sequence number it would get).
    fn render(
        &self,
        draft: &Draft,
        store: &dyn Store,
        actor: &str,
        operation_id: &str,
    ) -> Result<(Vec<Finding>, Update), PublishError> {
        let latest = store.latest_update()?;
        let components: Vec<String> = self
            .record
            .publishing()
            .components
            .iter()
            .map(|c| c.0.clone())
            .collect();
        let ids: Vec<&str> = components.iter().map(String::as_str).collect();
        let (overview, simulated, now) = {
            let view = self.view();
            let o = view.source().overview();
            let sim = o.simulated();
            (o, sim, view.source().now())
        };
        let mut findings = status::lint(draft, latest.as_ref().map(|u| u.state), &ids, now);
        findings.extend(status::contradictions(draft, &overview));
        let seq = latest.map_or(1, |u| u.seq + 1);
        let update = Update {
            id: crate::store::update_id(seq),
            seq,
            operation_id: operation_id.to_string(),
            state: draft.state,
            title: draft.title.trim().to_string(),
            body: status::fill(&draft.body, &figures(&overview)),
            components: draft.components.clone(),
            next_update: draft.next_update,
            published_by: actor.to_string(),
            published_at: now,
            simulated,
        };
        Ok((findings, update))
    }

    /// What each channel would receive, and what is wrong with the draft.
    pub fn preview(
        &self,
        draft: &Draft,
        actor: &str,
    ) -> Result<(Vec<Finding>, Vec<Preview>), PublishError> {
        let (findings, update) = {
            let store = self.record.store();
            self.render(draft, &**store, actor, "preview")?
        };
        let facts = HubFacts(self);
        let channels = self.record.publishing().channels.clone();
        let previews = channels
            .iter()
            .flat_map(|c| c.preview(&update, &facts))
            .collect();
        Ok((findings, previews))
    }

    /// Publishes `draft` once per `operation_id`: stores it with its
    /// deliveries and audit event, then wakes the outbox. Returns the
    /// update, its deliveries and whether it is new.
    pub fn publish(
        &self,
        draft: &Draft,
        operation_id: &str,
        confirm_warnings: bool,
        actor: &str,
    ) -> Result<(Update, Vec<DeliveryStatus>, bool), PublishError> {
        if operation_id.is_empty()
            || operation_id.len() > 64
            || operation_id.chars().any(|c| !c.is_ascii_graphic())
        {
            return Err(PublishError::Invalid(
                "operation_id must be 1–64 printable ASCII characters".into(),
            ));
        }
        let channels = self.record.publishing().channels.clone();
        let mut store = self.record.store();
        // A retry of a publish whose answer was lost gets that update back,
        // whatever was published since (the lint would judge it anew).
        if let Some(done) = store.update_by_operation(operation_id)? {
            let list = redacted(&channels, store.deliveries(Some(&done.id))?);
            return Ok((done, list, false));
        }
        let (findings, update) = self.render(draft, &**store, actor, operation_id)?;
        let (errors, warnings): (Vec<Finding>, Vec<Finding>) =
            findings.into_iter().partition(|f| f.error);
        if !errors.is_empty() {
            return Err(PublishError::Lint(errors));
        }
        if !warnings.is_empty() && !confirm_warnings {
            return Err(PublishError::Unconfirmed(warnings));
        }
        let facts = HubFacts(self);
        let deliveries: Vec<(String, String)> = channels
            .iter()
            .flat_map(|c| {
                c.targets(&update, &facts)
                    .into_iter()
                    .map(|t| (c.name().to_string(), t))
            })
            .collect();
        // The record keeps what was said, figures filled in.
        let figures_quoted = format!(
            "{} · {} deliveries · {}",
            update.state.as_str(),
            deliveries.len(),
            update.body
        );
        let (stored, fresh) = store.publish(&update, &deliveries, &figures_quoted)?;
        let list = store.deliveries(Some(&stored.id))?;
        if fresh {
            // What was just said is what slips are measured from now on
            // (the store's lock is held: store before state).
            self.write().source.published();
        }
        drop(store);
        if fresh {
            self.record.wake_outbox();
            tracing::info!(id = %stored.id, by = %actor, deliveries = list.len(), "status update published");
        }
        Ok((stored, list, fresh))
    }

    /// Every status update, oldest first, with its deliveries.
    pub fn status_updates(&self) -> Result<Vec<(Update, Vec<DeliveryStatus>)>, StoreError> {
        let channels = self.record.publishing().channels.clone();
        let store = self.record.store();
        store
            .status_updates()?
            .into_iter()
            .map(|u| {
                let d = redacted(&channels, store.deliveries(Some(&u.id))?);
                Ok((u, d))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn findings(n: usize, message_chars: usize) -> Vec<Finding> {
        (0..n)
            .map(|i| Finding {
                error: true,
                field: "body",
                message: format!(
                    "unknown placeholder {{p{i:03}}} {}",
                    "x".repeat(message_chars)
                ),
            })
            .collect()
    }

    #[test]
    fn a_few_findings_go_whole_and_the_message_is_a_summary() {
        let f = findings(3, 20);
        let d = refusal_details(&f);
        assert_eq!(d.findings.len(), 3);
        assert_eq!(d.findings[2].message, f[2].message);
        assert_eq!(d.findings_left_out, 0);
        let msg = summary(&f);
        assert!(
            msg.starts_with("refused: 3 errors; first: body: unknown placeholder {p000}"),
            "{msg}"
        );
        assert_eq!(
            summary(&f[..1]),
            format!("refused: 1 error: body: {}", f[0].message)
        );
        let warning = Finding {
            error: false,
            field: "state",
            message: "the state goes back".into(),
        };
        assert_eq!(
            summary(&[warning]),
            "refused: 1 warning to confirm: state: the state goes back"
        );
    }

    #[test]
    fn sixty_long_findings_all_fit_clipped_and_more_are_counted() {
        let f = findings(60, 400);
        let d = refusal_details(&f);
        assert!(
            d.encoded_len() <= DETAILS_BUDGET_BYTES,
            "{}",
            d.encoded_len()
        );
        assert_eq!((d.findings.len(), d.findings_left_out), (60, 0));
        assert!(
            d.findings[59]
                .message
                .starts_with("unknown placeholder {p059}")
        );
        assert!(d.findings[59].message.len() <= CLIPPED_FINDING_BYTES);
        assert!(d.findings[59].message.ends_with('…'));

        // Four bytes a character: still 60.
        let wide: Vec<Finding> = (0..60)
            .map(|i| Finding {
                error: true,
                field: "next_update",
                message: format!("{i} {}", "𝄞".repeat(200)),
            })
            .collect();
        let d = refusal_details(&wide);
        assert!(
            d.encoded_len() <= DETAILS_BUDGET_BYTES,
            "{}",
            d.encoded_len()
        );
        assert_eq!((d.findings.len(), d.findings_left_out), (60, 0));
        assert!(d.findings[7].message.starts_with("7 𝄞"));

        let f = findings(500, 400);
        let d = refusal_details(&f);
        assert!(
            d.encoded_len() <= DETAILS_BUDGET_BYTES,
            "{}",
            d.encoded_len()
        );
        assert!(d.findings.len() >= 60, "{}", d.findings.len());
        assert_eq!(d.findings.len() + d.findings_left_out as usize, 500);
        // The message stays short whatever the findings.
        assert!(summary(&f).chars().count() < 300);
    }
}
