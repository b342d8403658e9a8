//! Numbers and times as people say them: "1,930", "31%", "2h 05m",
//! "14:10–15:40 UTC".

use chrono::{DateTime, Duration, Utc};

use super::forecast::EtaRange;
use super::slip::{EtaSlip, SlipBasis};

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` with its noun, singular for one: "1 tenant", "2,000 tenants".
pub fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// "3 of 40", or "3 of 40 (37 not checked yet)" while some of the
/// tenant's mailboxes have not been probed: then 3 is "so far".
pub fn affected_of(t: &super::TenantRow) -> String {
    let mut out = format!("{} of {}", thousands(t.affected()), thousands(t.mailboxes));
    if t.unchecked() > 0 {
        out.push_str(&format!(" ({} not checked yet)", thousands(t.unchecked())));
    }
    out
}

/// What a figure nobody measured is shown as: never 0.
pub const UNKNOWN: &str = "?";

/// `thousands`, or [`UNKNOWN`] when not measured.
pub fn thousands_or_unknown(n: Option<u64>) -> String {
    n.map_or_else(|| UNKNOWN.to_string(), thousands)
}

/// `compact`, or [`UNKNOWN`] when not measured.
pub fn compact_or_unknown(n: Option<u64>) -> String {
    n.map_or_else(|| UNKNOWN.to_string(), compact)
}

/// A rate per minute: "?" when not measured, one decimal under 10 (a
/// queue that takes 0.6 messages a minute is not taking "0"), "<0.1" for
/// less that is not none, else as [`compact`].
pub fn per_min(rate: Option<f64>) -> String {
    match rate.filter(|r| r.is_finite()).map(|r| r.max(0.0)) {
        None => UNKNOWN.to_string(),
        Some(0.0) => "0".into(),
        Some(r) if r < 0.1 => "<0.1".into(),
        Some(r) if r < 9.95 => format!("{r:.1}"),
        Some(r) => compact(r.round() as u64),
    }
}

/// What can be said about queued mail: "1,930 messages queued, none lost"
/// only when a source backs "none lost"; otherwise it says what is not
/// known.
pub fn queued_claim(queued: Option<u64>, lost: Option<u64>) -> String {
    match (queued, lost) {
        (None, _) => "queued mail not measured".into(),
        (Some(q), Some(0)) => format!("{} queued, none lost", thousands(q)),
        (Some(q), Some(l)) => format!("{} queued, {} lost", thousands(q), thousands(l)),
        (Some(q), None) => format!("{} queued (losses not measured)", thousands(q)),
    }
}

/// Compact count for narrow columns: 950, 9,999, 12.3k, 4.5M.
pub fn compact(n: u64) -> String {
    match n {
        0..=9_999 => thousands(n),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// Fraction 0..1 → "31%" (rounded down so 99.6% is not shown as done;
/// a share above 0 but under 1% is "<1%", not "0%": 3 of 424 is not none).
pub fn percent(fraction: f64) -> String {
    if !fraction.is_finite() {
        return "–".into();
    }
    let f = fraction.clamp(0.0, 1.0);
    if f > 0.0 && f < 0.01 {
        return "<1%".into();
    }
    format!("{}%", (f * 100.0).floor() as u64)
}

/// A duration as "45s", "12m", "2h 05m", "3d 04h". Negative durations are
/// shown as zero.
pub fn duration(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    if days > 0 {
        format!("{days}d {hours:02}h")
    } else if hours > 0 {
        format!("{hours}h {mins:02}m")
    } else if mins > 0 {
        format!("{mins}m")
    } else {
        format!("{s}s")
    }
}

/// "14:10" for today (relative to `now`), "Oct 08 14:10" otherwise.
pub fn clock(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%b %d %H:%M").to_string()
    }
}

/// ETAs more than an hour away are shown in 5-minute steps: a forecast
/// whose p50 and p90 lie hours apart is not known to the minute, and
/// minutes that flicker on every refresh are both noise to the reader and
/// bytes on a slow link. The p50 is rounded to the nearest step, the p90 up
/// to the next (never earlier than the forecast says).
const FINE_WITHIN: i64 = 3_600;
const COARSE_STEP: i64 = 300;

/// `s` seconds on a 5-minute step: up to the next, or to the nearest.
fn step(s: i64, up: bool) -> i64 {
    if up {
        (s + COARSE_STEP - 1).div_euclid(COARSE_STEP) * COARSE_STEP
    } else {
        (s + COARSE_STEP / 2).div_euclid(COARSE_STEP) * COARSE_STEP
    }
}

/// `t` as shown: to the minute within the hour, in 5-minute steps beyond.
fn shown(t: DateTime<Utc>, now: DateTime<Utc>, up: bool) -> DateTime<Utc> {
    if (t - now).num_seconds() <= FINE_WITHIN {
        return t;
    }
    DateTime::from_timestamp(step(t.timestamp(), up), 0).unwrap_or(t)
}

/// "14:10–15:40 UTC", or the reason there is none.
pub fn eta_range(eta: &EtaRange, now: DateTime<Utc>) -> String {
    match (eta.p50, eta.p90) {
        // Due (the forecast says it should be done by now): not "done",
        // which only the mailbox state may say.
        (Some(a), Some(b)) if a <= now && b <= now => "now".into(),
        (Some(a), Some(b)) => {
            let (a, b) = (
                clock(shown(a, now, false), now),
                clock(shown(b, now, true), now),
            );
            if a == b {
                format!("{a} UTC")
            } else {
                format!("{a}–{b} UTC")
            }
        }
        _ if eta.reason.is_empty() => "no estimate".into(),
        _ => format!("no estimate: {}", eta.reason),
    }
}

/// The ways a table cell can show an ETA range, longest first: the times
/// as [`eta_range`] gives them without "UTC", the date said once when both
/// ends fall on the same day ("Oct 08 04:40–09:10"); then with the days
/// counted from today's date instead of a date ("04:40+1d–01:10+2d"),
/// which keeps both ends when a p90 past midnight would not fit. Empty
/// when the range is not known or due ([`eta_range`] says why).
pub fn eta_cell_forms(eta: &EtaRange, now: DateTime<Utc>) -> Vec<String> {
    let (Some(a), Some(b)) = (eta.p50, eta.p90) else {
        return Vec::new();
    };
    if a <= now && b <= now {
        return Vec::new();
    }
    let (a, b) = (shown(a, now, false), shown(b, now, true));
    let today = now.date_naive();
    let hm = |t: DateTime<Utc>| t.format("%H:%M").to_string();
    let dated = |t: DateTime<Utc>| clock(t, now);
    let full = if a.date_naive() == b.date_naive() {
        if hm(a) == hm(b) {
            dated(a)
        } else {
            format!("{}–{}", dated(a), hm(b))
        }
    } else {
        format!("{}–{}", dated(a), dated(b))
    };
    let days = |t: DateTime<Utc>| {
        let d = (t.date_naive() - today).num_days();
        if d == 0 {
            hm(t)
        } else {
            format!("{}{d:+}d", hm(t))
        }
    };
    let counted = if a == b {
        days(a)
    } else {
        format!("{}–{}", days(a), days(b))
    };
    if counted == full {
        vec![full]
    } else {
        vec![full, counted]
    }
}

/// "in 2h 05m–3h 35m" relative to `now`, in the same steps as
/// [`eta_range`].
pub fn eta_relative(eta: &EtaRange, now: DateTime<Utc>) -> Option<String> {
    let (a, b) = (eta.p50?, eta.p90?);
    let ahead = |t: DateTime<Utc>, up| {
        let s = (t - now).num_seconds();
        duration(Duration::seconds(if s <= FINE_WITHIN {
            s
        } else {
            step(s, up)
        }))
    };
    let (da, db) = (ahead(a, false), ahead(b, true));
    Some(if da == db {
        format!("in {da}")
    } else {
        format!("in {da}–{db}")
    })
}

/// A slip where a column is narrow: "↗+2h05m", "↗+45m", "↗ no ETA". The
/// arrow carries the meaning without colour.
pub fn slip_short(s: &EtaSlip) -> String {
    match s.later_by {
        Some(d) => format!("↗+{}", duration(d).replace(' ', "")),
        None => "↗ no ETA".into(),
    }
}

/// A slip in a line of its own: "↗ +2h 05m since 14:00", "↗ estimate
/// withdrawn since 14:00". `now` is the source clock (for the date).
pub fn slip_marker(s: &EtaSlip, now: DateTime<Utc>) -> String {
    let since = clock(s.since, now);
    match s.later_by {
        Some(d) => format!("↗ +{} since {since}", duration(d)),
        None => format!("↗ estimate withdrawn since {since}"),
    }
}

/// What a slip is measured from: "the p90 was 16:00 when first shown",
/// "… when the last update was published".
pub fn slip_basis(s: &EtaSlip, now: DateTime<Utc>) -> String {
    format!(
        "the p90 was {} when {}",
        clock(s.baseline_p90, now),
        match s.basis {
            SlipBasis::FirstShown => "first shown",
            SlipBasis::Published => "the last update was published",
        }
    )
}

/// At most `max` characters of `s`; a cut is marked with "…" (which
/// counts as one of the `max`).
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Standard base64 with padding (RFC 4648).
pub fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An error with its causes, each once: "error sending request: connection
/// refused".
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_small_rate_is_not_shown_as_none() {
        use super::per_min;
        assert_eq!(per_min(None), "?");
        assert_eq!(per_min(Some(f64::NAN)), "?");
        assert_eq!(per_min(Some(0.0)), "0");
        assert_eq!(per_min(Some(0.04)), "<0.1");
        assert_eq!(per_min(Some(0.6)), "0.6");
        assert_eq!(per_min(Some(9.94)), "9.9");
        assert_eq!(per_min(Some(9.96)), "10");
        assert_eq!(per_min(Some(1_234.4)), "1,234");
        assert_eq!(per_min(Some(25_000.0)), "25.0k");
    }

    #[test]
    fn one_of_a_thing_is_not_plural() {
        use super::counted;
        assert_eq!(counted(1, "tenant", "tenants"), "1 tenant");
        assert_eq!(counted(0, "tenant", "tenants"), "0 tenants");
        assert_eq!(counted(2_000, "mailbox", "mailboxes"), "2,000 mailboxes");
    }

    #[test]
    fn an_affected_count_says_when_some_mailboxes_are_not_checked_yet() {
        use crate::domain::{MailboxState, StateCounts, TenantRow};
        let mut states = StateCounts::default();
        states.add(MailboxState::LockedOut, 3);
        let mut t = TenantRow {
            mailboxes: 40,
            states,
            ..Default::default()
        };
        assert_eq!(super::affected_of(&t), "3 of 40 (37 not checked yet)");
        t.states.add(MailboxState::Ok, 37);
        assert_eq!(super::affected_of(&t), "3 of 40");
    }

    #[test]
    fn base64_matches_the_rfc_examples() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
            ("hello", "aGVsbG8="),
        ] {
            assert_eq!(super::base64(raw.as_bytes()), enc);
        }
    }

    #[test]
    fn clip_marks_the_cut() {
        assert_eq!(super::clip("abcdef", 6), "abcdef");
        assert_eq!(super::clip("abcdefg", 6), "abcde…");
        assert_eq!(super::clip("ééé", 2), "é…");
    }

    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_eta_cell_keeps_both_ends_when_the_p90_crosses_midnight() {
        let at = |d, h, m| Utc.with_ymd_and_hms(2008, 10, d, h, m, 0).single().unwrap();
        let now = at(7, 3, 0);
        let eta = |a, b| EtaRange {
            p50: Some(a),
            p90: Some(b),
            ..EtaRange::default()
        };
        assert_eq!(
            eta_cell_forms(&eta(at(8, 4, 40), at(9, 1, 10)), now),
            ["Oct 08 04:40–Oct 09 01:10", "04:40+1d–01:10+2d"]
        );
        // One date when both ends share it.
        assert_eq!(
            eta_cell_forms(&eta(at(8, 4, 40), at(8, 9, 10)), now),
            ["Oct 08 04:40–09:10", "04:40+1d–09:10+1d"]
        );
        // Today needs no date at all.
        assert_eq!(
            eta_cell_forms(&eta(at(7, 4, 40), at(7, 9, 10)), now),
            ["04:40–09:10"]
        );
        assert_eq!(
            eta_cell_forms(&eta(at(7, 20, 40), at(8, 1, 10)), now),
            ["20:40–Oct 08 01:10", "20:40–01:10+1d"]
        );
        assert!(eta_cell_forms(&eta(at(7, 1, 0), at(7, 2, 0)), now).is_empty());
    }

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_930), "1,930");
        assert_eq!(thousands(5_000_000), "5,000,000");
        assert_eq!(compact(12_345), "12.3k");
        assert_eq!(compact(4_500_000), "4.5M");
        assert_eq!(percent(0.316), "31%");
        assert_eq!(percent(0.999), "99%");
        assert_eq!(percent(3.0 / 424.0), "<1%", "some is not none");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(f64::NAN), "–");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::seconds(45)), "45s");
        assert_eq!(duration(Duration::minutes(12)), "12m");
        assert_eq!(duration(Duration::minutes(125)), "2h 05m");
        assert_eq!(duration(Duration::hours(76)), "3d 04h");
        assert_eq!(duration(Duration::seconds(-5)), "0s");
    }

    /// 8 October 2008, 12:00 UTC.
    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2008, 10, 8, 12, 0, 0)
            .single()
            .unwrap()
    }

    #[test]
    fn eta_text() {
        let now = noon();
        let eta = EtaRange::at(now + Duration::minutes(130), now + Duration::minutes(220));
        assert_eq!(eta_range(&eta, now), "14:10–15:40 UTC");
        assert_eq!(eta_relative(&eta, now).unwrap(), "in 2h 10m–3h 40m");
        let tomorrow = EtaRange::at(now + Duration::hours(13), now + Duration::hours(13));
        assert_eq!(eta_range(&tomorrow, now), "Oct 09 01:00 UTC");
        assert_eq!(
            eta_range(&EtaRange::unknown("queue is growing"), now),
            "no estimate: queue is growing"
        );
    }

    #[test]
    fn slips_say_how_much_later_and_since_when_without_colour() {
        let now = noon();
        let slip = EtaSlip {
            basis: SlipBasis::Published,
            since: now - Duration::hours(2),
            baseline_p90: now + Duration::hours(2),
            later_by: Some(Duration::minutes(125) + Duration::seconds(40)),
        };
        assert_eq!(slip_short(&slip), "↗+2h05m");
        assert_eq!(slip_marker(&slip, now), "↗ +2h 05m since 10:00");
        assert_eq!(
            slip_basis(&slip, now),
            "the p90 was 14:00 when the last update was published"
        );
        let withdrawn = EtaSlip {
            basis: SlipBasis::FirstShown,
            since: now - Duration::hours(20),
            later_by: None,
            ..slip
        };
        assert_eq!(slip_short(&withdrawn), "↗ no ETA");
        assert_eq!(
            slip_marker(&withdrawn, now),
            "↗ estimate withdrawn since Oct 07 16:00"
        );
        assert_eq!(
            slip_basis(&withdrawn, now),
            "the p90 was 14:00 when first shown"
        );
    }

    #[test]
    fn etas_beyond_the_hour_move_in_five_minute_steps() {
        let now = noon();
        let at = |p50: i64, p90: i64| {
            EtaRange::at(now + Duration::minutes(p50), now + Duration::minutes(p90))
        };
        // Within the hour: to the minute.
        assert_eq!(eta_range(&at(41, 58), now), "12:41–12:58 UTC");
        assert_eq!(eta_relative(&at(41, 58), now).unwrap(), "in 41m–58m");
        // Beyond: p50 to the nearest 5 minutes, p90 up to the next 5.
        let eta = at(7 * 60 + 7, 14 * 60 + 17);
        assert_eq!(eta_range(&eta, now), "19:05–Oct 09 02:20 UTC");
        assert_eq!(eta_relative(&eta, now).unwrap(), "in 7h 05m–14h 20m");
        // A minute later the text has not moved.
        let later = now + Duration::minutes(1);
        assert_eq!(eta_range(&eta, later), eta_range(&eta, now));
        assert_eq!(eta_relative(&eta, later).unwrap(), "in 7h 05m–14h 20m");
        // The p90 shown is never earlier than the forecast.
        for m in 61..200 {
            let text = eta_range(&at(m, m), now);
            let last = text
                .trim_end_matches(" UTC")
                .rsplit('–')
                .next()
                .unwrap()
                .to_string();
            let shown = chrono::NaiveTime::parse_from_str(&last, "%H:%M").unwrap();
            assert!(shown >= (now + Duration::minutes(m)).time(), "{m}: {text}");
        }
    }
}
