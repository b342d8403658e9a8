//! The overview: service health per cluster, the inbound queue, the
//! reindex, and the tenants table (sorted, filtered, only the rows on
//! screen built).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Gauge, Paragraph, Row, Sparkline, Table};

use super::frame::{block, eta_fit, eta_forms, render_selectable, safe};
use crate::console::app::{App, Command};
use crate::console::fit::{self, Col, Fit};
use crate::console::keymap::Action;
use crate::console::theme::{health_label, health_short};
use crate::domain::format::{
    UNKNOWN, clip, clock, compact, compact_or_unknown, counted, duration, eta_range, eta_relative,
    per_min, percent, slip_short, thousands, thousands_or_unknown,
};
use crate::domain::tenants::TenantSort;
use crate::domain::{Cluster, Health, Overview, Reindex, ServiceRole};
use chrono::{DateTime, Utc};

impl App {
    pub(in crate::console) fn overview_action(&mut self, action: Action) -> Command {
        let cmd = self.overview_move(action);
        // A move picks the tenant now on that row, as shown.
        if matches!(
            action,
            Action::Down
                | Action::Up
                | Action::PageDown
                | Action::PageUp
                | Action::Top
                | Action::Bottom
        ) {
            self.remember_selection();
        }
        cmd
    }

    fn overview_move(&mut self, action: Action) -> Command {
        let n = self.model.ordered_len();
        let last = n.saturating_sub(1);
        match action {
            Action::Down => self.selected = (self.selected + 1).min(last),
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::PageDown => self.selected = (self.selected + 10).min(last),
            Action::PageUp => self.selected = self.selected.saturating_sub(10),
            Action::Top => self.selected = 0,
            Action::Bottom => self.selected = last,
            // The selected tenant stays selected (see `prepare`).
            Action::SortNext => self.sort = self.sort.next(),
            Action::SortReverse => self.reverse = !self.reverse,
            Action::AffectedOnly => self.affected_only = !self.affected_only,
            Action::Back => self.filter.clear(),
            Action::Open => {
                if let Some(t) = self.model.ordered_at(self.selected) {
                    let id = t.id.to_string();
                    return self.open_tenant(id);
                }
            }
            Action::Prioritize => {
                if let Some(t) = self.model.ordered_at(self.selected) {
                    let id = t.id.to_string();
                    return self.open_prio(&id);
                }
            }
            _ => {}
        }
        Command::None
    }
}

pub(crate) fn render(f: &mut Frame, area: Rect, app: &App, wide: bool) {
    let top_h = if wide { 14 } else { 10 };
    let [top, tenants] =
        Layout::vertical([Constraint::Length(top_h), Constraint::Min(4)]).areas(area);
    let health_w = if wide { 58 } else { 40 };
    let [health, right] =
        Layout::horizontal([Constraint::Length(health_w), Constraint::Min(20)]).areas(top);
    let [queue, reindex] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(right);
    render_health(f, health, app, wide);
    render_queue(f, queue, app, wide);
    render_reindex(f, reindex, app, wide);
    render_tenants(f, tenants, app, wide);
}

fn render_health(f: &mut Frame, area: Rect, app: &App, wide: bool) {
    let th = &app.theme;
    let o = &app.model.overview;
    let b = block(app, "Service health");
    let inner = b.inner(area);
    f.render_widget(b, area);
    if o.clusters.is_empty() {
        f.render_widget(Paragraph::new("no data yet"), inner);
        return;
    }
    let clusters: Vec<&Cluster> = o.clusters.iter().take(2).collect();
    let mut header = vec![Cell::from("role")];
    for c in &clusters {
        let name = if wide {
            clip(&safe(&c.name), 12)
        } else {
            clip(&safe(&c.id).to_uppercase(), 3)
        };
        header.push(Cell::from(Line::from(vec![
            Span::styled(name, th.title()),
            Span::raw(" "),
            Span::styled(health_short(c.health), th.health(c.health)),
        ])));
    }
    // Only the roles some cluster reports: a platform that has no webmail
    // leaves room for every source line below.
    let roles: Vec<ServiceRole> = ServiceRole::ALL
        .into_iter()
        .filter(|r| {
            clusters
                .iter()
                .any(|c| c.services.iter().any(|s| s.role == *r))
        })
        .collect();
    let table_h = roles.len() as u16 + 1;
    let rows = roles.iter().map(|role| {
        let mut cells = vec![Cell::from(role.as_str())];
        for c in &clusters {
            let text = match c.services.iter().find(|s| s.role == *role) {
                Some(s) => {
                    let login = s
                        .login_success_rate
                        .map(|r| format!(" {:>5.1}%", r * 100.0))
                        .unwrap_or_default();
                    if wide {
                        Line::from(vec![
                            Span::styled(
                                format!("{:<7}", health_short(s.status)),
                                th.health(s.status),
                            ),
                            Span::raw(format!(
                                "{login:>7}{:>8}",
                                s.latency_ms
                                    .map_or_else(|| UNKNOWN.to_string(), |l| format!("{l:.0}ms"))
                            )),
                        ])
                    } else {
                        Line::from(vec![
                            Span::styled(
                                format!("{:<6}", health_short(s.status)),
                                th.health(s.status),
                            ),
                            Span::raw(login),
                        ])
                    }
                }
                None => Line::from(Span::styled("? no data", th.health(Health::Unknown))),
            };
            cells.push(Cell::from(text));
        }
        Row::new(cells)
    });
    let col = if wide { 23 } else { 15 };
    let mut widths = vec![Constraint::Length(8)];
    widths.extend(clusters.iter().map(|_| Constraint::Length(col)));
    let table = Table::new(rows, widths).header(Row::new(header).style(th.title()));
    let [t, notes] =
        Layout::vertical([Constraint::Length(table_h), Constraint::Min(0)]).areas(inner);
    f.render_widget(table, t);
    if notes.height > 0 {
        let room = notes.height as usize;
        let w = inner.width as usize;
        // Every source, first: an outage of any of them must be visible.
        // When they do not all fit, one line sums them up and the ones not
        // ok follow.
        let source_line = |s: &crate::domain::SourceStatus| {
            let age = s
                .last_success
                .map(|t| format!(" {} ago", duration(o.incident.now.unwrap_or(app.clock) - t)))
                .unwrap_or_default();
            let msg = if s.message.is_empty() {
                String::new()
            } else {
                format!(": {}", safe(&s.message))
            };
            Line::from(Span::styled(
                clip(
                    &format!("{} {}{age}{msg}", safe(&s.name), health_label(s.health)),
                    w,
                ),
                th.health(s.health),
            ))
        };
        let mut lines: Vec<Line> = if o.sources.len() <= room {
            o.sources.iter().map(source_line).collect()
        } else {
            let bad: Vec<_> = o
                .sources
                .iter()
                .filter(|s| s.health != Health::Ok)
                .collect();
            let mut v = vec![Line::from(Span::styled(
                clip(
                    &format!(
                        "sources: {} ok, {} not ok",
                        o.sources.len() - bad.len(),
                        bad.len()
                    ),
                    w,
                ),
                th.dim(),
            ))];
            v.extend(bad.into_iter().map(source_line));
            v.truncate(room);
            v
        };
        if let Some(c) = clusters.first() {
            for s in c.services.iter().filter(|s| !s.detail.is_empty()) {
                if lines.len() >= room {
                    break;
                }
                lines.push(Line::from(Span::styled(
                    clip(&format!("{}: {}", s.role.as_str(), safe(&s.detail)), w),
                    th.dim(),
                )));
            }
            // What the damage sweep cannot see, said where it is seen.
            if let Some(sw) = c.sweep.as_ref().filter(|s| !s.undetectable.is_empty())
                && lines.len() < room
            {
                lines.push(Line::from(Span::styled(
                    clip(&format!("sweep cannot see: {}", safe(&sw.undetectable)), w),
                    th.dim(),
                )));
            }
        }
        f.render_widget(Paragraph::new(lines), notes);
    }
}

/// The affected cluster first: the one the war room is about; after the
/// recovery, the one that had the reindex (not a healthy bystander).
fn focus_cluster(o: &Overview) -> Option<&Cluster> {
    o.clusters
        .iter()
        .enumerate()
        .max_by_key(|(i, c)| {
            (
                c.affected_mailboxes,
                c.queue.depth(),
                c.reindex.scope > 0 || c.sweep.is_some(),
                std::cmp::Reverse(*i),
            )
        })
        .map(|(_, c)| c)
}

fn render_queue(f: &mut Frame, area: Rect, app: &App, wide: bool) {
    let th = &app.theme;
    let o = &app.model.overview;
    let Some(c) = focus_cluster(o) else {
        f.render_widget(block(app, "Inbound queue"), area);
        return;
    };
    let q = &c.queue;
    let title = format!("Inbound queue · {}", clip(&safe(&c.name), 20));
    let b = block(app, &title);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let now = o.incident.now.unwrap_or(app.clock);
    let drain = eta_forms(
        "drain ETA",
        &q.drain_eta,
        now,
        "drained: nothing waiting",
        "drain: ",
    );
    // The text takes what its longest line needs, the sparkline the rest
    // (at least 16 columns of it when wide).
    let text_w = if wide {
        (fit::width(&drain[0]) as u16).clamp(44, inner.width.saturating_sub(16).max(44))
    } else {
        inner.width.min(44)
    };
    let [text, spark] =
        Layout::horizontal([Constraint::Length(text_w), Constraint::Min(0)]).areas(inner);
    // From the current rates, not the sparkline: the sparkline is sampled
    // every few ticks and lags.
    let trend = match (q.depth(), q.arrival_per_min, q.delivery_per_min) {
        (Some(0), _, _) => "= empty",
        (_, Some(arrival), Some(delivery)) if delivery > arrival * 1.01 => "▼ draining",
        (_, Some(arrival), Some(delivery)) if arrival > delivery * 1.01 => "▲ growing",
        (Some(_), Some(_), Some(_)) => "= steady",
        _ => "",
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!("{} queued ", thousands_or_unknown(q.depth())),
            th.title(),
        ),
        Span::raw(trend),
    ])];
    if !q.stale.is_empty() {
        lines.push(Line::from(Span::styled(
            clip(&format!("STALE: {}", safe(&q.stale)), text.width as usize),
            th.alert(),
        )));
    }
    if !q.unknown.is_empty() {
        lines.push(Line::from(Span::styled(
            clip(
                &format!("{UNKNOWN}: {}", safe(&q.unknown)),
                text.width as usize,
            ),
            th.dim(),
        )));
    }
    if inner.height > 3 {
        let by_queue = match q.depth {
            Some(d) => format!(
                "active {} · deferred {} · hold {}",
                compact(d.active),
                compact(d.deferred),
                compact(d.hold)
            ),
            None => format!("active {UNKNOWN} · deferred {UNKNOWN} · hold {UNKNOWN}"),
        };
        let unmapped = match q.unmapped {
            Some(n) if n > 0 => format!(" · {} for no tenant", compact(n)),
            _ => String::new(),
        };
        lines.push(Line::from(clip(
            &format!("{by_queue}{unmapped}"),
            text.width as usize,
        )));
    }
    let rates = format!(
        "in {}/min · out {}/min",
        per_min(q.arrival_per_min),
        per_min(q.delivery_per_min)
    );
    // Rates that count only part of the mail say which, on a line of their
    // own when the panel has room for it besides the drain, else briefly.
    if q.rates_cover.is_empty() {
        lines.push(Line::from(rates));
    } else if lines.len() + 3 <= inner.height as usize {
        lines.push(Line::from(rates));
        lines.push(Line::from(Span::styled(
            clip(
                &format!("counting only {}", safe(&q.rates_cover)),
                text.width as usize,
            ),
            th.dim(),
        )));
    } else {
        lines.push(Line::from(clip(
            &format!("{rates} (partial)"),
            text.width as usize,
        )));
    }
    lines.push(Line::from(fit::first_fit(&drain, text.width as usize)));
    f.render_widget(Paragraph::new(lines), text);
    if spark.width > 4 {
        let w = spark.width as usize;
        let data: Vec<u64> = q
            .depth_history
            .iter()
            .rev()
            .take(w)
            .rev()
            .copied()
            .collect();
        f.render_widget(Sparkline::default().data(&data).style(th.gauge()), spark);
    }
}

fn render_reindex(f: &mut Frame, area: Rect, app: &App, wide: bool) {
    let th = &app.theme;
    let o = &app.model.overview;
    let Some(c) = focus_cluster(o) else {
        f.render_widget(block(app, "Reindex"), area);
        return;
    };
    let r = &c.reindex;
    let b = block(app, &format!("Reindex · {}", clip(&safe(&c.name), 20)));
    let inner = b.inner(area);
    f.render_widget(b, area);
    let now = o.incident.now.unwrap_or(app.clock);
    let sweep_line = c.sweep.as_ref().map(|s| {
        let rel = eta_relative(&s.eta, now)
            .map(|r| format!(" · ends {r}"))
            .unwrap_or_default();
        let projected = s
            .projected
            .map(|p| format!(" (~{} projected)", thousands(p)))
            .unwrap_or_default();
        let state = if s.state == "sweeping" {
            String::new()
        } else {
            format!(" · {}", safe(&s.state))
        };
        let shown = format!(
            "sweep {}: {} of {}{rel} · {} found{projected}{state}",
            s.pass,
            percent(s.fraction()),
            thousands(s.mailboxes),
            thousands(s.found),
        );
        Line::from(Span::styled(
            clip(&shown, inner.width as usize),
            if s.state.starts_with("paused") {
                th.alert()
            } else {
                th.dim()
            },
        ))
    });
    if r.revisions.is_empty() && r.scope == 0 {
        let text = if r.eta.reason.is_empty() {
            "not started: nothing to reindex".to_string()
        } else {
            format!("not started: {}", safe(&r.eta.reason))
        };
        let mut lines = vec![Line::from(text)];
        lines.extend(sweep_line);
        f.render_widget(Paragraph::new(lines), inner);
        return;
    }
    let [gauge, text] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    let unit = r.unit.as_str();
    let label = format!(
        "{} / {} {unit} ({})",
        thousands(r.done),
        thousands(r.scope),
        percent(r.fraction_done())
    );
    f.render_widget(
        Gauge::default()
            .ratio(r.fraction_done())
            .label(label)
            .use_unicode(true)
            .gauge_style(th.gauge()),
        gauge,
    );
    let idle = r.mailboxes_pending == 0 && r.in_progress == 0;
    let eta = match eta_relative(&r.eta, now) {
        Some(_) => fit::first_fit(&eta_forms("ETA", &r.eta, now, "", ""), text.width as usize),
        // Finished: what was done, not an estimate.
        None if idle && r.finished_at.is_some() => reindex_done(r, now),
        // Nothing waiting: the source says why, which is no "estimate".
        None if idle && !r.eta.reason.is_empty() => r.eta.reason.clone(),
        None => format!("ETA {}", eta_range(&r.eta, now)),
    };
    let mut lines = Vec::new();
    if text.height > 2 {
        lines.push(Line::from(format!(
            "{}/min · {} in progress · {} failed · {} queued",
            per_min(r.rate_per_min),
            thousands(r.in_progress),
            thousands(r.failed),
            counted(r.mailboxes_pending, "mailbox", "mailboxes"),
        )));
    }
    lines.push(Line::from(Span::styled(safe(&eta), th.title())));
    // What the ETA takes on trust (this hour's rate through hours not seen
    // yet), said under it while there is an ETA to read.
    if !r.eta_assumes.is_empty() && r.eta.p50.is_some() {
        // Narrow: what is assumed without why ("ETA assumes the current
        // rate"), rather than why cut half-way.
        let said = safe(&r.eta_assumes);
        let what = said.split(": ").next().unwrap_or_default().to_string();
        lines.push(Line::from(Span::styled(
            fit::first_fit(&[said, what], inner.width as usize),
            th.dim(),
        )));
    }
    lines.extend(sweep_line);
    if let Some(last) = r.revisions.last() {
        let history: Vec<String> = r.revisions.iter().map(|v| compact(v.scope)).collect();
        let shown = if history.len() > 4 {
            format!("…→{}", history[history.len() - 3..].join("→"))
        } else {
            history.join("→")
        };
        lines.push(Line::from(format!(
            "scope {unit}: {shown} ({})",
            counted(
                r.revisions.len().saturating_sub(1) as u64,
                "revision",
                "revisions"
            )
        )));
        let when = last.at.format("%H:%M").to_string();
        let reason = format!("{when} {}", safe(&last.reason));
        lines.push(Line::from(Span::styled(
            clip(&reason, if wide { 200 } else { inner.width as usize }),
            th.dim(),
        )));
    }
    f.render_widget(Paragraph::new(lines), text);
}

/// "done 19:41 after 1h 02m: 597 mailboxes restored, 6 failed": a finished
/// reindex says what it did.
fn reindex_done(r: &Reindex, now: DateTime<Utc>) -> String {
    let Some(done) = r.finished_at else {
        return String::new();
    };
    let took = r
        .revisions
        .first()
        .filter(|v| v.at <= done)
        .map(|v| format!(" after {}", duration(done - v.at)))
        .unwrap_or_default();
    let failed = if r.failed > 0 {
        format!(", {} failed", thousands(r.failed))
    } else {
        String::new()
    };
    format!(
        "done {}{took}: {} restored{failed}",
        clock(done, now),
        counted(r.mailboxes_restored, "mailbox", "mailboxes")
    )
}

fn sort_label(s: TenantSort, reverse: bool) -> String {
    format!("{}{}", s.as_str(), if reverse { " ↑" } else { "" })
}

fn render_tenants(f: &mut Frame, area: Rect, app: &App, wide: bool) {
    let th = app.theme;
    let now = app.model.overview.incident.now.unwrap_or(app.clock);
    let mut title = format!(
        "Tenants {} · sort {}",
        thousands(app.model.ordered_len() as u64),
        sort_label(app.sort, app.reverse)
    );
    if app.affected_only {
        title.push_str(" · affected only");
    }
    if app.filter_editing || !app.filter.is_empty() {
        title.push_str(&format!(
            " · filter /{}{}",
            safe(&app.filter),
            if app.filter_editing { "▏" } else { "" }
        ));
    }
    let b = block(app, &title);
    let inner_w = b.inner(area).width;
    let visible = b.inner(area).height.saturating_sub(1) as usize;
    let cols: &[Col] = if wide {
        &[
            Col::new("pri"),
            Col::new("tenant"),
            Col::new("domain"),
            Col::new("cl"),
            Col::right("mailboxes"),
            Col::right("affected"),
            Col::right("%"),
            Col::right("restored"),
            Col::right("queued"),
            Col::new("ETA p50–p90"),
            Col::new("slip"),
        ]
    } else {
        &[
            Col::new("pri"),
            Col::new("tenant"),
            Col::right("affected"),
            Col::right("%"),
            Col::right("queued"),
            Col::new("ETA p50–p90"),
            Col::new("slip"),
        ]
    };
    // Only the rows on screen are built: 100,000 tenants cost no more than 30.
    let selected = app.selected;
    let start = if visible == 0 {
        0
    } else {
        selected.saturating_sub(visible.saturating_sub(1))
    };
    let plain = Style::default();
    let rows: Vec<Vec<(Fit, Style)>> = app
        .model
        .ordered()
        .skip(start)
        .take(visible.max(1))
        .map(|t| {
            let affected = t.affected();
            let unchecked = t.unchecked() > 0;
            let eta = if affected == 0 && unchecked {
                Fit::Whole("not checked yet".to_string())
            } else if affected == 0 {
                Fit::Whole("–".to_string())
            } else {
                eta_fit(&t.eta, now, "no estimate")
            };
            // A slip in the alert style; the arrow says it without colour.
            let slip = (
                Fit::Whole(t.eta_slip.as_ref().map(slip_short).unwrap_or_default()),
                th.alert(),
            );
            // Healthy tenants recede rather than affected ones shouting:
            // mid-incident every row on screen is affected and its count
            // changes each tick, and a style switch around each change
            // cost about a quarter of the bytes the console sent.
            let affected_style = if affected > 0 || unchecked {
                plain
            } else {
                th.dim()
            };
            // Mailboxes not probed yet make the count a floor: "≥3", or
            // "?" when none of those checked is affected.
            let count = |n: String| match (unchecked, affected) {
                (false, _) => n,
                (true, 0) => "?".to_string(),
                (true, _) => format!("≥{n}"),
            };
            let pct = Fit::Number(count(percent(t.affected_fraction())));
            if wide {
                vec![
                    (Fit::Whole(t.priority.as_str().into()), plain),
                    (Fit::End(safe(&t.name)), plain),
                    (Fit::Middle(safe(&t.primary_domain)), plain),
                    (Fit::Whole(safe(&t.cluster_id).to_uppercase()), plain),
                    (Fit::Number(thousands(t.mailboxes)), plain),
                    (Fit::Number(count(thousands(affected))), affected_style),
                    (pct, plain),
                    (Fit::Number(thousands(t.restored())), plain),
                    (Fit::Number(compact_or_unknown(t.queued_messages)), plain),
                    (eta, plain),
                    slip,
                ]
            } else {
                vec![
                    (Fit::Whole(t.priority.as_str().into()), plain),
                    (Fit::End(safe(&t.name)), plain),
                    (Fit::Number(count(compact(affected))), affected_style),
                    (pct, plain),
                    (Fit::Number(compact_or_unknown(t.queued_messages)), plain),
                    (eta, plain),
                    slip,
                ]
            }
        })
        .collect();
    let laid = fit::lay_out(cols, rows, inner_w, 1, th.title());
    let table = Table::new(laid.rows, laid.widths)
        .header(laid.header)
        .block(b);
    render_selectable(
        f,
        area,
        table,
        &th,
        (app.model.ordered_len() > 0).then(|| selected - start),
    );
}
