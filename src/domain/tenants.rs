//! Ordering and filtering of the tenants table. The gateway's ListTenants and
//! the console's table use this same code, so "sorted by affected" means the
//! same thing on every screen and in every script.

use std::cmp::Ordering;

use super::model::TenantRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TenantSort {
    /// Most affected mailboxes first.
    #[default]
    Affected,
    /// Highest share of affected mailboxes first.
    PercentAffected,
    /// A→Z.
    Name,
    /// Largest tenant first.
    Mailboxes,
    /// Most queued messages first.
    Queued,
    /// P0 first, then most affected.
    Priority,
    /// Soonest restored first; tenants without an estimate last.
    Eta,
}

impl TenantSort {
    pub const ALL: [TenantSort; 7] = [
        TenantSort::Affected,
        TenantSort::PercentAffected,
        TenantSort::Name,
        TenantSort::Mailboxes,
        TenantSort::Queued,
        TenantSort::Priority,
        TenantSort::Eta,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TenantSort::Affected => "affected",
            TenantSort::PercentAffected => "pct",
            TenantSort::Name => "name",
            TenantSort::Mailboxes => "mailboxes",
            TenantSort::Queued => "queued",
            TenantSort::Priority => "priority",
            TenantSort::Eta => "eta",
        }
    }

    /// The next sort key, for a "cycle sort" key binding.
    pub fn next(self) -> Self {
        let i = Self::ALL.iter().position(|s| *s == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// Total order for `sort`; ties broken by id so pages never overlap.
pub fn compare(a: &TenantRow, b: &TenantRow, sort: TenantSort) -> Ordering {
    let primary = match sort {
        TenantSort::Affected => b.affected().cmp(&a.affected()),
        TenantSort::PercentAffected => b
            .affected_fraction()
            .total_cmp(&a.affected_fraction())
            .then_with(|| b.affected().cmp(&a.affected())),
        TenantSort::Name => a
            .name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then_with(|| a.name.cmp(&b.name)),
        TenantSort::Mailboxes => b.mailboxes.cmp(&a.mailboxes),
        TenantSort::Queued => b.queued_messages.cmp(&a.queued_messages),
        TenantSort::Priority => a
            .priority
            .cmp(&b.priority)
            .then_with(|| b.affected().cmp(&a.affected())),
        TenantSort::Eta => match (a.eta.p50, b.eta.p50) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => b.affected().cmp(&a.affected()),
        },
    };
    primary.then_with(|| a.id.cmp(&b.id))
}

/// Case-insensitive substring match on id, name or primary domain.
/// `needle_lower` must already be lower-case.
pub fn matches(row: &TenantRow, needle_lower: &str, affected_only: bool) -> bool {
    if affected_only && row.affected() == 0 {
        return false;
    }
    if needle_lower.is_empty() {
        return true;
    }
    [&row.id, &row.name, &row.primary_domain]
        .iter()
        .any(|f| f.to_lowercase().contains(needle_lower))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{MailboxState, StateCounts};

    fn row(id: &str, mailboxes: u64, locked: u64) -> TenantRow {
        let mut states = StateCounts::default();
        states.add(MailboxState::LockedOut, locked);
        states.add(MailboxState::Ok, mailboxes - locked);
        TenantRow {
            id: id.into(),
            name: id.to_uppercase().into(),
            primary_domain: format!("{id}.example").into(),
            mailboxes,
            states,
            ..Default::default()
        }
    }

    #[test]
    fn affected_then_percent_then_name() {
        let mut rows = [row("b", 100, 10), row("a", 10, 8), row("c", 1000, 10)];
        rows.sort_by(|x, y| compare(x, y, TenantSort::Affected));
        let ids: Vec<_> = rows.iter().map(|r| r.id.to_string()).collect();
        assert_eq!(ids, ["b", "c", "a"]); // ties (10, 10) by id
        rows.sort_by(|x, y| compare(x, y, TenantSort::PercentAffected));
        assert_eq!(&*rows[0].id, "a"); // 80%
        rows.sort_by(|x, y| compare(x, y, TenantSort::Name));
        assert_eq!(&*rows[0].id, "a");
    }

    #[test]
    fn filter_is_case_insensitive_on_domain_and_affected_only() {
        let r = row("acme", 10, 0);
        assert!(matches(&r, "acme.ex", false));
        assert!(matches(&r, "", false));
        assert!(!matches(&r, "", true));
        assert!(!matches(&r, "globex", false));
    }

    #[test]
    fn sort_cycles_through_every_key() {
        let mut s = TenantSort::Affected;
        for _ in 0..TenantSort::ALL.len() {
            s = s.next();
        }
        assert_eq!(s, TenantSort::Affected);
    }
}
