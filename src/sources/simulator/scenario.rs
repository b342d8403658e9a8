//! Drill scenarios: the shape of a simulated incident, as a TOML file.
//!
//! The Cluster A outage of October 2008 is one scenario among others
//! (`scenarios/cluster-a-2008.toml`, embedded and the default); a drill can
//! run any file in the format documented in docs/scenarios.md. Everything
//! the simulator used to hard-code lives here: scale and size distribution,
//! when the fault starts and is identified, the damage, the first scope
//! estimate against the true one, scan and reindex speeds and their
//! day/night variation, later faults, mail arrival and delivery.

use chrono::{DateTime, Timelike, Utc};
use serde::Deserialize;

use crate::config::FileError;

pub const HOUR: f64 = 3600.0;
/// Reindex rate samples kept (one per tick): a day at one-minute ticks, so
/// the pessimistic ETA remembers yesterday's peak.
pub const REINDEX_HISTORY: usize = 1_440;
/// Ticks between two queue sparkline samples.
pub const HISTORY_EVERY: u64 = 10;
/// Samples kept for the queue sparkline.
pub const HISTORY: usize = 120;

/// The shipped scenarios, by name: (name, file name, text). The first is the
/// default.
pub const SHIPPED: [(&str, &str, &str); 3] = [
    (
        "cluster-a-2008",
        "scenarios/cluster-a-2008.toml",
        include_str!("../../../scenarios/cluster-a-2008.toml"),
    ),
    (
        "small-fast-fault",
        "scenarios/small-fast-fault.toml",
        include_str!("../../../scenarios/small-fast-fault.toml"),
    ),
    (
        "slow-second-fault",
        "scenarios/slow-second-fault.toml",
        include_str!("../../../scenarios/slow-second-fault.toml"),
    ),
];

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, shown in the simulator's source line.
    pub name: String,
    /// The incident's title on every screen.
    pub title: String,
    /// When the fault starts (RFC 3339, e.g. "2008-10-06T17:30:00Z").
    pub start: DateTime<Utc>,
    pub scale: Scale,
    pub fault: Fault,
    pub reindex: ReindexSpeed,
    #[serde(default)]
    pub later_faults: Vec<LaterFault>,
    pub mail: Mail,
    pub load: Load,
    /// What the two clusters are called (optional; Cluster A and B).
    #[serde(default)]
    pub clusters: Clusters,
}

/// The simulated platform's two clusters: the faulty one and the healthy one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clusters {
    pub faulty: ClusterName,
    pub healthy: ClusterName,
}

impl Default for Clusters {
    fn default() -> Self {
        let named = |id: &str, name: &str| ClusterName {
            id: id.into(),
            name: name.into(),
        };
        Clusters {
            faulty: named("a", "Cluster A"),
            healthy: named("b", "Cluster B"),
        }
    }
}

impl Clusters {
    /// The faulty cluster first, as the simulator numbers them.
    pub fn both(&self) -> [&ClusterName; 2] {
        [&self.faulty, &self.healthy]
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterName {
    /// Short id, in volume names (`a` → `a-vol07`): 1–16 of a–z, 0–9, `-`.
    pub id: String,
    /// What every panel calls it: 1–40 characters, no control characters.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    pub tenants: u32,
    pub mailboxes: u64,
    /// Tenant sizes are Pareto-distributed with this shape (1.16: 80/20).
    pub pareto_alpha: f64,
    /// Share of tenants (after the first two) on the faulty cluster.
    pub faulty_cluster_share: f64,
    /// Index files per mailbox, uniform in [min, max].
    pub files_per_mailbox: [u8; 2],
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Hours from the start until the cause is understood and the scan and
    /// reindex can begin.
    pub identified_after_hours: f64,
    /// Hours the scan for damaged mailboxes takes over the faulty cluster.
    pub scan_hours: f64,
    /// The first scope estimate, in files (at this scenario's scale). The
    /// true scope follows from the damage shares and is revealed by the scan.
    pub initial_scope_files: f64,
    /// Share of the faulty cluster's tenants with no damage at all.
    pub undamaged_tenants: f64,
    /// Share of tenants badly hit, and the share of their mailboxes damaged.
    pub heavy_tenants: f64,
    pub heavy_damage: [f64; 2],
    /// The share of mailboxes damaged in the other tenants.
    pub light_damage: [f64; 2],
    /// Share of mailboxes whose first reindex fails (retried, then fine).
    pub reindex_failures: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReindexSpeed {
    /// Files reindexed per second off-peak (at this scenario's scale).
    pub files_per_second: f64,
    /// Reindex workers (at this scenario's scale).
    pub concurrency: u32,
    /// How much user load slows the reindex: the rate is multiplied by
    /// 1.2 − peak_slowdown × min(load, 1) (kept within 0.3..1): past a load
    /// of 1 the platform is saturated and slows it no further. 0: no variation.
    pub peak_slowdown: f64,
    /// How unsteady the reindex runs apart from the load: each simulated
    /// hour's rate is multiplied by a factor whose logarithm is normal with
    /// this standard deviation (mean 1). 0: the rate is an exact function
    /// of the load. The default is measured on a real Dovecot
    /// (`examples/reindex_spread.rs`, docs/scenarios.md).
    #[serde(default = "default_speed_spread")]
    pub speed_spread: f64,
}

/// The reindex's hour-to-hour spread when a scenario does not state it (see
/// [`ReindexSpeed::speed_spread`]).
pub const DEFAULT_SPEED_SPREAD: f64 = 0.02;

fn default_speed_spread() -> f64 {
    DEFAULT_SPEED_SPREAD
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaterFault {
    /// Hours from the start.
    pub after_hours: f64,
    /// Share of the mailboxes restored so far that need reindexing again.
    pub restored_share: f64,
    /// What the war room is told (the scope revision's reason).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mail {
    /// Inbound messages per mailbox per day, on average over a day.
    pub messages_per_mailbox_day: f64,
    /// Queued messages delivered per second once their mailboxes are back
    /// (at this scenario's scale).
    pub backlog_delivery_per_second: f64,
}

/// Relative user load over a day (UTC): a base plus Gaussian peaks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    pub base: f64,
    #[serde(default)]
    pub peaks: Vec<Peak>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peak {
    /// Hour of day (UTC, 0..24) of the peak.
    pub hour: f64,
    /// Standard deviation in hours.
    pub width_hours: f64,
    pub height: f64,
}

impl Default for Scenario {
    fn default() -> Self {
        let (name, file, text) = SHIPPED[0];
        Scenario::parse(file, text).unwrap_or_else(|e| panic!("shipped scenario {name}: {e}"))
    }
}

fn bump(h: f64, centre: f64, width: f64) -> f64 {
    let mut d = (h - centre).rem_euclid(24.0);
    if d > 12.0 {
        d = 24.0 - d;
    }
    (-(d * d) / (2.0 * width * width)).exp()
}

impl Scenario {
    /// A shipped scenario by name, or a file.
    pub fn load(name_or_path: &str) -> Result<Scenario, FileError> {
        if let Some((_, file, text)) = SHIPPED.iter().find(|(n, ..)| *n == name_or_path) {
            return Scenario::parse(file, text);
        }
        let text = std::fs::read_to_string(name_or_path).map_err(|e| {
            FileError::whole(
                name_or_path,
                format!(
                    "cannot read: {e} (shipped scenarios: {})",
                    SHIPPED.map(|(n, ..)| n).join(", ")
                ),
            )
        })?;
        Scenario::parse(name_or_path, &text)
    }

    /// Parses and checks a scenario's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, FileError> {
        let err = |offset: usize, message: String| FileError::at(file, text, offset, message);
        let s: Scenario = toml::from_str(text).map_err(|e| {
            err(
                e.span().map_or(0, |s| s.start),
                e.message().trim().to_string(),
            )
        })?;
        s.check()
            .map_err(|(key, message)| err(key_offset(text, key), format!("{key}: {message}")))?;
        Ok(s)
    }

    /// Values that parse but cannot run: (dotted key, why).
    fn check(&self) -> Result<(), (&'static str, String)> {
        fn share(key: &'static str, v: f64) -> Result<(), (&'static str, String)> {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err((key, format!("must be a share from 0 to 1 (got {v})")))
            }
        }
        fn positive(key: &'static str, v: f64) -> Result<(), (&'static str, String)> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err((key, format!("must be above 0 (got {v})")))
            }
        }
        fn range(key: &'static str, r: [f64; 2]) -> Result<(), (&'static str, String)> {
            share(key, r[0])?;
            share(key, r[1])?;
            if r[0] <= r[1] {
                Ok(())
            } else {
                Err((key, format!("[min, max] with min ≤ max (got {r:?})")))
            }
        }
        fn hours(key: &'static str, v: f64) -> Result<(), (&'static str, String)> {
            if v.is_finite() && (0.0..=24.0 * 30.0).contains(&v) {
                Ok(())
            } else {
                Err((key, format!("hours from 0 to 720 (got {v})")))
            }
        }
        let sc = &self.scale;
        if sc.tenants < 2 {
            return Err(("tenants", format!("at least 2 (got {})", sc.tenants)));
        }
        if sc.mailboxes < sc.tenants as u64 {
            return Err((
                "mailboxes",
                format!(
                    "at least one per tenant ({} < {})",
                    sc.mailboxes, sc.tenants
                ),
            ));
        }
        if !(sc.pareto_alpha > 0.5 && sc.pareto_alpha <= 10.0) {
            return Err((
                "pareto_alpha",
                format!("from 0.5 to 10 (got {})", sc.pareto_alpha),
            ));
        }
        share("faulty_cluster_share", sc.faulty_cluster_share)?;
        let [fmin, fmax] = sc.files_per_mailbox;
        if fmin == 0 || fmin > fmax {
            return Err((
                "files_per_mailbox",
                format!("[min, max] with 1 ≤ min ≤ max ≤ 255 (got [{fmin}, {fmax}])"),
            ));
        }
        let f = &self.fault;
        hours("identified_after_hours", f.identified_after_hours)?;
        positive("scan_hours", f.scan_hours)?;
        hours("scan_hours", f.scan_hours)?;
        positive("initial_scope_files", f.initial_scope_files)?;
        share("undamaged_tenants", f.undamaged_tenants)?;
        share("heavy_tenants", f.heavy_tenants)?;
        if f.undamaged_tenants + f.heavy_tenants > 1.0 {
            return Err((
                "heavy_tenants",
                "undamaged_tenants + heavy_tenants must be at most 1".into(),
            ));
        }
        range("heavy_damage", f.heavy_damage)?;
        range("light_damage", f.light_damage)?;
        share("reindex_failures", f.reindex_failures)?;
        let r = &self.reindex;
        positive("files_per_second", r.files_per_second)?;
        if r.concurrency == 0 || r.concurrency > 4096 {
            return Err((
                "concurrency",
                format!("from 1 to 4096 (got {})", r.concurrency),
            ));
        }
        share("peak_slowdown", r.peak_slowdown)?;
        share("speed_spread", r.speed_spread)?;
        if self
            .later_faults
            .windows(2)
            .any(|w| w[0].after_hours > w[1].after_hours)
        {
            return Err(("after_hours", "later faults must be in time order".into()));
        }
        for lf in &self.later_faults {
            hours("after_hours", lf.after_hours)?;
            share("restored_share", lf.restored_share)?;
            if lf.reason.trim().is_empty() {
                return Err(("reason", "say what the war room is told".into()));
            }
        }
        positive(
            "messages_per_mailbox_day",
            self.mail.messages_per_mailbox_day,
        )?;
        positive(
            "backlog_delivery_per_second",
            self.mail.backlog_delivery_per_second,
        )?;
        positive("base", self.load.base)?;
        for p in &self.load.peaks {
            if !(0.0..24.0).contains(&p.hour) {
                return Err(("hour", format!("from 0 to 24 (got {})", p.hour)));
            }
            positive("width_hours", p.width_hours)?;
            if !(p.height.is_finite() && p.height >= 0.0) {
                return Err(("height", format!("0 or more (got {})", p.height)));
            }
        }
        if self.title.trim().is_empty() || self.name.trim().is_empty() {
            return Err(("title", "name and title must not be empty".into()));
        }
        let [faulty, healthy] = self.clusters.both();
        for (key, c) in [("faulty", faulty), ("healthy", healthy)] {
            let id_ok = (1..=16).contains(&c.id.len())
                && c.id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !id_ok {
                return Err((
                    key,
                    format!("id: 1 to 16 of a-z, 0-9 and - (got {:?})", c.id),
                ));
            }
            let chars = c.name.chars().count();
            if c.name.trim().is_empty() || chars > 40 || c.name.chars().any(char::is_control) {
                return Err((
                    key,
                    format!(
                        "name: 1 to 40 characters, no control characters (got {:?})",
                        c.name
                    ),
                ));
            }
        }
        if faulty.id == healthy.id || faulty.name == healthy.name {
            return Err((
                "healthy",
                "the two clusters need different ids and names".into(),
            ));
        }
        Ok(())
    }

    /// Relative mail load at a time of day (UTC).
    pub fn load_at(&self, t: DateTime<Utc>) -> f64 {
        let h = t.hour() as f64 + t.minute() as f64 / 60.0 + t.second() as f64 / 3600.0;
        self.load.base
            + self
                .load
                .peaks
                .iter()
                .map(|p| p.height * bump(h, p.hour, p.width_hours))
                .sum::<f64>()
    }

    /// The platform's traffic history as the forecaster reads it: the
    /// typical load of each quarter hour of the day (at its middle). The
    /// simulated platform's days before the fault were like its days
    /// during it; a real one's come from its metrics.
    pub fn traffic(&self) -> [f64; crate::domain::calibrated::QUARTERS] {
        let midnight = self
            .start
            .date_naive()
            .and_time(chrono::NaiveTime::MIN)
            .and_utc();
        std::array::from_fn(|q| {
            self.load_at(midnight + chrono::Duration::seconds(q as i64 * 900 + 450))
        })
    }

    /// The load averaged over a day (mail arrivals are scaled so that a day
    /// brings `messages_per_mailbox_day`).
    pub fn mean_load(&self) -> f64 {
        let day = self
            .start
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc());
        let Some(day) = day else {
            return self.load.base;
        };
        (0..24 * 60)
            .map(|m| self.load_at(day + chrono::Duration::minutes(m)))
            .sum::<f64>()
            / (24.0 * 60.0)
    }

    /// The reindex competes with users for storage I/O: it slows at peak
    /// load (in 2008 the European morning peak hit the reindex hard).
    pub fn reindex_factor(&self, load: f64) -> f64 {
        (1.2 - self.reindex.peak_slowdown * load.min(1.0)).clamp(0.3, 1.0)
    }
}

/// Where `key` is set in `text` (the start of its line), for errors about a
/// value that parsed but cannot run.
fn key_offset(text: &str, key: &str) -> usize {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return offset + (line.len() - t.len());
        }
        offset += line.len();
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn every_shipped_scenario_parses() {
        for (name, file, text) in SHIPPED {
            let s = Scenario::parse(file, text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.name, name, "{file}");
            assert_eq!(Scenario::load(name).unwrap(), s);
        }
    }

    #[test]
    fn an_unstated_reindex_spread_is_the_measured_one() {
        let (_, _, text) = SHIPPED[0];
        assert!(
            !text.contains("speed_spread"),
            "the shipped drills leave it out"
        );
        let s = Scenario::parse("x.toml", text).unwrap();
        assert_eq!(s.reindex.speed_spread, DEFAULT_SPEED_SPREAD);
        let steady = text.replace(
            "peak_slowdown = 0.8",
            "peak_slowdown = 0.8\nspeed_spread = 0",
        );
        let s = Scenario::parse("x.toml", &steady).unwrap();
        assert_eq!(s.reindex.speed_spread, 0.0);
    }

    #[test]
    fn peaks_are_in_european_morning_and_north_american_afternoon() {
        let s = Scenario::default();
        let day = Utc.with_ymd_and_hms(2008, 10, 7, 0, 0, 0).single().unwrap();
        let at = |h: i64| s.load_at(day + Duration::hours(h));
        assert!(at(9) > 2.0 * at(2), "EU morning peak");
        assert!(at(15) > 2.0 * at(2), "NA peak");
        assert!(at(3) < 0.4);
        assert!(s.reindex_factor(at(15)) < 0.6 * s.reindex_factor(at(3)));
        assert!((s.mean_load() - 0.70).abs() < 0.03, "{}", s.mean_load());
    }

    #[test]
    fn a_scenario_names_its_clusters_as_its_title_does() {
        // Every panel names the faulty cluster; a scenario titled "Cluster C:
        // …" must not show "Cluster A" beside it.
        for (name, _, text) in SHIPPED {
            let s = Scenario::parse(name, text).unwrap();
            let faulty = &s.clusters.faulty.name;
            if s.title.starts_with("Cluster ") {
                assert!(s.title.starts_with(faulty.as_str()), "{name}: {}", s.title);
            }
        }
        let (_, _, text) = SHIPPED[0];
        let named = format!(
            "{text}\n[clusters]\nfaulty = {{ id = \"c\", name = \"Cluster C\" }}\n\
             healthy = {{ id = \"e\", name = \"Cluster E\" }}\n"
        );
        let s = Scenario::parse("x.toml", &named).unwrap();
        assert_eq!(s.clusters.both().map(|c| c.id.as_str()), ["c", "e"]);

        let bad = named.replace("name = \"Cluster E\"", "name = \"Cluster\\u001b[2J\"");
        let e = Scenario::parse("x.toml", &bad).unwrap_err();
        let line = bad.lines().position(|l| l.starts_with("healthy")).unwrap() + 1;
        assert_eq!(e.line, line, "{e}");
        assert!(
            e.message
                .contains("healthy: name: 1 to 40 characters, no control"),
            "{e}"
        );

        let bad = named.replace("id = \"e\"", "id = \"c\"");
        let e = Scenario::parse("x.toml", &bad).unwrap_err();
        assert!(e.message.contains("different ids"), "{e}");
        let bad = named.replace("id = \"c\"", "id = \"C 1\"");
        let e = Scenario::parse("x.toml", &bad).unwrap_err();
        assert!(e.message.starts_with("faulty: id: 1 to 16"), "{e}");
    }

    #[test]
    fn errors_point_at_the_line_and_column() {
        let (_, _, text) = SHIPPED[0];
        let bad = text.replace("scan_hours = 3.0", "scan_hours = -1.0");
        let e = Scenario::parse("x.toml", &bad).unwrap_err();
        let line = bad
            .lines()
            .position(|l| l.starts_with("scan_hours"))
            .unwrap()
            + 1;
        assert_eq!((e.line, e.column), (line, 1), "{e}");
        assert!(e.to_string().contains("scan_hours: must be above 0"), "{e}");

        let bad = text.replace("tenants = 2000", "tenants = \"many\"");
        let e = Scenario::parse("x.toml", &bad).unwrap_err();
        assert!(e.line > 1 && e.to_string().starts_with("x.toml:"), "{e}");

        let bad = format!("{text}\nsurprise = 1\n");
        let e = Scenario::parse("x.toml", &bad).unwrap_err();
        assert!(e.message.contains("surprise"), "{e}");

        let bad = text.replace(
            "peak_slowdown = 0.8",
            "peak_slowdown = 0.8\nspeed_spread = 2",
        );
        let e = Scenario::parse("x.toml", &bad).unwrap_err();
        assert!(
            e.to_string().contains("speed_spread: must be a share"),
            "{e}"
        );

        let e = Scenario::load("/nonexistent/scenario.toml").unwrap_err();
        assert!(e.message.contains("cluster-a-2008"), "{e}");
        assert!(
            e.to_string()
                .starts_with("/nonexistent/scenario.toml: cannot read"),
            "no made-up line and column: {e}"
        );
    }
}
