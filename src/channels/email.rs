//! Tenant notices by e-mail: every emergency contact of every affected
//! tenant gets the status update and that tenant's own slice of the outage
//! (how many of its mailboxes are affected, which ones with their ETAs, the
//! tenant's ETA) — never another tenant's data.
//!
//! One delivery per (tenant, contact), target `"TENANT_ID CONTACT"`. Each
//! attempt looks the tenant up again, so the figures are those at sending
//! time, and sends one message to that one contact over SMTP (no TLS: the
//! relay is expected on the same host or network, as a local MTA).
//!
//! Retries: the Message-ID is derived from the stored update and the target
//! only, so a message resent after a time-out (when the relay may have taken
//! it before the connection dropped) carries the same Message-ID and the
//! recipient's mail system or client can recognise it as the same message.

use std::fmt::Write as _;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{
    Channel, Context, Delivery, Facts, Outcome, Preview, TenantNotice, Update, plain_text,
};
use crate::domain::MailboxRow;
use crate::domain::csv as export;
use crate::domain::forecast::EtaRange;
use crate::domain::format::clip;

/// Up to this many affected mailboxes are listed in the message body; more
/// go into a CSV attachment.
pub const INLINE_MAX_ROWS: usize = 50;
/// Sample messages in a preview.
pub const PREVIEW_SAMPLES: usize = 3;
/// A preview sample longer than this (a big tenant's CSV) is cut, with a
/// note: the preview is for reading, the real message is sent whole.
pub const PREVIEW_MAX_BYTES: usize = 64 * 1024;
/// Longest tenant name and title put into a Subject (characters).
const SUBJECT_NAME_MAX: usize = 80;
const SUBJECT_TITLE_MAX: usize = 150;

/// How the gateway configures the channel.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    /// The sender, "noc@example.com" or "Example NOC <noc@example.com>".
    pub from: String,
    /// Limit for one attempt as a whole: connecting, the SMTP dialogue and
    /// the data. Past it the attempt is a `Retry` ("timed out").
    pub timeout: Duration,
}

/// The tenant-notice channel.
pub struct Email {
    from: Mailbox,
    /// Right-hand side of Message-IDs: the sender's domain when it is plain
    /// ASCII, else "warroom".
    id_domain: String,
    timeout: Duration,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

/// Why the channel's configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("email: `from` {from:?} is not an e-mail address: {why}")]
    From { from: String, why: String },
    #[error("email: smtp_host {0:?} is not a host name")]
    SmtpHost(String),
    #[error("email: smtp_port must not be 0")]
    ZeroPort,
    #[error("email: timeout must be longer than 0")]
    ZeroTimeout,
}

/// Why no message could be made for one contact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ComposeError {
    #[error("{contact:?} is not an e-mail address: {why}")]
    Contact { contact: String, why: String },
    #[error("content type: {0}")]
    ContentType(String),
    #[error("cannot build the message: {0}")]
    Build(String),
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Email {
    pub fn new(cfg: EmailConfig) -> Result<Self, ConfigError> {
        let from = Mailbox::from_str(cfg.from.trim()).map_err(|e| ConfigError::From {
            from: cfg.from.clone(),
            why: e.to_string(),
        })?;
        let host = cfg.smtp_host.trim();
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::SmtpHost(cfg.smtp_host.clone()));
        }
        if cfg.smtp_port == 0 {
            return Err(ConfigError::ZeroPort);
        }
        if cfg.timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        let domain = from.email.domain();
        let id_domain = if !domain.is_empty()
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            domain.to_ascii_lowercase()
        } else {
            "warroom".to_string()
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(cfg.smtp_port)
            .timeout(Some(cfg.timeout))
            .build();
        Ok(Email {
            from,
            id_domain,
            timeout: cfg.timeout,
            transport,
        })
    }

    /// The message for one delivery, as it would be sent at `now` (the
    /// incident's clock, as every other time in it).
    fn compose(
        &self,
        update: &Update,
        tenant_id: &str,
        contact: &Mailbox,
        slice: &Slice,
        now: DateTime<Utc>,
    ) -> Result<Message, ComposeError> {
        let target = target(tenant_id, contact.email.as_ref());
        // Stable for a delivery (all stored with the update). The operation
        // id and publication time are in it because update ids restart with
        // each war room: the next incident's su-000003 to the same contact
        // must not look like a duplicate (Gmail, for one, drops those).
        let key = fnv64(&[
            &update.id,
            &update.operation_id,
            &update.published_at.to_rfc3339(),
            &target,
        ]);
        let message_id = format!(
            "<{}.{}.{key:016x}@{}>",
            id_part(&update.id),
            id_part(tenant_id),
            self.id_domain
        );
        let tenant_label = match slice {
            Slice::Affected { notice, .. } if !one_line(&notice.name).is_empty() => {
                one_line(&notice.name)
            }
            _ => one_line(tenant_id),
        };
        let subject = format!(
            "[warroom] {}{}: {} — {}",
            if update.simulated { "SIMULATED " } else { "" },
            update.state.as_str().to_uppercase(),
            clip(&one_line(&update.title), SUBJECT_TITLE_MAX),
            clip(&tenant_label, SUBJECT_NAME_MAX),
        );

        let mut text = multi_line(&plain_text(update));
        text.push_str("\n----------------------------------------------------------------------\n");
        let _ = writeln!(text, "{tenant_label} (tenant {})", one_line(tenant_id));
        let as_of = now.format("%Y-%m-%d %H:%M UTC");
        let mut attachment = None;
        match slice {
            Slice::NotAffected => {
                let _ = writeln!(
                    text,
                    "None of your mailboxes is affected now (as of {as_of}): service is back \
                     for all of them."
                );
            }
            Slice::Affected { notice, rows } => {
                let _ = writeln!(
                    text,
                    "Your affected mailboxes: {} (as of {as_of})",
                    notice.affected
                );
                let _ = writeln!(
                    text,
                    "Estimated restoration for you: {}",
                    eta_text(&notice.eta)
                );
                if notice.resync_needed > 0 {
                    let _ = writeln!(
                        text,
                        "Mailboxes that serve mail again but whose mail programs must resync: {} \
                         (listed as resync_needed; a mail program may show old or missing mail \
                         until the account is refreshed or removed and added again)",
                        notice.resync_needed
                    );
                }
                if rows.len() as u64 != notice.affected + notice.resync_needed {
                    let _ = writeln!(
                        text,
                        "(The list below has {} mailboxes: it was read a moment later.)",
                        rows.len()
                    );
                }
                text.push('\n');
                if rows.len() <= INLINE_MAX_ROWS {
                    text.push_str(&inline_table(rows));
                } else {
                    let name = format!(
                        "warroom-{}-{}-affected-mailboxes.csv",
                        id_part(&update.id),
                        id_part(tenant_id)
                    );
                    let _ = writeln!(
                        text,
                        "The list of your {} affected mailboxes is attached as {name} \
                         (CSV: address, state, eta_p50, eta_p90, queued_messages; times in UTC).",
                        rows.len()
                    );
                    attachment = Some((name, csv(rows)));
                }
            }
        }
        let _ = write!(
            text,
            "\nYou receive this as an emergency contact of {tenant_label}.\n\
             Reference: {message_id} (a message with the same reference is a resend of this one).\n"
        );

        let to = Mailbox::new(None, contact.email.clone());
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id))
            .date(SystemTime::from(now))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".into(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Warroom-Update"),
                id_part(&update.id),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Warroom-Tenant"),
                id_part(tenant_id),
            ));
        let built = match attachment {
            None => builder.singlepart(SinglePart::plain(text)),
            Some((name, body)) => {
                let csv_type = ContentType::parse("text/csv; charset=utf-8")
                    .map_err(|e| ComposeError::ContentType(e.to_string()))?;
                builder.multipart(
                    MultiPart::mixed()
                        .boundary(format!("=_warroom_{key:016x}"))
                        .singlepart(SinglePart::plain(text))
                        .singlepart(Attachment::new(name).body(body, csv_type)),
                )
            }
        };
        built.map_err(|e| ComposeError::Build(e.to_string()))
    }

    async fn send(&self, message: &Message) -> Result<(), Outcome> {
        let sent = tokio::time::timeout(self.timeout, self.transport.send(message.clone())).await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(Outcome::Retry {
                reason: format!("SMTP timed out after {:?}", self.timeout),
                after: None,
                maybe_applied: false,
            }),
        }
    }
}

/// A tenant's part of a message, read from `Facts` at sending time.
#[derive(Debug, Clone, PartialEq)]
enum Slice {
    Affected {
        notice: TenantNotice,
        rows: Vec<MailboxRow>,
    },
    /// Affected when the update was published, not any more: the contact
    /// still gets the update (it tells them what happened, often that it is
    /// resolved), saying none of their mailboxes is affected now. Not
    /// sending would leave them with the previous update's bad news.
    NotAffected,
}

fn slice_for(facts: &dyn Facts, tenant_id: &str) -> Slice {
    let Some(notice) = facts
        .tenant_notice(tenant_id)
        .filter(|t| t.concerned() && t.tenant_id == tenant_id)
    else {
        return Slice::NotAffected;
    };
    slice_of(facts, notice)
}

fn slice_of(facts: &dyn Facts, notice: TenantNotice) -> Slice {
    let mut rows = facts.affected_mailboxes(&notice.tenant_id);
    // Never another tenant's data, even from a faulty source.
    let before = rows.len();
    rows.retain(|r| r.tenant_id == notice.tenant_id);
    if rows.len() != before {
        tracing::warn!(
            tenant = %notice.tenant_id,
            dropped = before - rows.len(),
            "email: affected_mailboxes returned rows of other tenants; left out"
        );
    }
    Slice::Affected { notice, rows }
}

/// The delivery target for one contact of one tenant.
pub fn target(tenant_id: &str, contact: &str) -> String {
    format!("{tenant_id} {contact}")
}

/// `"TENANT_ID CONTACT"` → (tenant id, contact); the tenant id never holds
/// whitespace (`targets` leaves such tenants out).
pub fn parse_target(target: &str) -> Option<(&str, &str)> {
    let (tenant, contact) = target.split_once(' ')?;
    let contact = contact.trim();
    (!tenant.is_empty() && !contact.is_empty()).then_some((tenant, contact))
}

/// Every (tenant, contact) target of `tenants`, contacts trimmed, without
/// empty or repeated (case-insensitively) contacts of one tenant. A contact
/// that is not an address stays: its delivery fails visibly in the outbox.
fn targets_of(tenants: &[TenantNotice]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, t) in tenants.iter().enumerate() {
        if t.tenant_id.is_empty() || t.tenant_id.chars().any(char::is_whitespace) {
            tracing::warn!(tenant = ?t.tenant_id, "email: tenant id unusable in a target; no notice");
            continue;
        }
        let mut seen: Vec<String> = Vec::new();
        for c in &t.contacts {
            let c = c.trim();
            if c.is_empty() || seen.iter().any(|s| s.eq_ignore_ascii_case(c)) {
                continue;
            }
            seen.push(c.to_string());
            out.push((i, target(&t.tenant_id, c)));
        }
        if seen.is_empty() {
            tracing::warn!(tenant = %t.tenant_id, "email: affected tenant has no emergency contact");
        }
    }
    out
}

/// SMTP errors: a 5xx reply or a client-side refusal is final, anything
/// else (4xx, refused or dropped connection, garbled reply) may pass later.
fn classify(e: &lettre::transport::smtp::Error) -> Outcome {
    let text = one_line(&e.to_string());
    if e.is_permanent() || e.is_client() {
        Outcome::Failed(format!("SMTP: {text}"))
    } else {
        Outcome::Retry {
            reason: format!("SMTP: {text}"),
            after: None,
            maybe_applied: false,
        }
    }
}

/// FNV-1a, 64 bits, over the parts separated by NUL: stable across Rust
/// versions and builds (unlike `DefaultHasher`), so Message-IDs stay the
/// same after an upgrade or a restart.
fn fnv64(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            // 0xff never occurs in UTF-8: the parts cannot run together.
            h ^= 0xff;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        for b in p.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// An id as a Message-ID / file-name / header token: letters, digits, '-'
/// and '_' only (others become '_'), at most 40 characters.
fn id_part(s: &str) -> String {
    let out: String = s
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() { "_".into() } else { out }
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}'
        )
}

/// Text for one line (a header, a table cell): control characters, line
/// breaks and bidi overrides become spaces, runs of spaces one space.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if is_unsafe(c) { ' ' } else { c };
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out
}

/// Text for a body: keeps line breaks and tabs, drops other control
/// characters (lone CRs, escapes) and bidi overrides.
fn multi_line(s: &str) -> String {
    s.replace("\r\n", "\n")
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !is_unsafe(c))
        .collect()
}

fn utc(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".into(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

fn eta_text(eta: &EtaRange) -> String {
    match (eta.p50, eta.p90) {
        (Some(p50), p90) => format!(
            "{} (likely, p50) — {} (at the latest, p90)",
            utc(Some(p50)),
            utc(p90.or(Some(p50)))
        ),
        _ if eta.reason.trim().is_empty() => "no estimate yet".into(),
        _ => format!("no estimate yet: {}", one_line(&eta.reason)),
    }
}

fn state_name(r: &MailboxRow) -> &'static str {
    r.state.map_or("unknown", |s| s.as_str())
}

fn inline_table(rows: &[MailboxRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let addresses: Vec<String> = rows.iter().map(|r| one_line(&r.address)).collect();
    let width = addresses
        .iter()
        .map(|a| a.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(7, 60);
    let mut s = format!(
        "{:<width$}  {:<15}  {:<20}  {}\n",
        "Mailbox", "State", "ETA p50", "ETA p90"
    );
    for (r, a) in rows.iter().zip(&addresses) {
        let _ = writeln!(
            s,
            "{a:<width$}  {:<15}  {:<20}  {}",
            state_name(r),
            utc(r.eta.p50),
            utc(r.eta.p90)
        );
    }
    s
}

/// The attachment: the same columns and quoting as `warroom export tenant`.
fn csv(rows: &[MailboxRow]) -> String {
    let rows: Vec<export::Row> = rows
        .iter()
        .map(|r| export::Row {
            address: r.address.clone(),
            state: state_name(r).to_string(),
            eta_p50: r.eta.p50,
            eta_p90: r.eta.p90,
            queued_messages: r.queued_messages,
        })
        .collect();
    export::csv(&rows)
}

fn cut(s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[… preview cut here: the message is {} bytes in full]\n",
        &s[..end],
        s.len()
    )
}

#[async_trait::async_trait]
impl Channel for Email {
    fn name(&self) -> &'static str {
        "email"
    }

    fn targets(&self, _: &Update, facts: &dyn Facts) -> Vec<String> {
        targets_of(&facts.affected_tenants())
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    fn preview(&self, update: &Update, facts: &dyn Facts) -> Vec<Preview> {
        let tenants = facts.affected_tenants();
        let targets = targets_of(&tenants);
        let mut reached: Vec<usize> = targets.iter().map(|(i, _)| *i).collect();
        reached.dedup();
        let silent = tenants.len() - reached.len();
        let mut summary = format!(
            "{} message{} to {} tenant{} (one per emergency contact of each affected tenant)",
            targets.len(),
            if targets.len() == 1 { "" } else { "s" },
            reached.len(),
            if reached.len() == 1 { "" } else { "s" },
        );
        if silent > 0 {
            let _ = write!(
                summary,
                "; {silent} affected tenant{} without a usable emergency contact will not be told",
                if silent == 1 { "" } else { "s" }
            );
        }
        let samples = reached.len().min(PREVIEW_SAMPLES);
        if samples > 0 {
            let _ = write!(
                summary,
                ". Below: {samples} sample{}, the first contact of the first tenants.",
                if samples == 1 { "" } else { "s" }
            );
        }
        summary.push('\n');
        let mut out = vec![Preview {
            channel: self.name().into(),
            content_type: "text/plain".into(),
            content: summary,
        }];
        let now = facts.now();
        for &i in reached.iter().take(PREVIEW_SAMPLES) {
            let Some((_, t)) = targets.iter().find(|(j, _)| *j == i) else {
                continue;
            };
            let Some((tenant_id, contact)) = parse_target(t) else {
                continue;
            };
            let built = Mailbox::from_str(contact)
                .map_err(|e| ComposeError::Contact {
                    contact: contact.to_string(),
                    why: e.to_string(),
                })
                .and_then(|mbox| {
                    let slice = slice_of(facts, tenants[i].clone());
                    self.compose(update, tenant_id, &mbox, &slice, now)
                });
            out.push(match built {
                Ok(m) => Preview {
                    channel: self.name().into(),
                    content_type: "message/rfc822".into(),
                    content: cut(
                        String::from_utf8_lossy(&m.formatted()).into_owned(),
                        PREVIEW_MAX_BYTES,
                    ),
                },
                Err(e) => Preview {
                    channel: self.name().into(),
                    content_type: "text/plain".into(),
                    content: format!(
                        "No message for {}: {}\n",
                        one_line(t),
                        one_line(&e.to_string())
                    ),
                },
            });
        }
        out
    }

    async fn deliver(&self, update: &Update, delivery: &Delivery, ctx: &Context<'_>) -> Outcome {
        let Some((tenant_id, contact)) = parse_target(&delivery.target) else {
            return Outcome::Failed(format!(
                "malformed target {:?} (expected \"TENANT_ID CONTACT\")",
                one_line(&delivery.target)
            ));
        };
        let contact = match Mailbox::from_str(contact) {
            Ok(m) => m,
            Err(e) => {
                return Outcome::Failed(format!(
                    "contact {:?} of tenant {} is not an e-mail address: {e}",
                    one_line(contact),
                    one_line(tenant_id)
                ));
            }
        };
        let slice = slice_for(ctx.facts, tenant_id);
        let message = match self.compose(update, tenant_id, &contact, &slice, ctx.facts.now()) {
            Ok(m) => m,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let id = message
            .headers()
            .get_raw("Message-ID")
            .unwrap_or_default()
            .to_string();
        match self.send(&message).await {
            Ok(()) => Outcome::Sent(format!("{id} to {}", contact.email)),
            Err(outcome) => outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IncidentState, MailboxState};
    use chrono::TimeZone;

    fn email() -> Email {
        Email::new(EmailConfig {
            smtp_host: "127.0.0.1".into(),
            smtp_port: 25,
            from: "Warroom <noc@ops.example>".into(),
            timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    fn update() -> Update {
        Update {
            id: "su-000003".into(),
            seq: 3,
            operation_id: "op-1".into(),
            state: IncidentState::Identified,
            title: "IMAP outage".into(),
            body: "We found it.".into(),
            components: vec![],
            next_update: None,
            published_by: "alice".into(),
            published_at: Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
            simulated: false,
        }
    }

    fn notice(id: &str, name: &str, contacts: &[&str]) -> TenantNotice {
        TenantNotice {
            tenant_id: id.into(),
            name: name.into(),
            contacts: contacts.iter().map(|c| c.to_string()).collect(),
            affected: 1,
            resync_needed: 0,
            eta: EtaRange::unknown("measuring"),
        }
    }

    fn row(tenant: &str, address: &str) -> MailboxRow {
        MailboxRow {
            address: address.into(),
            tenant_id: tenant.into(),
            state: Some(MailboxState::Reindexing),
            ..Default::default()
        }
    }

    struct Leaky;
    impl Facts for Leaky {
        fn affected_tenants(&self) -> Vec<TenantNotice> {
            vec![notice("t1", "One", &["a@one.example"])]
        }
        fn affected_mailboxes(&self, _: &str) -> Vec<MailboxRow> {
            vec![
                row("t1", "mine@one.example"),
                row("t2", "theirs@two.example"),
            ]
        }
    }

    fn text(m: &Message) -> String {
        String::from_utf8_lossy(&m.formatted()).into_owned()
    }

    #[test]
    fn new_checks_the_config() {
        let ok = EmailConfig {
            smtp_host: "localhost".into(),
            smtp_port: 25,
            from: "noc@ops.example".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(Email::new(ok.clone()).is_ok());
        for bad in [
            "",
            "not an address",
            "a@",
            "noc@ops.example\r\nBcc: x@y.example",
        ] {
            let cfg = EmailConfig {
                from: bad.into(),
                ..ok.clone()
            };
            assert!(Email::new(cfg).is_err(), "{bad:?} accepted");
        }
        let refused = |cfg: EmailConfig| Email::new(cfg).err().map(|e| e.to_string());
        assert_eq!(
            refused(EmailConfig {
                smtp_host: "".into(),
                ..ok.clone()
            })
            .as_deref(),
            Some("email: smtp_host \"\" is not a host name")
        );
        assert_eq!(
            refused(EmailConfig {
                smtp_port: 0,
                ..ok.clone()
            })
            .as_deref(),
            Some("email: smtp_port must not be 0")
        );
        assert_eq!(
            refused(EmailConfig {
                timeout: Duration::ZERO,
                ..ok.clone()
            })
            .as_deref(),
            Some("email: timeout must be longer than 0")
        );
        let e = refused(EmailConfig {
            from: "a@".into(),
            ..ok
        });
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("email: `from` \"a@\" is not an e-mail address: ")),
            "{e:?}"
        );
    }

    #[test]
    fn targets_round_trip_and_skip_unusable_ones() {
        let tenants = vec![
            notice(
                "t1",
                "One",
                &["a@one.example", " A@one.example ", "", "b@one.example"],
            ),
            notice("bad id", "Two", &["x@two.example"]),
            notice("t3", "Three", &[]),
        ];
        let t: Vec<String> = targets_of(&tenants).into_iter().map(|(_, t)| t).collect();
        assert_eq!(t, ["t1 a@one.example", "t1 b@one.example"]);
        assert_eq!(parse_target(&t[1]), Some(("t1", "b@one.example")));
        assert_eq!(parse_target("t1"), None);
        assert_eq!(parse_target(" a@b"), None);
        assert_eq!(parse_target("t1  "), None);
    }

    #[test]
    fn rows_of_other_tenants_are_left_out() {
        let Slice::Affected { rows, .. } = slice_for(&Leaky, "t1") else {
            panic!("t1 is affected");
        };
        assert_eq!(rows, vec![row("t1", "mine@one.example")]);
        assert_eq!(slice_for(&Leaky, "t2"), Slice::NotAffected);
    }

    #[test]
    fn message_id_is_the_same_for_a_retry_and_differs_otherwise() {
        let e = email();
        let u = update();
        let c: Mailbox = "a@one.example".parse().unwrap();
        let d: Mailbox = "b@one.example".parse().unwrap();
        let s = slice_for(&Leaky, "t1");
        let now = Utc::now();
        let id = |u: &Update, t: &str, c: &Mailbox| {
            let m = e.compose(u, t, c, &s, now).unwrap();
            m.headers().get_raw("Message-ID").unwrap().to_string()
        };
        let first = id(&u, "t1", &c);
        assert!(first.starts_with("<su-000003.t1."), "{first}");
        assert!(first.ends_with("@ops.example>"), "{first}");
        assert_eq!(first, id(&u, "t1", &c));
        assert_ne!(first, id(&u, "t1", &d));
        assert_ne!(first, id(&u, "t2", &c));
        // The same update id in another war room (published another time).
        let mut later = u.clone();
        later.published_at += chrono::Duration::days(30);
        assert_ne!(first, id(&later, "t1", &c));
    }

    #[test]
    fn header_values_cannot_inject_headers() {
        let e = email();
        let mut u = update();
        u.title = "Outage\r\nBcc: evil@attacker.example".into();
        u.simulated = true;
        let facts = Leaky;
        let mut n = facts.affected_tenants().remove(0);
        n.name = "Evil\nX-Injected: yes\u{202E}".into();
        let s = Slice::Affected {
            notice: n,
            rows: vec![],
        };
        let c: Mailbox = "a@one.example".parse().unwrap();
        let m = e.compose(&u, "t1", &c, &s, Utc::now()).unwrap();
        let raw = text(&m);
        let headers = &raw[..raw.find("\r\n\r\n").unwrap()];
        assert!(!headers.contains("\r\nBcc:"), "{headers}");
        assert!(!headers.contains("\r\nX-Injected:"), "{headers}");
        assert_eq!(
            m.headers().get_raw("Subject"),
            Some(
                "[warroom] SIMULATED IDENTIFIED: Outage Bcc: evil@attacker.example — Evil X-Injected: yes"
            )
        );
        assert_eq!(m.envelope().to().len(), 1);
    }

    #[test]
    fn one_line_strips_controls() {
        assert_eq!(one_line(" a\r\n\tb\u{0}c\u{2028}d  "), "a b c d");
        assert_eq!(one_line("\u{1b}[2J"), "[2J");
        assert_eq!(multi_line("a\r\nb\rc\u{1b}"), "a\nbc");
    }

    #[test]
    fn preview_is_cut_on_a_char_boundary() {
        let s = "é".repeat(10);
        let c = cut(s, 5);
        assert!(c.starts_with("éé\n[… preview cut"), "{c}");
    }
}
