//! The shape of the simulated incident: when things happen and how load
//! varies over the day. Modelled on the Cluster A outage of October 2008.

use chrono::{DateTime, TimeZone, Timelike, Utc};

/// 17:30 UTC on 6 October 2008: Cluster A resellers lose mailbox access.
pub fn default_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2008, 10, 6, 17, 30, 0)
        .single()
        .unwrap_or_default()
}

pub const HOUR: f64 = 3600.0;
/// The storage/NFS bug is understood and the reindex can start.
pub const IDENTIFIED_AT: f64 = 3.0 * HOUR;
/// The scan for damaged mailboxes takes this long over the whole cluster.
pub const SCAN_SECONDS: f64 = 3.0 * HOUR;
/// A mail-server bug makes part of the finished reindex useless.
pub const SECOND_FAULT_AT: f64 = 26.0 * HOUR;
/// Volumes per cluster; every third one is hit by the second fault.
pub const VOLUMES: u64 = 24;
/// The initial scope estimate at the default scale, as in the seed.
pub const INITIAL_SCOPE_FILES: f64 = 25_000.0;
pub const DEFAULT_MAILBOXES: f64 = 50_000.0;
/// Files reindexed per second at the default scale, off-peak.
pub const REINDEX_FILES_PER_SEC: f64 = 1.1;
/// Queued messages delivered per second once mailboxes are back.
pub const BACKLOG_DELIVERY_PER_SEC: f64 = 12.0;
/// Inbound messages per mailbox per day, on average.
pub const MESSAGES_PER_MAILBOX_DAY: f64 = 40.0;
/// Reindex workers at the default scale.
pub const CONCURRENCY: f64 = 8.0;
/// Reindex rate samples kept (one per tick): a day at one-minute ticks, so
/// the pessimistic ETA remembers yesterday's peak.
pub const REINDEX_HISTORY: usize = 1_440;
/// Ticks between two queue sparkline samples.
pub const HISTORY_EVERY: u64 = 10;
/// Samples kept for the queue sparkline.
pub const HISTORY: usize = 120;

fn bump(h: f64, centre: f64, width: f64) -> f64 {
    let mut d = (h - centre).abs();
    if d > 12.0 {
        d = 24.0 - d;
    }
    (-(d * d) / (2.0 * width * width)).exp()
}

/// Relative mail load at a time of day (UTC): a European morning peak around
/// 09:00 and a North American peak around 15:30. About 0.25 at night, 1.1 at
/// the NA peak; averages ~0.70 over a day.
pub fn load(t: DateTime<Utc>) -> f64 {
    let h = t.hour() as f64 + t.minute() as f64 / 60.0 + t.second() as f64 / 3600.0;
    0.25 + 0.9 * bump(h, 9.0, 2.0) + 1.0 * bump(h, 15.5, 2.5)
}

pub const MEAN_LOAD: f64 = 0.70;

/// The reindex competes with users for storage I/O: it slows to about 40% at
/// peak load (in 2008 the European morning peak hit the reindex hard).
pub fn reindex_factor(load: f64) -> f64 {
    (1.2 - 0.8 * load.min(1.0)).clamp(0.3, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn peaks_are_in_european_morning_and_north_american_afternoon() {
        let day = Utc.with_ymd_and_hms(2008, 10, 7, 0, 0, 0).single().unwrap();
        let at = |h: i64| load(day + Duration::hours(h));
        assert!(at(9) > 2.0 * at(2), "EU morning peak");
        assert!(at(15) > 2.0 * at(2), "NA peak");
        assert!(at(3) < 0.4);
        assert!(reindex_factor(at(15)) < 0.6 * reindex_factor(at(3)));
        let mean: f64 = (0..24 * 60)
            .map(|m| load(day + Duration::minutes(m)))
            .sum::<f64>()
            / (24.0 * 60.0);
        assert!((mean - MEAN_LOAD).abs() < 0.03, "mean load {mean}");
    }
}
