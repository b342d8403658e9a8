//! The simulator as a `Source`: what the hub asks of it each tick and each query.

use super::*;

impl Source for Simulator {
    fn now(&self) -> DateTime<Utc> {
        Simulator::now(self)
    }

    fn advance(&mut self, dt: f64) {
        let dt = if dt.is_finite() {
            dt.clamp(0.0, 86_400.0)
        } else {
            0.0
        };
        self.advances += 1;
        self.last_dt = dt;
        for t in &mut self.tenants {
            t.dirty = false;
        }
        self.t += dt;
        let now = self.now();
        let load = self.sc.load_at(now);
        if self.scope.is_none() && self.t >= self.sc.fault.identified_after_hours * HOUR {
            let initial = (self.sc.fault.initial_scope_files * self.scale).round() as u64;
            self.scope = Some(ScopeTracker::new(
                now,
                initial,
                format!(
                    "initial analysis: about {} files need reindexing",
                    format::thousands(initial)
                ),
            ));
            self.last_revision_t = self.t;
            self.incident_state = IncidentState::Identified;
        }
        if self.scope.is_some() {
            self.scan(dt);
            self.reindex(dt, load);
        }
        while let Some(f) = self.sc.later_faults.get(self.later_faults_done)
            && self.t >= f.after_hours * HOUR
        {
            self.later_fault(self.later_faults_done);
        }
        self.mail_flow(dt, load);
        self.settle_quotes();
        self.reindex_done_at = if self.reindex_left() {
            None
        } else {
            self.reindex_done_at.or(Some(now))
        };
        self.forecast_tenants();
        self.register_quotes();
        let all_back = self.tenants.iter().all(|t| t.states.affected() == 0);
        if all_back && self.scope.is_some() {
            let queued: f64 = self.tenants.iter().map(|t| t.backlog + t.deliverable).sum();
            self.incident_state = if queued < 1.0 {
                IncidentState::Resolved
            } else {
                IncidentState::Monitoring
            };
        }
        // One sparkline sample every HISTORY_EVERY ticks: a graph that shifts
        // every second repaints itself on every console every second.
        let sample = (self.advances - 1).is_multiple_of(HISTORY_EVERY);
        for c in [CLUSTER_A, CLUSTER_B].into_iter().filter(|_| sample) {
            let depth = self.queued_on(c);
            let h = &mut self.flows[c].depth_history;
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(depth);
        }
        // What watchers now hold, to judge next tick's queued change.
        for t in self.tenants.iter_mut().filter(|t| t.dirty) {
            t.sent_queued = t.queued();
        }
    }

    fn advances(&self) -> u64 {
        self.advances
    }

    fn set_priority(&mut self, d: Arc<PriorityDecision>) -> Result<(), SourceError> {
        let ti = self
            .tenant_index(&d.tenant_id)
            .ok_or_else(|| SourceError::UnknownTenant(d.tenant_id.clone()))?;
        // Rows changed by the last tick have been sent: from here on `dirty`
        // marks what this decision changes.
        for t in &mut self.tenants {
            t.dirty = false;
        }
        let t = &mut self.tenants[ti];
        let old = t.slot();
        t.priority = d.priority;
        t.priority_rank = d.rank;
        t.priority_set = Some(d);
        t.dirty = true;
        let new = t.slot();
        if old != new && !t.pending.is_empty() {
            if let Some(q) = self.queues.get_mut(&old) {
                q.retain(|&x| x as usize != ti);
            }
            self.queues.entry(new).or_default().push_back(ti as u32);
        }
        self.queues.retain(|_, q| !q.is_empty());
        // Every tenant's place in the order may have moved: recompute now,
        // not at the next tick, so every console sees the effect at once.
        self.forecast_tenants();
        Ok(())
    }

    fn overview(&self) -> Overview {
        let now = self.now();
        let clusters = vec![self.cluster(CLUSTER_A), self.cluster(CLUSTER_B)];
        let mut totals = Totals {
            tenants: self.tenants.len() as u64,
            queued_messages: Some(0),
            ..Default::default()
        };
        for t in &self.tenants {
            let a = t.states.affected();
            totals.mailboxes += t.count;
            totals.affected_mailboxes += a;
            totals.affected_tenants += (a > 0) as u64;
            totals.restored_mailboxes += t.states.get(MailboxState::Restored);
            totals.queued_messages = totals.queued_messages.map(|q| q + t.queued());
        }
        Overview {
            incident: Incident {
                title: self.sc.title.clone(),
                started_at: Some(self.cfg.start),
                state: self.incident_state,
                now: Some(now),
                speed: 1.0,
            },
            sources: vec![SourceStatus {
                name: "simulator".into(),
                simulated: true,
                health: Health::Ok,
                message: format!(
                    "{}, seed {}, {} tenants, {} mailboxes",
                    self.sc.name,
                    self.cfg.seed,
                    format::thousands(self.tenants.len() as u64),
                    format::thousands(self.state.len() as u64)
                ),
                last_success: Some(now),
            }],
            clusters,
            totals,
        }
    }

    fn tenants(&self) -> Vec<TenantRow> {
        self.tenants.iter().map(Tenant::row).collect()
    }

    fn tenant(&self, id: &str) -> Option<TenantRow> {
        self.tenant_index(id).map(|i| self.tenants[i].row())
    }

    /// The NOC of each tenant, and an IT manager for the larger ones.
    fn contacts(&self, tenant_id: &str) -> Vec<String> {
        let Some(t) = self.tenant_index(tenant_id).map(|i| &self.tenants[i]) else {
            return Vec::new();
        };
        let mut c = vec![format!("noc@{}", t.primary)];
        if &*t.tier != "small" {
            c.push(format!("it-manager@{}", t.primary));
        }
        c
    }

    fn changed_tenants(&self) -> Vec<TenantRow> {
        self.tenants
            .iter()
            .filter(|t| t.dirty)
            .map(Tenant::row)
            .collect()
    }

    fn mailboxes(&self, q: &MailboxQuery) -> Result<Page<MailboxRow>, SourceError> {
        let ti = self
            .tenant_index(&q.tenant_id)
            .ok_or_else(|| SourceError::UnknownTenant(q.tenant_id.clone()))?;
        let t = &self.tenants[ti];
        let wanted = |s: MailboxState| {
            if q.states.is_empty() {
                s != MailboxState::Ok
            } else {
                q.states.contains(&s)
            }
        };
        let range = t.first..t.first + t.count;
        let mut ids: Vec<u64> = if q.sort_by_eta {
            // Reindex order: in flight, then the tenant's queue, then the rest
            // (locked out and not yet scanned, restored) by address order.
            let mut v: Vec<u64> = self
                .in_flight
                .iter()
                .map(|f| f.mailbox)
                .filter(|m| range.contains(m))
                .collect();
            v.extend(t.pending.iter().map(|&l| t.first + l as u64));
            v.extend(range.clone().filter(|&m| {
                !matches!(
                    self.mailbox_state(m),
                    MailboxState::Reindexing | MailboxState::ReindexPending | MailboxState::Failed
                )
            }));
            v
        } else {
            // Addresses never change: sort them once per tenant, on the
            // first request (115 ms for a 330k-mailbox tenant), then every
            // page is a filter over that order.
            let order = t.address_order.get_or_init(|| {
                let mut keyed: Vec<(String, u32)> = (0..t.count)
                    .map(|l| (self.address(ti, l), l as u32))
                    .collect();
                keyed.sort_unstable();
                keyed.into_iter().map(|(_, l)| l).collect()
            });
            order.iter().map(|&l| t.first + l as u64).collect()
        };
        ids.retain(|&m| wanted(self.mailbox_state(m)));
        let total = ids.len();
        let rows = ids
            .into_iter()
            .skip(q.offset)
            .take(q.limit)
            .map(|m| self.mailbox_row(m))
            .collect();
        Ok(Page { rows, total })
    }

    fn lookup(&self, query: &str, limit: usize) -> LookupAnswer {
        let q = query.trim().to_lowercase();
        if q.is_empty() || limit == 0 {
            return LookupAnswer::default();
        }
        // An exact address, domain or tenant id is an answer, not a search.
        if let Some((local, domain)) = q.rsplit_once('@')
            && let Some(&(ti, d)) = self.domains.get(domain)
            && let Some(k) = names::parse_local_part(local)
        {
            let t = &self.tenants[ti as usize];
            let j = k
                .checked_mul(t.domains as u64)
                .and_then(|x| x.checked_add(d as u64));
            if let Some(j) = j.filter(|&j| j < t.count) {
                return LookupAnswer::exact(LookupHit::Mailbox(
                    self.mailbox_row_of(ti as usize, t.first + j),
                ));
            }
        }
        if let Some(&(ti, _)) = self.domains.get(&q) {
            return LookupAnswer::exact(LookupHit::Domain {
                domain: q,
                tenant: self.tenants[ti as usize].row(),
            });
        }
        if let Some(ti) = self.tenant_index(&q) {
            return LookupAnswer::exact(LookupHit::Tenant(self.tenants[ti].row()));
        }
        // Otherwise prefixes, then misspellings (see index.rs and src/lookup),
        // those with affected mailboxes first; rows only for the page.
        let found = self
            .index
            .lookup(&q, limit, |f| self.found_affected(f))
            .filter_map(|found| match found {
                index::Found::Mailbox(m) => Some(LookupHit::Mailbox(
                    self.mailbox_row_of(m.tenant as usize, self.found_mailbox(m)?),
                )),
                index::Found::Domain { tenant, domain } => Some(LookupHit::Domain {
                    domain: self.index.domain_name(domain),
                    tenant: self.tenants.get(tenant as usize)?.row(),
                }),
                index::Found::Tenant(ti) => {
                    Some(LookupHit::Tenant(self.tenants.get(ti as usize)?.row()))
                }
            });
        found.into()
    }
}
