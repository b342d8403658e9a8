//! What the console knows: the latest overview and every tenant row, as
//! received from the gateway's Watch stream. Applying an update is the only
//! way it changes.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

use crate::client::Update;
use crate::domain::tenants::{self, TenantSort};
use crate::domain::{Overview, TenantRow};

#[derive(Debug, Default)]
pub struct Model {
    pub version: u64,
    pub overview: Overview,
    /// Status updates: the latest, the page, deliveries per channel.
    pub board: crate::domain::update::StatusBoard,
    /// The gateway run the data comes from (id, started at).
    pub run: Option<crate::client::Run>,
    rows: Vec<TenantRow>,
    index: HashMap<Arc<str>, usize>,
    /// Row indices in display order; rebuilt lazily after a change.
    order: Vec<usize>,
    order_key: Option<(TenantSort, bool, String, bool)>,
    order_stale: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Snapshot,
    Delta,
    /// An old or repeated version: ignored.
    Stale,
    /// A delta that does not follow what we hold: the caller must resubscribe.
    Gap,
}

impl Model {
    /// `apply`, and whether the update comes from another run of the
    /// gateway than the data held (it restarted: a simulated incident
    /// started again with it).
    pub fn apply_run(&mut self, u: Update) -> (Applied, bool) {
        let before = self.run.as_ref().map(|r| r.id.clone());
        let applied = self.apply(u);
        let now = self.run.as_ref().map(|r| &r.id);
        let restarted = applied == Applied::Snapshot
            && before.is_some()
            && now.is_some()
            && before.as_ref() != now;
        (applied, restarted)
    }

    pub fn apply(&mut self, u: Update) -> Applied {
        if !u.snapshot {
            if self.version == 0 || u.version <= self.version {
                return if self.version == 0 {
                    Applied::Gap
                } else {
                    Applied::Stale
                };
            }
            if u.version != self.version + 1 {
                return Applied::Gap;
            }
        }
        if u.snapshot {
            self.rows.clear();
            self.index.clear();
            if let Some(r) = u.run {
                self.run = Some(r);
            }
        }
        self.version = u.version;
        self.overview = u.overview;
        // A change without a board keeps the one we hold.
        if let Some(board) = u.board {
            self.board = board;
        }
        for row in u.tenants {
            match self.index.get(&row.id) {
                Some(&i) => self.rows[i] = row,
                None => {
                    self.index.insert(row.id.clone(), self.rows.len());
                    self.rows.push(row);
                }
            }
        }
        self.order_stale = true;
        if u.snapshot {
            Applied::Snapshot
        } else {
            Applied::Delta
        }
    }

    pub fn tenant_count(&self) -> usize {
        self.rows.len()
    }

    /// A tenant by exact id, exact domain or name (case-insensitive), then
    /// by unique substring of the name.
    /// The one tenant `q` names: an exact id, domain or name, else the only
    /// tenant whose name or domain contains it. The error says why not.
    pub fn find_tenant(&self, q: &str) -> Result<String, String> {
        if self.rows.is_empty() {
            return Err(
                "the tenant list has not arrived from the gateway yet: try again in a moment"
                    .into(),
            );
        }
        let q = q.to_lowercase();
        let exact = self.rows.iter().find(|t| {
            t.id.to_lowercase() == q
                || t.primary_domain.to_lowercase() == q
                || t.name.to_lowercase() == q
        });
        if let Some(t) = exact {
            return Ok(t.id.to_string());
        }
        let partial: Vec<&TenantRow> = self
            .rows
            .iter()
            .filter(|t| {
                t.name.to_lowercase().contains(&q) || t.primary_domain.to_lowercase().contains(&q)
            })
            .take(4)
            .collect();
        match partial.as_slice() {
            [] => Err(format!("no tenant matches {q:?}")),
            [one] => Ok(one.id.to_string()),
            many => Err(format!(
                "{q:?} matches several tenants ({}{}): give the id or the whole domain",
                many.iter()
                    .take(3)
                    .map(|t| format!("{} {}", t.id, t.primary_domain))
                    .collect::<Vec<_>>()
                    .join(", "),
                if many.len() > 3 { ", …" } else { "" }
            )),
        }
    }

    pub fn tenant(&self, id: &str) -> Option<&TenantRow> {
        self.index.get(id).map(|&i| &self.rows[i])
    }

    /// The tenants whose ETA slipped (as the gateway says): withdrawn
    /// estimates first, then the most moved, then by name.
    pub fn slipped(&self) -> Vec<&TenantRow> {
        crate::domain::slip::slipped(&self.rows)
    }

    /// Sorts and filters for display, only when data or the key changed;
    /// says whether the order was rebuilt.
    pub fn prepare_order(
        &mut self,
        sort: TenantSort,
        reverse: bool,
        filter: &str,
        affected_only: bool,
    ) -> bool {
        let key = (sort, reverse, filter.to_string(), affected_only);
        if !self.order_stale && self.order_key.as_ref() == Some(&key) {
            return false;
        }
        let needle = filter.to_lowercase();
        let rows = &self.rows;
        let mut order: Vec<usize> = (0..rows.len())
            .filter(|&i| tenants::matches(&rows[i], &needle, affected_only))
            .collect();
        // Ties keep the order they were shown in, then arrival order (the
        // gateway's id order for every row of the snapshot). Two tenants
        // restored at the same pace tie every other tick: without this
        // they swapped places on screen each time.
        let mut shown = vec![u32::MAX; rows.len()];
        for (rank, &i) in self.order.iter().enumerate() {
            if let Some(r) = shown.get_mut(i) {
                *r = rank as u32;
            }
        }
        order.sort_by_cached_key(|&i| {
            let key = tenants::sort_key(&rows[i], sort);
            let key = if reverse { Err(Reverse(key)) } else { Ok(key) };
            (key, shown[i], i)
        });
        self.order = order;
        self.order_key = Some(key);
        self.order_stale = false;
        true
    }

    /// Where the tenant `id` is in display order, if shown.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.order.iter().position(|&i| &*self.rows[i].id == id)
    }

    /// Rows in display order (as of the last `prepare_order`).
    pub fn ordered(&self) -> impl ExactSizeIterator<Item = &TenantRow> + '_ {
        self.order.iter().map(|&i| &self.rows[i])
    }

    pub fn ordered_len(&self) -> usize {
        self.order.len()
    }

    pub fn ordered_at(&self, i: usize) -> Option<&TenantRow> {
        self.order.get(i).map(|&r| &self.rows[r])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::pb;

    fn apply(m: &mut Model, u: &pb::WatchUpdate) -> Applied {
        m.apply(Update::from_pb(u))
    }

    fn tenant(id: &str, affected: u64) -> pb::TenantSummary {
        pb::TenantSummary {
            id: id.into(),
            name: id.into(),
            mailboxes: 100,
            states: Some(pb::MailboxStateCounts {
                ok: 100 - affected,
                locked_out: affected,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Before the gateway's first picture, `:open acme-title.com` says the
    /// list has not arrived, not that no tenant matches.
    #[test]
    fn finding_a_tenant_before_the_list_arrives_says_so() {
        let err = Model::default().find_tenant("acme-title.com").unwrap_err();
        assert!(err.contains("has not arrived"), "{err}");
    }

    #[test]
    fn snapshot_then_deltas_then_gap() {
        let mut m = Model::default();
        let delta = |v, t: Vec<pb::TenantSummary>| pb::WatchUpdate {
            version: v,
            tenants: t,
            ..Default::default()
        };
        assert_eq!(
            apply(&mut m, &delta(3, vec![])),
            Applied::Gap,
            "no delta before a snapshot"
        );
        let snap = pb::WatchUpdate {
            version: 5,
            snapshot: true,
            tenants: vec![tenant("a", 1), tenant("b", 2)],
            ..Default::default()
        };
        assert_eq!(apply(&mut m, &snap), Applied::Snapshot);
        assert_eq!(apply(&mut m, &delta(5, vec![])), Applied::Stale);
        assert_eq!(
            apply(&mut m, &delta(6, vec![tenant("a", 50)])),
            Applied::Delta
        );
        assert_eq!(m.tenant("a").unwrap().affected(), 50);
        assert_eq!(m.tenant_count(), 2);
        m.prepare_order(TenantSort::Affected, false, "", false);
        let ids: Vec<_> = m.ordered().map(|t| t.id.to_string()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(apply(&mut m, &delta(8, vec![])), Applied::Gap);
    }

    /// Two tenants restored at the same pace tie every other tick; the
    /// one that went ahead stays ahead through the tie, in both sort
    /// directions.
    #[test]
    fn ties_keep_their_place_on_screen() {
        let mut m = Model::default();
        let update = |v, snapshot, t: Vec<pb::TenantSummary>| pb::WatchUpdate {
            version: v,
            snapshot,
            tenants: t,
            ..Default::default()
        };
        let ids = |m: &Model| m.ordered().map(|t| t.id.to_string()).collect::<Vec<_>>();
        // Forward (most affected first) `a` drops first, so `b` goes
        // ahead; reversed (least affected first) `b` drops first and goes
        // ahead. Either way `b` must then stay first through the tie.
        for (reverse, drops, other) in [(false, "a", "b"), (true, "b", "a")] {
            apply(
                &mut m,
                &update(1, true, vec![tenant("a", 16), tenant("b", 16)]),
            );
            m.order.clear();
            m.prepare_order(TenantSort::Affected, reverse, "", false);
            assert_eq!(ids(&m), ["a", "b"], "a tie first shows in id order");
            apply(&mut m, &update(2, false, vec![tenant(drops, 15)]));
            m.prepare_order(TenantSort::Affected, reverse, "", false);
            assert_eq!(ids(&m), ["b", "a"], "reverse {reverse}: b goes ahead");
            apply(&mut m, &update(3, false, vec![tenant(other, 15)]));
            m.prepare_order(TenantSort::Affected, reverse, "", false);
            assert_eq!(
                ids(&m),
                ["b", "a"],
                "reverse {reverse}: tied again, b keeps its place"
            );
        }
    }
}
