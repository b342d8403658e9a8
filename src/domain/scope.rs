//! Scope revisions: how big the job is believed to be, and every time that
//! belief changed. In 2008 "about 25,000 files" grew to many more overnight;
//! the war room must see the history, not just the latest number.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRevision {
    pub at: DateTime<Utc>,
    pub previous: u64,
    pub scope: u64,
    pub reason: String,
}

/// The current scope estimate and its revision history (oldest first; the
/// first entry is the initial estimate, with `previous == 0`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeTracker {
    revisions: Vec<ScopeRevision>,
}

impl ScopeTracker {
    pub fn new(at: DateTime<Utc>, initial: u64, reason: impl Into<String>) -> Self {
        ScopeTracker {
            revisions: vec![ScopeRevision {
                at,
                previous: 0,
                scope: initial,
                reason: reason.into(),
            }],
        }
    }

    pub fn current(&self) -> u64 {
        self.revisions.last().map_or(0, |r| r.scope)
    }

    pub fn initial(&self) -> u64 {
        self.revisions.first().map_or(0, |r| r.scope)
    }

    pub fn revisions(&self) -> &[ScopeRevision] {
        &self.revisions
    }

    /// Records a new estimate. Returns false (and records nothing) when it
    /// equals the current one.
    pub fn revise(&mut self, at: DateTime<Utc>, scope: u64, reason: impl Into<String>) -> bool {
        let previous = self.current();
        if scope == previous {
            return false;
        }
        self.revisions.push(ScopeRevision {
            at,
            previous,
            scope,
            reason: reason.into(),
        });
        true
    }

    /// How much the scope grew at its latest revision, as a fraction of the
    /// previous estimate (0 when it never grew). Used to widen the p90 ETA:
    /// a job whose scope just grew 40% may well grow again.
    pub fn latest_growth(&self) -> f64 {
        match self.revisions.last() {
            Some(r) if r.previous > 0 && r.scope > r.previous => {
                (r.scope - r.previous) as f64 / r.previous as f64
            }
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn keeps_history_and_ignores_no_change() {
        let t = Utc.with_ymd_and_hms(2008, 10, 7, 1, 0, 0).single().unwrap();
        let mut s = ScopeTracker::new(t, 25_000, "initial analysis");
        assert_eq!(s.current(), 25_000);
        assert_eq!(s.latest_growth(), 0.0);
        assert!(!s.revise(t, 25_000, "same"));
        assert!(s.revise(
            t + Duration::hours(5),
            35_000,
            "more files found at EU peak"
        ));
        assert_eq!(s.current(), 35_000);
        assert_eq!(s.initial(), 25_000);
        assert_eq!(s.revisions().len(), 2);
        assert_eq!(s.revisions()[1].previous, 25_000);
        assert!((s.latest_growth() - 0.4).abs() < 1e-9);
    }
}
