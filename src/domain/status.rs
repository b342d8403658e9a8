//! Status updates before they go out: when the next one is promised, which
//! live figures the body quotes, and what is wrong with a draft. The
//! resellers in the seed were promised "the next update at approximately
//! 25:30 UTC" (comment 48); this module is where such a promise is refused.
//!
//! Pure code: the composer, the CLI and the gateway all lint with it.

use chrono::{DateTime, Duration, NaiveDateTime, NaiveTime, Utc};

use super::IncidentState;
use super::format;

pub const MAX_TITLE_CHARS: usize = 255;
pub const MAX_BODY_CHARS: usize = 25_000;
/// The furthest ahead a next update may be promised.
pub const MAX_AHEAD_HOURS: i64 = 24;

/// Statuses a component may have (Statuspage's names).
pub const COMPONENT_STATUSES: [&str; 5] = [
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
];

/// Placeholders a body may quote, filled from live figures at publish time.
pub const PLACEHOLDERS: [(&str, &str); 6] = [
    ("affected_mailboxes", "mailboxes without service now"),
    (
        "affected_tenants",
        "tenants with at least one mailbox without service",
    ),
    (
        "restored_pct",
        "share of the affected mailboxes restored so far, e.g. 42%",
    ),
    (
        "queue_depth",
        "messages queued for delivery (\"not measured\" when unknown)",
    ),
    (
        "queue_eta",
        "when the inbound queue is expected to be drained",
    ),
    (
        "reindex_eta",
        "when the reindex is expected to finish (p50–p90)",
    ),
];

/// When the next update is promised: `+90m`, `2h`, `1h30m` (from now), a
/// UTC time of day today (`23:30`), or a full UTC time (`2026-11-30
/// 01:30`). The result is checked: in the future, at most 24 h ahead.
pub fn parse_next_update(input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = input.trim();
    // What the person typed, as errors quote it: short and inert.
    let typed = format::clip(&super::sanitize::sanitize(s), 41);
    if s.is_empty() {
        return Err("next update time is empty: give +90m, 2h or a UTC time such as 23:30".into());
    }
    let at = if let Some(d) = parse_duration(s.strip_prefix('+').unwrap_or(s)) {
        now + d
    } else if s.len() <= 5 && s.contains(':') {
        now.date_naive().and_time(time_of_day(&typed)?).and_utc()
    } else if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M") {
        t.and_utc()
    } else if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        t.with_timezone(&Utc)
    } else {
        return Err(format!(
            "{typed:?} is not a next-update time: give +90m, 2h, a UTC time of day such as 23:30, or 2026-11-30 01:30"
        ));
    };
    if at <= now {
        return Err(format!(
            "next update {} UTC ({typed}) is in the past: it is {} UTC now",
            at.format("%Y-%m-%d %H:%M"),
            now.format("%H:%M")
        ));
    }
    if at - now > Duration::hours(MAX_AHEAD_HOURS) {
        return Err(format!(
            "next update {} UTC ({typed}) is {} ahead; promise one within {MAX_AHEAD_HOURS} h",
            at.format("%Y-%m-%d %H:%M"),
            format::duration(at - now)
        ));
    }
    Ok(at)
}

/// "23:30" → 23:30; "25:30" and "23:75" name what is wrong.
fn time_of_day(s: &str) -> Result<NaiveTime, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not a time of day (HH:MM)"))?;
    let (h, m): (u32, u32) = match (h.parse(), m.parse()) {
        (Ok(hours), Ok(mins)) if m.len() == 2 && (1..=2).contains(&h.len()) => (hours, mins),
        _ => return Err(format!("{s:?} is not a time of day (HH:MM, UTC)")),
    };
    if h > 23 {
        return Err(format!("{s} is not a time of day: hours go from 00 to 23"));
    }
    if m > 59 {
        return Err(format!(
            "{s} is not a time of day: minutes go from 00 to 59"
        ));
    }
    NaiveTime::from_hms_opt(h, m, 0).ok_or_else(|| format!("{s} is not a time of day"))
}

/// "90m", "2h", "1h30m", "45" is not one (a unit is required).
fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0i64;
    let mut digits = String::new();
    let mut any = false;
    for c in s.chars() {
        match c {
            '0'..='9' if digits.len() < 6 => digits.push(c),
            'h' | 'm' if !digits.is_empty() => {
                let n: i64 = digits.parse().ok()?;
                // Capped: anything this large is refused as too far ahead.
                total = total
                    .saturating_add(if c == 'h' { n * 60 } else { n })
                    .min(10_000_000);
                digits.clear();
                any = true;
            }
            _ => return None,
        }
    }
    (any && digits.is_empty()).then(|| Duration::minutes(total))
}

/// Live figures a body's placeholders are filled with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub affected_mailboxes: u64,
    pub affected_tenants: u64,
    pub restored_pct: f64,
    /// None: not measured; filled as "not measured", never 0.
    pub queue_depth: Option<u64>,
    pub queue_eta: String,
    pub reindex_eta: String,
}

/// Names inside `{…}` in `body`, in order (unterminated braces are text).
pub fn placeholders(body: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find('{') {
        rest = &rest[i + 1..];
        match rest.find(['}', '{']) {
            Some(j) if rest.as_bytes()[j] == b'}' => {
                found.push(&rest[..j]);
                rest = &rest[j + 1..];
            }
            _ => {}
        }
    }
    found
}

/// `body` with every known placeholder replaced by its figure; unknown
/// ones are left as they are (lint refuses them before this runs).
pub fn fill(body: &str, f: &Figures) -> String {
    let value = |name: &str| -> Option<String> {
        Some(match name {
            "affected_mailboxes" => format::thousands(f.affected_mailboxes),
            "affected_tenants" => format::thousands(f.affected_tenants),
            "restored_pct" => format!("{:.0}%", f.restored_pct.clamp(0.0, 100.0)),
            "queue_depth" => f
                .queue_depth
                .map_or_else(|| "not measured".into(), format::thousands),
            "queue_eta" => f.queue_eta.clone(),
            "reindex_eta" => f.reindex_eta.clone(),
            _ => return None,
        })
    };
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after
            .find('}')
            .and_then(|j| value(&after[..j]).map(|v| (j, v)))
        {
            Some((j, v)) => {
                out.push_str(&v);
                rest = &after[j + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A status update as its author wrote it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    pub state: IncidentState,
    pub title: String,
    pub body: String,
    /// (component id, status).
    pub components: Vec<(String, String)>,
    pub next_update: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// false: a warning the author must confirm.
    pub error: bool,
    pub field: &'static str,
    pub message: String,
}

impl Finding {
    fn error(field: &'static str, message: impl Into<String>) -> Self {
        Finding {
            error: true,
            field,
            message: message.into(),
        }
    }
}

/// Everything wrong with `d`, errors first. `previous` is the state of the
/// last published update (None before the first); `components` the ids
/// this status page knows.
pub fn lint(
    d: &Draft,
    previous: Option<IncidentState>,
    components: &[&str],
    now: DateTime<Utc>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let title_chars = d.title.chars().count();
    if d.title.trim().is_empty() {
        out.push(Finding::error("title", "title is empty"));
    } else if title_chars > MAX_TITLE_CHARS {
        out.push(Finding::error(
            "title",
            format!("title is {title_chars} characters; the limit is {MAX_TITLE_CHARS}"),
        ));
    }
    if let Err(e) = super::sanitize::refuse_controls("title", &d.title, &[]) {
        out.push(Finding::error("title", e));
    }
    let body_chars = d.body.chars().count();
    if d.body.trim().is_empty() {
        out.push(Finding::error(
            "body",
            "body is empty: say what is known and what is being done",
        ));
    } else if body_chars > MAX_BODY_CHARS {
        out.push(Finding::error(
            "body",
            format!("body is {body_chars} characters; the limit is {MAX_BODY_CHARS}"),
        ));
    }
    if let Err(e) =
        super::sanitize::refuse_controls("body", &d.body, super::sanitize::LINE_BREAKS_AND_TABS)
    {
        out.push(Finding::error("body", e));
    }
    for name in placeholders(&d.body) {
        if !PLACEHOLDERS.iter().any(|(p, _)| *p == name) {
            out.push(Finding::error(
                "body",
                format!(
                    "unknown placeholder {{{}}}; known: {}",
                    super::sanitize::sanitize(name),
                    PLACEHOLDERS.map(|(p, _)| format!("{{{p}}}")).join(", ")
                ),
            ));
        }
    }
    for (id, status) in &d.components {
        if !components.contains(&id.as_str()) {
            out.push(Finding::error(
                "components",
                format!(
                    "unknown component {:?}; components: {}",
                    super::sanitize::sanitize(id),
                    components.join(", ")
                ),
            ));
        }
        if !COMPONENT_STATUSES.contains(&status.as_str()) {
            out.push(Finding::error(
                "components",
                format!(
                    "component {:?}: unknown status {:?}; statuses: {}",
                    super::sanitize::sanitize(id),
                    super::sanitize::sanitize(status),
                    COMPONENT_STATUSES.join(", ")
                ),
            ));
        }
    }
    match d.next_update {
        None if d.state != IncidentState::Resolved => out.push(Finding::error(
            "next_update",
            "next update time is required until the incident is resolved",
        )),
        Some(at) if at <= now => out.push(Finding::error(
            "next_update",
            format!(
                "next update {} UTC is in the past",
                at.format("%Y-%m-%d %H:%M")
            ),
        )),
        Some(at) if at - now > Duration::hours(MAX_AHEAD_HOURS) => out.push(Finding::error(
            "next_update",
            format!(
                "next update {} UTC is more than {MAX_AHEAD_HOURS} h ahead",
                at.format("%Y-%m-%d %H:%M")
            ),
        )),
        _ => {}
    }
    if let Some(prev) = previous.filter(|p| d.state < *p) {
        out.push(Finding {
            error: false,
            field: "state",
            message: format!(
                "the state goes back from {} to {}: confirm that this is what happened",
                prev.as_str(),
                d.state.as_str()
            ),
        });
    }
    out.sort_by_key(|f| !f.error);
    out
}

/// Warnings (to confirm, like any warning) where a draft says what the
/// sources do not show: a state other than the incident's, or a component
/// named after a service role with a status its health contradicts. A
/// draft left from another session once published "monitoring" while
/// every console showed INVESTIGATING with nothing restored.
pub fn contradictions(d: &Draft, shown: &super::Overview) -> Vec<Finding> {
    let mut out = Vec::new();
    let t = &shown.totals;
    if d.state != shown.incident.state {
        out.push(Finding {
            error: false,
            field: "state",
            message: format!(
                "the sources show the incident as {} ({} mailboxes affected, {} restored); \
                 this update says {}: confirm that this is what is happening",
                shown.incident.state.as_str(),
                format::thousands(t.affected_mailboxes),
                format::thousands(t.restored_mailboxes),
                d.state.as_str()
            ),
        });
    }
    for (id, status) in &d.components {
        let Some(role) = super::ServiceRole::ALL
            .into_iter()
            .find(|r| r.as_str() == id.as_str())
        else {
            continue;
        };
        let healths: Vec<(&str, super::Health)> = shown
            .clusters
            .iter()
            .flat_map(|c| {
                c.services
                    .iter()
                    .filter(move |s| s.role == role)
                    .map(move |s| (c.name.as_str(), s.status))
            })
            .collect();
        let worst = healths
            .iter()
            .filter(|(_, h)| *h != super::Health::Unknown)
            .max_by_key(|(_, h)| *h);
        let said_ok = status == "operational";
        let said_out = status == "major_outage" || status == "partial_outage";
        let contradiction = match worst {
            Some((cluster, h)) if said_ok && *h != super::Health::Ok => Some(format!(
                "the sources show {} {} on {}",
                role.as_str(),
                h.as_str(),
                super::sanitize::sanitize(cluster)
            )),
            Some((_, super::Health::Ok)) if said_out => {
                Some(format!("the sources show {} ok everywhere", role.as_str()))
            }
            _ => None,
        };
        if let Some(why) = contradiction {
            out.push(Finding {
                error: false,
                field: "components",
                message: format!(
                    "component {}={}: {why}: confirm that this is what is happening",
                    role.as_str(),
                    super::sanitize::sanitize(status)
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2008-10-07T22:10:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn next_update_times_in_the_forms_people_type() {
        let n = now();
        assert_eq!(
            parse_next_update("+90m", n).unwrap(),
            n + Duration::minutes(90)
        );
        assert_eq!(parse_next_update("2h", n).unwrap(), n + Duration::hours(2));
        assert_eq!(
            parse_next_update("1h30m", n).unwrap(),
            n + Duration::minutes(90)
        );
        assert_eq!(
            parse_next_update("23:30", n).unwrap().to_rfc3339(),
            "2008-10-07T23:30:00+00:00"
        );
        assert_eq!(
            parse_next_update("2008-10-08 01:30", n)
                .unwrap()
                .to_rfc3339(),
            "2008-10-08T01:30:00+00:00"
        );
    }

    #[test]
    fn impossible_past_and_far_times_name_the_bad_value() {
        let n = now();
        let e = parse_next_update("25:30", n).unwrap_err();
        assert!(
            e.contains("25:30") && e.contains("hours go from 00 to 23"),
            "{e}"
        );
        let e = parse_next_update("21:00", n).unwrap_err();
        assert!(e.contains("21:00") && e.contains("in the past"), "{e}");
        let e = parse_next_update("+25h", n).unwrap_err();
        assert!(e.contains("+25h") && e.contains("within 24 h"), "{e}");
        let e = parse_next_update("soon", n).unwrap_err();
        assert!(e.contains("\"soon\""), "{e}");
        assert!(parse_next_update("23:5", n).is_err());
        assert!(
            parse_next_update("45", n).is_err(),
            "a bare number has no unit"
        );
    }

    fn draft() -> Draft {
        Draft {
            state: IncidentState::Identified,
            title: "Mailbox access on Cluster A".into(),
            body: "{affected_mailboxes} mailboxes are without service; {restored_pct} restored."
                .into(),
            components: vec![("imap".into(), "major_outage".into())],
            next_update: Some(now() + Duration::hours(2)),
        }
    }

    #[test]
    fn a_good_draft_has_no_findings_and_fills_in() {
        assert!(lint(&draft(), None, &["imap", "smtp"], now()).is_empty());
        let f = Figures {
            affected_mailboxes: 9_389,
            restored_pct: 41.6,
            ..Default::default()
        };
        assert_eq!(
            fill(&draft().body, &f),
            "9,389 mailboxes are without service; 42% restored."
        );
    }

    #[test]
    fn each_problem_is_named() {
        let n = now();
        let comps = ["imap"];
        let check = |d: Draft, field: &str, want: &str| {
            let f = lint(&d, Some(IncidentState::Identified), &comps, n);
            assert!(
                f.iter()
                    .any(|f| f.error && f.field == field && f.message.contains(want)),
                "{field}: {want:?} not in {f:?}"
            );
        };
        check(
            Draft {
                body: " ".into(),
                ..draft()
            },
            "body",
            "body is empty",
        );
        check(
            Draft {
                title: "t".repeat(256),
                ..draft()
            },
            "title",
            "256 characters",
        );
        check(
            Draft {
                body: "x".repeat(25_001),
                ..draft()
            },
            "body",
            "25001 characters; the limit is 25000",
        );
        check(
            Draft {
                title: "Cluster A\x1b]0;owned\x07".into(),
                ..draft()
            },
            "title",
            "control character U+001B at character 10",
        );
        check(
            Draft {
                body: "Logins fail.\r\nCluster\tA\u{9b}2J".into(),
                ..draft()
            },
            "body",
            "control character U+009B at line 2, column 10",
        );
        check(
            Draft {
                body: "ETA {eta}".into(),
                ..draft()
            },
            "body",
            "unknown placeholder {eta}",
        );
        check(
            Draft {
                components: vec![("pop3".into(), "operational".into())],
                ..draft()
            },
            "components",
            "unknown component \"pop3\"",
        );
        check(
            Draft {
                components: vec![("imap".into(), "on fire".into())],
                ..draft()
            },
            "components",
            "unknown status \"on fire\"",
        );
        check(
            Draft {
                next_update: None,
                ..draft()
            },
            "next_update",
            "required",
        );
        check(
            Draft {
                next_update: Some(n - Duration::minutes(5)),
                ..draft()
            },
            "next_update",
            "in the past",
        );
        // Resolved needs no next update.
        let resolved = Draft {
            state: IncidentState::Resolved,
            next_update: None,
            ..draft()
        };
        assert!(lint(&resolved, Some(IncidentState::Monitoring), &comps, n).is_empty());
    }

    #[test]
    fn a_draft_that_contradicts_the_sources_is_a_warning_to_confirm() {
        use crate::domain::{Cluster, Health, Overview, ServiceHealth, ServiceRole};
        let mut shown = Overview::default();
        shown.incident.state = IncidentState::Investigating;
        shown.totals.affected_mailboxes = 10_101;
        shown.clusters = vec![Cluster {
            name: "Cluster A".into(),
            services: vec![
                ServiceHealth {
                    role: ServiceRole::Imap,
                    status: Health::Down,
                    login_success_rate: None,
                    latency_ms: None,
                    detail: String::new(),
                },
                ServiceHealth {
                    role: ServiceRole::SmtpOut,
                    status: Health::Ok,
                    login_success_rate: None,
                    latency_ms: None,
                    detail: String::new(),
                },
            ],
            ..Default::default()
        }];
        // Left from another session: monitoring, imap operational.
        let d = Draft {
            state: IncidentState::Monitoring,
            components: vec![
                ("imap".into(), "operational".into()),
                ("smtp-out".into(), "major_outage".into()),
                ("billing".into(), "major_outage".into()),
            ],
            ..draft()
        };
        let f = contradictions(&d, &shown);
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f.iter().all(|x| !x.error), "warnings, to confirm");
        assert_eq!(f[0].field, "state");
        assert!(
            f[0].message.starts_with(
                "the sources show the incident as investigating (10,101 mailboxes affected, 0 restored); this update says monitoring"
            ),
            "{}",
            f[0].message
        );
        assert!(
            f[1].message
                .contains("imap=operational: the sources show imap down on Cluster A")
        );
        assert!(
            f[2].message
                .contains("smtp-out=major_outage: the sources show smtp-out ok everywhere")
        );
        // What agrees with the sources, or names no service role, is quiet.
        let d = Draft {
            state: IncidentState::Investigating,
            components: vec![
                ("imap".into(), "major_outage".into()),
                ("billing".into(), "operational".into()),
            ],
            ..draft()
        };
        assert!(contradictions(&d, &shown).is_empty());
    }

    #[test]
    fn going_backwards_is_a_warning_to_confirm() {
        let d = Draft {
            state: IncidentState::Investigating,
            ..draft()
        };
        let f = lint(&d, Some(IncidentState::Resolved), &["imap"], now());
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(!f[0].error && f[0].message.contains("from resolved to investigating"));
    }

    proptest! {
        #[test]
        fn any_accepted_time_is_ahead_and_within_a_day(s in ".{0,24}") {
            let n = now();
            if let Ok(at) = parse_next_update(&s, n) {
                prop_assert!(at > n && at - n <= Duration::hours(MAX_AHEAD_HOURS));
            }
        }

        #[test]
        fn lint_never_panics_and_fill_changes_only_placeholders(body in "[^{}]{0,100}", title in ".{0,40}", i in 0usize..6) {
            let d = Draft { body: body.clone(), title, ..draft() };
            let _ = lint(&d, Some(IncidentState::Monitoring), &["imap"], now());
            // Text without braces is left alone; a known placeholder in it is replaced.
            prop_assert_eq!(fill(&body, &Figures::default()), body.clone());
            let (name, _) = PLACEHOLDERS[i];
            let with = format!("{body}{{{name}}}{body}");
            let filled = fill(&with, &Figures::default());
            let needle = format!("{{{name}}}");
            prop_assert!(!filled.contains(&needle));
            prop_assert!(filled.starts_with(&body) && filled.ends_with(&body));
        }
    }
}
