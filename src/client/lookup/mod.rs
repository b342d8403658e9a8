//! `warroom lookup QUERY`: the support desk's question — is this customer
//! affected, and when is it back? — answered from the gateway, as text a
//! person can read out or as JSON for scripts. Every string from the gateway
//! is sanitised; nothing here colours or styles output.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{GatewayClient, within};
use crate::api::{self, pb};
use crate::domain::forecast::{EtaRange, NoEstimate};
use crate::domain::format::{
    clock, duration, eta_range, eta_relative, slip_basis, slip_marker, thousands,
};
use crate::domain::sanitize::sanitize;
use crate::domain::slip::EtaSlip;
use crate::lookup::MatchQuality;

/// Longest query the gateway accepts, in bytes.
pub const MAX_QUERY_BYTES: usize = 512;

/// Why a query cannot be sent, in words.
pub fn check_query(q: &str) -> Result<(), String> {
    if q.trim().is_empty() {
        return Err(
            "the query is empty: give a mailbox address, a domain, or a tenant id or name".into(),
        );
    }
    if q.len() > MAX_QUERY_BYTES {
        return Err(format!(
            "the query is {} bytes; the limit is {MAX_QUERY_BYTES}",
            q.len()
        ));
    }
    if q.chars().any(char::is_control) {
        return Err("the query contains control characters".into());
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Match {
    pub kind: &'static str,
    /// How it matched the query: "exact", "prefix" or "approximate" (a
    /// misspelling); null from a gateway that does not say.
    #[serde(rename = "match")]
    pub quality: Option<&'static str>,
    pub address: Option<String>,
    pub domain: Option<String>,
    pub tenant_id: String,
    pub tenant_name: Option<String>,
    /// "ok", "locked_out", … for a mailbox (null: not known yet);
    /// "affected", "unknown" (some not checked yet, none found affected)
    /// or "ok" for a tenant or domain.
    pub state: Option<&'static str>,
    pub cluster: Option<String>,
    pub volume: Option<String>,
    pub reindex_position: Option<u64>,
    pub affected_mailboxes: Option<u64>,
    pub mailboxes: Option<u64>,
    /// Of a tenant or domain: mailboxes whose state is not known yet (the
    /// damage sweep has not probed them); while above 0,
    /// `affected_mailboxes` is a lower bound and `state` is never "ok".
    pub unchecked_mailboxes: Option<u64>,
    /// None: not measured (JSON null), never 0.
    pub queued_messages: Option<u64>,
    pub eta_p50: Option<DateTime<Utc>>,
    pub eta_p90: Option<DateTime<Utc>>,
    pub eta_note: Option<String>,
    /// Why there is no estimate, as a kind ("not_identified", "no_progress_yet",
    /// "too_slow", "waits_for_repair"); null when there is one or no kind fits.
    pub no_estimate: Option<NoEstimate>,
    /// The tenant's ETA moved later than it was published or first shown
    /// (for a mailbox: its tenant's); null when it did not.
    pub eta_slip: Option<Slip>,
    pub last_error: Option<String>,
}

/// A slip as `warroom lookup --json` gives it (see `domain::slip`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Slip {
    /// How much later the p90 is than the baseline; null when withdrawn.
    pub later_by_seconds: Option<i64>,
    /// No estimate now, after there was one.
    pub withdrawn: bool,
    /// When the baseline was shown or published (source clock).
    pub since: DateTime<Utc>,
    /// The p90 then.
    pub baseline_p90: DateTime<Utc>,
    /// "published" (the last status update) or "first_shown".
    pub basis: &'static str,
    #[serde(skip)]
    slip: EtaSlip,
}

impl Slip {
    fn new(slip: &EtaSlip) -> Self {
        Slip {
            later_by_seconds: slip.later_by.map(|d| d.num_seconds()),
            withdrawn: slip.withdrawn(),
            since: slip.since,
            baseline_p90: slip.baseline_p90,
            basis: slip.basis.as_str(),
            slip: slip.clone(),
        }
    }

    /// "↗ +2h 05m since 14:00 (the p90 was 16:00 when first shown)".
    pub fn line(&self, now: DateTime<Utc>) -> String {
        format!(
            "{} ({})",
            slip_marker(&self.slip, now),
            slip_basis(&self.slip, now)
        )
    }

    /// What the customer is told about it: "that is 2h 05m later than
    /// estimated at 14:00 UTC".
    pub fn say(&self, now: DateTime<Utc>) -> String {
        let at = clock(self.since, now);
        match self.slip.later_by {
            Some(d) => format!("that is {} later than estimated at {at} UTC", duration(d)),
            None => format!("the estimate given at {at} UTC no longer holds"),
        }
    }
}

/// One Lookup's matches, ranked (exact, prefix, approximate; affected
/// first within each), and how many matched in all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matches {
    pub matches: Vec<Match>,
    /// None: the gateway did not count (one from before the field).
    pub total: Option<u64>,
    /// `total` is a lower bound ("at least").
    pub total_is_lower_bound: bool,
}

impl Matches {
    /// "5 of 78 matches", "20 of at least 1,000 matches", "3 matches",
    /// "no matches"; without a total from the gateway, what was returned.
    pub fn count(&self) -> String {
        let shown = self.matches.len() as u64;
        let noun = |n: u64| if n == 1 { "match" } else { "matches" };
        match self.total {
            Some(t) if self.total_is_lower_bound => {
                format!("{} of at least {} matches", thousands(shown), thousands(t))
            }
            Some(t) if t > shown => {
                format!("{} of {} {}", thousands(shown), thousands(t), noun(t))
            }
            _ if shown == 0 => "no matches".into(),
            _ => format!("{} {}", thousands(shown), noun(shown)),
        }
    }

    /// More matched than were returned.
    pub fn more(&self) -> bool {
        self.total_is_lower_bound || self.total.is_some_and(|t| t > self.matches.len() as u64)
    }

    /// The best match, when it is only approximate: what to ask "did you
    /// mean …?" about.
    pub fn did_you_mean(&self) -> Option<String> {
        let m = self.matches.first()?;
        (m.quality == Some(MatchQuality::Approximate.as_str())).then(|| m.name().to_string())
    }
}

#[derive(Debug, Serialize)]
pub struct Answer {
    pub query: String,
    /// The source clock the ETAs are relative to.
    pub now: Option<DateTime<Utc>>,
    pub simulated: bool,
    /// How many matched in all; `matches` are the first, best first.
    /// Null: the gateway did not count.
    pub total: Option<u64>,
    /// `total` is a lower bound: more matched than the gateway counted.
    pub total_is_lower_bound: bool,
    pub matches: Vec<Match>,
    /// When the war room promised its next status update (None: no promise).
    pub next_update: Option<DateTime<Utc>>,
}

impl Match {
    /// What matched: the address, the domain, or the tenant's name.
    pub fn name(&self) -> &str {
        self.address
            .as_deref()
            .or(self.domain.as_deref())
            .or(self.tenant_name.as_deref())
            .unwrap_or(&self.tenant_id)
    }

    pub fn is_approximate(&self) -> bool {
        self.quality == Some(MatchQuality::Approximate.as_str())
    }
}

/// `x` made inert, without a copy when it already is.
fn sanitized(x: String) -> String {
    match sanitize(&x) {
        std::borrow::Cow::Borrowed(_) => x,
        std::borrow::Cow::Owned(clean) => clean,
    }
}

fn s(x: &str) -> String {
    sanitize(x).into_owned()
}

/// p50, p90, and when there is no estimate, why (in words and as a kind).
type EtaParts = (
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<NoEstimate>,
);

fn eta_parts(e: &EtaRange) -> EtaParts {
    let none = !e.is_known();
    (
        e.p50,
        e.p90,
        (none && !e.reason.is_empty()).then(|| s(&e.reason)),
        (none && e.no_estimate != NoEstimate::Unspecified).then_some(e.no_estimate),
    )
}

/// A match as the console and `warroom lookup` tell it, read straight from
/// the message: each text field is copied once (sanitised), with no domain
/// row built in between — a million-line bulk lookup makes a million of
/// these.
fn to_match(m: &pb::LookupMatch) -> Match {
    let t = m.tenant.as_ref();
    let tenant_name = t.map(|t| s(&t.name));
    let slip = t.and_then(|t| api::slip_from_pb(t.eta_slip.as_ref()));
    let quality = api::match_quality_from_pb(m.quality).map(MatchQuality::as_str);
    match (pb::MatchKind::try_from(m.kind), &m.mailbox) {
        (Ok(pb::MatchKind::Mailbox), Some(mb)) => {
            let state = api::mailbox_state_from_pb(mb.state);
            let (eta_p50, eta_p90, eta_note, no_estimate) =
                eta_parts(&api::eta_from_pb(mb.eta.as_ref()));
            let affected = state.is_some_and(|st| st.is_affected());
            Match {
                kind: "mailbox",
                quality,
                address: Some(s(&mb.address)),
                domain: None,
                tenant_id: s(&mb.tenant_id),
                tenant_name,
                state: state.map(crate::domain::MailboxState::as_str),
                cluster: (!mb.cluster_id.is_empty()).then(|| s(&mb.cluster_id)),
                volume: (!mb.volume.is_empty()).then(|| s(&mb.volume)),
                reindex_position: (mb.reindex_position > 0).then_some(mb.reindex_position),
                affected_mailboxes: None,
                mailboxes: None,
                unchecked_mailboxes: None,
                queued_messages: mb.queued_messages,
                eta_p50,
                eta_p90,
                eta_note,
                no_estimate,
                eta_slip: slip.as_ref().filter(|_| affected).map(Slip::new),
                last_error: (!mb.last_error.is_empty()).then(|| s(&mb.last_error)),
            }
        }
        _ => {
            let (eta_p50, eta_p90, eta_note, no_estimate) =
                eta_parts(&api::eta_from_pb(t.and_then(|t| t.eta.as_ref())));
            let states = api::counts_from_pb(t.and_then(|t| t.states.as_ref()));
            let mailboxes = t.map_or(0, |t| t.mailboxes);
            let affected = states.affected();
            let unchecked = states.unknown_of(mailboxes);
            let state = if affected > 0 {
                "affected"
            } else if unchecked > 0 {
                "unknown"
            } else {
                "ok"
            };
            let text = |f: fn(&pb::TenantSummary) -> &str| t.map_or_else(String::new, |t| s(f(t)));
            Match {
                quality,
                kind: if m.kind == pb::MatchKind::Domain as i32 {
                    "domain"
                } else {
                    "tenant"
                },
                address: None,
                domain: (!m.domain.is_empty()).then(|| s(&m.domain)),
                tenant_id: text(|t| &t.id),
                tenant_name: Some(tenant_name.unwrap_or_default()),
                state: Some(state),
                cluster: Some(text(|t| &t.cluster_id)),
                volume: None,
                reindex_position: t.map(|t| t.reindex_rank).filter(|&r| r > 0),
                affected_mailboxes: Some(affected),
                mailboxes: Some(mailboxes),
                unchecked_mailboxes: Some(unchecked),
                queued_messages: t.and_then(|t| t.queued_messages),
                eta_p50: if affected > 0 { eta_p50 } else { None },
                eta_p90: if affected > 0 { eta_p90 } else { None },
                eta_note: if affected > 0 { eta_note } else { None },
                no_estimate: no_estimate.filter(|_| affected > 0),
                eta_slip: slip.as_ref().filter(|_| affected > 0).map(Slip::new),
                last_error: None,
            }
        }
    }
}

/// One Lookup call; errors in words.
pub async fn matches(client: &GatewayClient, query: &str, limit: u32) -> Result<Matches, String> {
    check_query(query)?;
    let mut raw = client.raw();
    let call = raw.lookup(pb::LookupRequest {
        query: query.to_string(),
        limit,
    });
    let found = within(10, call).await.map_err(|f| f.describe())?;
    Ok(matches_from_pb(&found))
}

pub fn matches_from_pb(r: &pb::LookupResponse) -> Matches {
    Matches {
        matches: r.matches.iter().map(to_match).collect(),
        total: r.total,
        total_is_lower_bound: r.total_is_lower_bound,
    }
}

/// One line of a bulk lookup (`warroom lookup --file`).
#[derive(Debug, Serialize)]
pub struct BulkRow {
    /// The line number in the input (1 = the first line).
    pub line: usize,
    pub query: String,
    /// How many matched in all (null: refused, or the gateway did not count).
    pub total: Option<u64>,
    pub matches: Vec<Match>,
    /// Why the gateway did not look this line up (null: it did).
    pub error: Option<String>,
}

/// Lines per `LookupManyRequest`.
const BULK_BATCH: usize = 500;

/// Looks up every line of `input` (blank lines and `#` comments skipped)
/// over one `LookupMany` stream, handing each answer to `row` in input
/// order as it arrives; memory stays at a few batches whatever the list's
/// length. Returns how many lines were asked.
pub async fn ask_many(
    client: &GatewayClient,
    input: impl std::io::BufRead + Send + 'static,
    limit: u32,
    mut row: impl FnMut(BulkRow) -> std::io::Result<()>,
) -> anyhow::Result<usize> {
    let (req_tx, req_rx) = tokio::sync::mpsc::channel::<pb::LookupManyRequest>(2);
    // The lines of each batch sent, in order, to pair with its answers.
    let (meta_tx, mut meta_rx) = tokio::sync::mpsc::channel::<Vec<(usize, String)>>(4);
    let reader = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut batch: Vec<(usize, String)> = Vec::with_capacity(BULK_BATCH);
        let send = |batch: Vec<(usize, String)>| {
            let queries = batch.iter().map(|(_, q)| q.clone()).collect();
            meta_tx.blocking_send(batch).is_ok()
                && req_tx
                    .blocking_send(pb::LookupManyRequest { queries, limit })
                    .is_ok()
        };
        for (i, line) in input.lines().enumerate() {
            let line = line?;
            let q = line.trim();
            if q.is_empty() || q.starts_with('#') {
                continue;
            }
            batch.push((i + 1, q.to_string()));
            if batch.len() == BULK_BATCH && !send(std::mem::take(&mut batch)) {
                return Ok(());
            }
        }
        if !batch.is_empty() {
            send(batch);
        }
        Ok(())
    });
    let mut raw = client.raw();
    let mut answers = raw
        .lookup_many(tokio_stream::wrappers::ReceiverStream::new(req_rx))
        .await
        .map_err(|st| anyhow::anyhow!("{}", super::describe(&st)))?
        .into_inner();
    let mut asked = 0;
    while let Some(lines) = meta_rx.recv().await {
        let answer = tokio::time::timeout(std::time::Duration::from_secs(30), answers.message())
            .await
            .map_err(|_| anyhow::anyhow!("the gateway sent nothing for 30 s"))?
            .map_err(|st| anyhow::anyhow!("{}", super::describe(&st)))?
            .ok_or_else(|| anyhow::anyhow!("the gateway ended the lookup early"))?;
        if answer.results.len() != lines.len() {
            anyhow::bail!(
                "the gateway answered {} of {} queries",
                answer.results.len(),
                lines.len()
            );
        }
        for ((line, query), r) in lines.into_iter().zip(answer.results) {
            let found = r.answer.as_ref().map(matches_from_pb);
            asked += 1;
            row(BulkRow {
                line,
                query: sanitized(query),
                total: found.as_ref().and_then(|f| f.total),
                matches: found.map(|f| f.matches).unwrap_or_default(),
                error: (!r.error.is_empty()).then(|| s(&r.error)),
            })?;
        }
    }
    reader
        .await
        .map_err(|e| anyhow::anyhow!("reading the list failed: {e}"))?
        .map_err(|e| anyhow::anyhow!("cannot read the list: {e}"))?;
    Ok(asked)
}

/// The CSV header of `bulk_csv` rows.
pub const BULK_CSV_HEADER: &str = "line,query,found,match,kind,name,tenant_id,tenant_name,state,\
affected_mailboxes,mailboxes,unchecked_mailboxes,queued_messages,eta_p50,eta_p90,eta_note,error";

/// A bulk row as one CSV record (RFC 4180) with its line end, appended to
/// `out`: its best match, or empty fields and `found` false. Written in
/// place, field by field: a million-line list formats a million of these.
pub fn bulk_csv(r: &BulkRow, out: &mut String) {
    use crate::domain::csv::push_field;
    use std::fmt::Write;
    let m = r.matches.first();
    let text = |out: &mut String, x: Option<&str>| {
        out.push(',');
        push_field(out, x.unwrap_or_default());
    };
    let num = |out: &mut String, x: Option<u64>| {
        out.push(',');
        if let Some(x) = x {
            let _ = write!(out, "{x}");
        }
    };
    let time = |out: &mut String, t: Option<DateTime<Utc>>| {
        out.push(',');
        if let Some(t) = t {
            let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%SZ"));
        }
    };
    let _ = write!(out, "{}", r.line);
    text(out, Some(&r.query));
    out.push_str(if m.is_some() { ",true" } else { ",false" });
    text(out, m.and_then(|m| m.quality));
    text(out, m.map(|m| m.kind));
    text(out, m.map(Match::name));
    text(out, m.map(|m| m.tenant_id.as_str()));
    text(out, m.and_then(|m| m.tenant_name.as_deref()));
    text(out, m.and_then(|m| m.state));
    num(out, m.and_then(|m| m.affected_mailboxes));
    num(out, m.and_then(|m| m.mailboxes));
    num(out, m.and_then(|m| m.unchecked_mailboxes));
    num(out, m.and_then(|m| m.queued_messages));
    time(out, m.and_then(|m| m.eta_p50));
    time(out, m.and_then(|m| m.eta_p90));
    text(out, m.and_then(|m| m.eta_note.as_deref()));
    text(out, r.error.as_deref());
    out.push_str("\r\n");
}

/// Asks the gateway. `Ok` with no matches is "not found".
pub async fn ask(client: &GatewayClient, query: &str, limit: u32) -> anyhow::Result<Answer> {
    check_query(query).map_err(anyhow::Error::msg)?;
    let first = super::first_snapshot(client).await?;
    let found = matches(client, query, limit)
        .await
        .map_err(anyhow::Error::msg)?;
    let overview = api::overview_from_pb(&first);
    let board = api::board_from_pb(first.status.as_ref(), overview.simulated());
    Ok(Answer {
        next_update: board.promised_update(),
        query: s(query),
        now: overview.incident.now,
        simulated: overview.simulated(),
        total: found.total,
        total_is_lower_bound: found.total_is_lower_bound,
        matches: found.matches,
    })
}

/// The answer as lines a support agent can read out: how many matched,
/// "did you mean …?" when the best match is only a misspelling of the
/// query, then each match.
pub fn text(a: &Answer) -> String {
    let now = a.now.unwrap_or_else(Utc::now);
    let mut out = String::new();
    if a.simulated {
        out.push_str("SIMULATED data (a drill, not production)\n");
    }
    let found = Matches {
        matches: a.matches.clone(),
        total: a.total,
        total_is_lower_bound: a.total_is_lower_bound,
    };
    if let Some(meant) = found.did_you_mean() {
        out.push_str(&format!(
            "No exact match for {:?}. Did you mean {meant}?\n",
            a.query
        ));
    }
    let mut count = format!("{} for {:?}", found.count(), a.query);
    if found.did_you_mean().is_some() {
        count.push_str(", all approximate (misspellings)");
    }
    if found.more() {
        count.push_str(", affected first (--limit shows more)");
    }
    out.push_str(&count);
    out.push('\n');
    for m in &a.matches {
        let (lines, say) = describe_match(m, now, a.next_update);
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        out.push_str(&format!("  say: \"{say}\"\n"));
    }
    out
}

/// One match as lines (the first is the headline) and the sentence to read
/// to the customer. `now` is the source clock the ETAs are relative to. An
/// approximate match (a misspelling of the query) says so in its headline,
/// and its sentence asks first: "If you meant acme-title.com: …".
pub fn describe_match(
    m: &Match,
    now: DateTime<Utc>,
    next_update: Option<DateTime<Utc>>,
) -> (Vec<String>, String) {
    let (mut lines, say) = describe_found(m, now, next_update);
    if !m.is_approximate() {
        return (lines, say);
    }
    if let Some(first) = lines.first_mut() {
        first.push_str(" [approximate match: not what was typed]");
    }
    let mut chars = say.chars();
    let say = match chars.next() {
        Some(c) => format!(
            "If you meant {}: {}{}",
            m.name(),
            c.to_lowercase(),
            chars.as_str()
        ),
        None => say,
    };
    (lines, say)
}

/// When the mailboxes are back, as the end of "Your mailboxes are …": a
/// range with how far away it is, or why there is no estimate in words a
/// customer understands, with the next update promised.
pub fn back_clause(
    eta: &EtaRange,
    now: DateTime<Utc>,
    next_update: Option<DateTime<Utc>>,
) -> String {
    match (eta.p50, eta.p90) {
        (Some(a), Some(b)) if a <= now && b <= now => {
            "due back now: the repair has reached them, and service returns within minutes".into()
        }
        (Some(_), Some(_)) => {
            let range = eta_range(eta, now);
            let range = range.strip_suffix(" UTC").unwrap_or(&range);
            let rel = eta_relative(eta, now)
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            match range.split_once('–') {
                Some((a, b)) => format!("expected back between {a} and {b} UTC{rel}"),
                None => format!("expected back by {range} UTC{rel}"),
            }
        }
        _ => {
            let next = match next_update.filter(|t| *t > now) {
                Some(t) => format!(". Next update by {} UTC", clock(t, now)),
                None => String::new(),
            };
            format!(
                "not back yet, and we don't have an estimate yet: {}{next}",
                customer_reason(eta.no_estimate)
            )
        }
    }
}

/// Why there is no estimate, said to a customer: chosen by the kind the
/// source gave, never by the wording of its reason (that is for the war
/// room, and may be reworded).
fn customer_reason(kind: NoEstimate) -> &'static str {
    match kind {
        NoEstimate::NotIdentified => "the cause is still being identified",
        NoEstimate::NoProgressYet => "the repair has only just started",
        NoEstimate::TooSlow => "the repair is going too slowly right now to give a time",
        NoEstimate::WaitsForRepair => "it waits for the repair of the mailboxes",
        NoEstimate::Unspecified => "we are still assessing the damage",
    }
}

/// "1 message queued", "2,345 messages queued", or that nobody measured.
fn queued_text(queued: Option<u64>) -> String {
    match queued {
        None => "queued mail not measured".to_string(),
        Some(0) => "no mail waiting".to_string(),
        Some(1) => "1 message queued".to_string(),
        Some(n) => format!("{} messages queued", thousands(n)),
    }
}

fn describe_found(
    m: &Match,
    now: DateTime<Utc>,
    next_update: Option<DateTime<Utc>>,
) -> (Vec<String>, String) {
    let eta = EtaRange {
        p50: m.eta_p50,
        p90: m.eta_p90,
        reason: m.eta_note.clone().unwrap_or_default(),
        no_estimate: m.no_estimate.unwrap_or_default(),
    };
    let when = match eta_relative(&eta, now) {
        Some(rel) => format!("{} ({rel})", eta_range(&eta, now)),
        None => eta_range(&eta, now),
    };
    let back = back_clause(&eta, now, next_update);
    let queued = queued_text(m.queued_messages);
    let mut lines = Vec::new();
    if m.kind == "mailbox" {
        let state = m.state.unwrap_or("unknown");
        let mut whose = match &m.tenant_name {
            Some(name) => format!("tenant {name} ({})", m.tenant_id),
            None => format!("tenant {}", m.tenant_id),
        };
        if let Some(c) = &m.cluster {
            whose.push_str(&format!(", cluster {}", c.to_uppercase()));
        }
        if let Some(v) = &m.volume {
            whose.push_str(&format!(", {v}"));
        }
        lines.push(format!(
            "{}: {state} ({whose})",
            m.address.as_deref().unwrap_or("?"),
        ));
        if m.state.is_none() {
            let why = m.last_error.as_deref().unwrap_or("not reported");
            lines.push(format!("  state not known yet: {why}"));
            lines.push(format!("  {queued}"));
            return (
                lines,
                format!("This mailbox's state is not known yet ({why}); {queued}."),
            );
        }
        if state == "resync_needed" {
            lines.push("  has service; its IMAP clients must resync (UIDVALIDITY changed).".into());
            if let Some(e) = &m.last_error {
                lines.push(format!("  found: {e}"));
            }
            return (
                lines,
                format!(
                    "This mailbox has service, but its mail programs must resync \
                     (remove and re-add the account if they show old or missing mail); {queued}."
                ),
            );
        }
        if matches!(state, "ok" | "restored") {
            lines.push("  has service now.".into());
            // "Again" only for a mailbox that lost it: one the incident
            // never touched was not without service.
            let again = if state == "restored" { " again" } else { "" };
            return (lines, format!("This mailbox has service{again}; {queued}."));
        }
        if let Some(p) = m.reindex_position {
            lines.push(format!("  position {} in the reindex order", thousands(p)));
        }
        lines.push(format!("  back: {when}"));
        if let Some(slip) = &m.eta_slip {
            lines.push(format!("  its tenant's ETA: {}", slip.line(now)));
        }
        lines.push(format!("  {queued}"));
        if let Some(e) = &m.last_error {
            lines.push(format!("  last error: {e}"));
        }
        return (
            lines,
            format!("This mailbox is affected and is {back}; {queued}."),
        );
    }
    let affected = m.affected_mailboxes.unwrap_or(0);
    let mailboxes = m.mailboxes.unwrap_or(0);
    let unchecked = m.unchecked_mailboxes.unwrap_or(0);
    let name = m.tenant_name.as_deref().unwrap_or("?");
    let label = match &m.domain {
        Some(d) => format!("{d} ({name}, {})", m.tenant_id),
        None => format!("{name} ({})", m.tenant_id),
    };
    // Mailboxes the damage sweep has not probed are neither affected nor
    // fine: the answer says so rather than calling them either.
    let not_checked = format!(
        "{} of {} not checked yet",
        thousands(unchecked),
        thousands(mailboxes)
    );
    if unchecked > 0 && unchecked >= mailboxes && affected == 0 {
        lines.push(format!(
            "{label}: not checked yet ({} mailboxes; the damage sweep has not reached them), {queued}",
            thousands(mailboxes)
        ));
        return (
            lines,
            format!(
                "We have not checked your mailboxes yet, so we cannot say yet whether they are affected; {queued}."
            ),
        );
    }
    let also = if unchecked > 0 {
        format!(", {not_checked}")
    } else {
        String::new()
    };
    lines.push(format!(
        "{label}: {} of {} mailboxes affected{also}, {queued}",
        thousands(affected),
        thousands(mailboxes)
    ));
    if affected == 0 {
        let say = if unchecked > 0 {
            format!("None of your mailboxes checked so far are affected; {not_checked}; {queued}.")
        } else {
            format!("None of your mailboxes are affected; {queued}.")
        };
        return (lines, say);
    }
    lines.push(format!("  back: {when}"));
    // A later ETA than was said is said too: the customer may have been
    // told the earlier one.
    let slipped = match &m.eta_slip {
        Some(slip) => {
            lines.push(format!("  {}", slip.line(now)));
            format!("; {}", slip.say(now))
        }
        None => String::new(),
    };
    (
        lines,
        format!(
            "Your {} affected {} {back}{slipped}; {}{queued}.",
            thousands(affected),
            if affected == 1 {
                "mailbox is"
            } else {
                "mailboxes are"
            },
            if unchecked > 0 {
                format!("{not_checked}; ")
            } else {
                String::new()
            }
        ),
    )
}

#[cfg(test)]
mod tests;
