//! Drawing. Everything on screen comes from the model the gateway sent;
//! every string from the gateway passes through `sanitize` (via `safe`)
//! before it reaches a cell.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, Gauge, Paragraph, Row, Sparkline, Table, TableState, Wrap,
};

use super::app::{App, Conn, TenantView, View};
use super::fit::{self, Col, Fit};
use super::keymap::{Action, Context};
use super::theme::{Theme, health_label, health_short};
use crate::domain::format::{
    UNKNOWN, clip, clock, compact, compact_or_unknown, duration, eta_cell_forms, eta_range,
    eta_relative, percent, queued_claim, slip_basis, slip_marker, slip_short, thousands,
    thousands_or_unknown,
};
use crate::domain::sanitize::sanitize;
use crate::domain::tenants::TenantSort;
use crate::domain::{Cluster, Health, Overview, Reindex, ServiceRole};
use chrono::{DateTime, Utc};

/// Smallest terminal the layout works in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// Gateway text made inert for the terminal.
fn safe(s: &str) -> String {
    sanitize(s).into_owned()
}

pub fn render(f: &mut Frame, app: &App) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small: {}x{}, warroom needs at least {MIN_WIDTH}x{MIN_HEIGHT}. Enlarge it or press q to quit.",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let wide = area.width >= 110;
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(area);
    render_header(f, header, app);
    match &app.view {
        _ if app.composer.is_some() => {
            if let Some(c) = &app.composer {
                render_composer(f, body, app, c);
            }
        }
        View::Overview => render_overview(f, body, app, wide),
        View::Tenant(tv) => render_tenant(f, body, app, tv),
        View::Lookup(lv) => render_lookup(f, body, app, lv),
        View::Timeline(tv) => render_timeline(f, body, app, tv),
        View::Trends(tv) => super::trends::render(f, body, app, tv),
    }
    render_footer(f, footer, app);
    if let Some(form) = &app.prio {
        render_prio(f, area, app, form);
    }
    if app.help {
        render_help(f, area, app);
    }
}

fn conn_spans(app: &App) -> Vec<Span<'static>> {
    let th = &app.theme;
    let age = app
        .last_update
        .map(|t| duration(app.clock.signed_duration_since(t)));
    match &app.conn {
        Conn::Live => match app.quiet() {
            Some(quiet) => vec![Span::styled(
                format!("◌ LIVE, no data for {}", duration(quiet)),
                th.alert(),
            )],
            None => vec![Span::styled("● LIVE".to_string(), th.ok())],
        },
        Conn::Connecting { attempt } => vec![Span::styled(
            format!("◌ connecting (try {attempt})"),
            th.alert(),
        )],
        Conn::Down { retry_in, .. } => {
            let mut s = format!("✖ DISCONNECTED, retrying in {:.1}s", retry_in.as_secs_f64());
            if let Some(age) = age {
                s.push_str(&format!(", data {age} old"));
            }
            vec![Span::styled(s, th.alert())]
        }
    }
}

fn render_header(f: &mut Frame, area: Rect, app: &App) {
    let th = &app.theme;
    let o = &app.model.overview;
    let wide = area.width >= 110;
    // The connection state and the clock are pinned right, so they are never
    // the part that gets cut off.
    let mut right: Vec<Span> = Vec::new();
    if let Some(left) = app.next_update_due() {
        if left <= chrono::Duration::zero() {
            right.push(Span::styled(
                format!(" ⚠ UPDATE OVERDUE {} ", duration(-left)),
                th.badge(),
            ));
        } else {
            right.push(Span::raw(format!(" next update in {} ·", duration(left))));
        }
    }
    right.push(Span::raw(format!(
        " {} ",
        app.source_now().format(app.clock_format())
    )));
    right.extend(conn_spans(app));
    right.push(Span::raw(" "));
    if let Some(me) = app.me.as_ref().filter(|_| wide) {
        let role = if app.read_only {
            "read-only".to_string()
        } else {
            me.role.as_str().to_string()
        };
        right.insert(
            0,
            Span::styled(format!(" {} ({role}) ·", safe(&me.name)), th.dim()),
        );
    }
    // The left keeps room for "WARROOM  SIMULATED".
    let right_w =
        (right.iter().map(|s| s.width()).sum::<usize>() as u16).min(area.width.saturating_sub(22));
    let [l1_area, r1_area] = Layout::horizontal([Constraint::Min(10), Constraint::Length(right_w)])
        .areas(Rect { height: 1, ..area });
    let l2_area = Rect {
        y: area.y + 1,
        height: 1,
        ..area
    };

    let mut l1: Vec<Span> = vec![Span::styled(" WARROOM ", th.title())];
    if o.simulated() || (app.model.version == 0 && app.simulated_hint) {
        l1.push(Span::styled(" SIMULATED ", th.badge()));
        l1.push(Span::raw(" "));
    }
    let inc = &o.incident;
    let mut tail = Vec::new();
    if app.model.version > 0 {
        tail.push(Span::raw(" · "));
        tail.push(Span::styled(inc.state.as_str().to_uppercase(), th.alert()));
    }
    if let (Some(start), Some(now)) = (inc.started_at, inc.now) {
        tail.push(Span::raw(format!(" · T+{}", duration(now - start))));
    }
    let title = if inc.title.is_empty() {
        "waiting for the gateway…".to_string()
    } else {
        safe(&inc.title)
    };
    let used: usize = l1.iter().chain(tail.iter()).map(|s| s.width()).sum();
    let room = (l1_area.width as usize).saturating_sub(used + 1).max(8);
    l1.push(Span::styled(clip(&title, room), th.title()));
    l1.extend(tail);
    f.render_widget(Paragraph::new(Line::from(l1)), l1_area);
    f.render_widget(Paragraph::new(Line::from(right)), r1_area);

    let t = &o.totals;
    let mut l2: Vec<Span> = vec![Span::raw(" ")];
    if let Conn::Down { error, .. } = &app.conn {
        let what = if app.model.version > 0 {
            "showing the last data received"
        } else {
            "no data yet"
        };
        l2.push(Span::styled(
            format!("✖ {} — {what}", safe(error)),
            th.alert(),
        ));
    } else if app.model.version > 0 {
        // No mailbox listed (a platform without Dovecot, or before its
        // first answer): "0 affected" would be a claim nothing measured.
        let affected = if t.mailboxes == 0 {
            "no mailboxes listed".to_string()
        } else {
            format!("{} mailboxes affected", thousands(t.affected_mailboxes))
        };
        l2.push(Span::styled(affected, th.alert()));
        if wide {
            // Mail for no tenant is in the cluster's queue, not in the
            // tenants' total: say so, or the two figures disagree silently.
            let unmapped = match o.unmapped_messages() {
                Some(n) if n > 0 => format!(" (+{} for no tenant)", thousands(n)),
                _ => String::new(),
            };
            l2.push(Span::raw(format!(
                " in {} of {} tenants · {} restored · {}{unmapped}",
                thousands(t.affected_tenants),
                thousands(t.tenants),
                thousands(t.restored_mailboxes),
                queued_claim(t.queued_messages, o.lost_messages()),
            )));
        } else {
            l2.push(Span::raw(format!(
                " · {} tenants · {} restored · {} queued",
                thousands(t.affected_tenants),
                compact(t.restored_mailboxes),
                compact_or_unknown(t.queued_messages),
            )));
        }
        if let Some(now) = inc.now {
            let speed = if inc.speed > 1.0 {
                format!(" ×{:.0}", inc.speed)
            } else {
                String::new()
            };
            let clock = if wide {
                let which = if o.simulated() { "sim" } else { "source clock" };
                format!(" · {which} {}{speed}", now.format("%b %d %H:%M"))
            } else {
                format!(" · {}", now.format("%b %d %H:%M"))
            };
            l2.push(Span::styled(clock, th.dim()));
        }
    } else {
        l2.push(Span::styled(
            format!("gateway {}", safe(&app.url)),
            th.dim(),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(l2)), l2_area);
}

fn stale_title(app: &App, title: &str) -> String {
    if matches!(app.conn, Conn::Down { .. }) {
        format!(" {title} (STALE) ")
    } else {
        format!(" {title} ")
    }
}

fn render_overview(f: &mut Frame, area: Rect, app: &App, wide: bool) {
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

fn block(app: &App, title: &str) -> Block<'static> {
    Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(stale_title(app, title), app.theme.title()))
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
    let rate = |r: Option<f64>| compact_or_unknown(r.map(|r| r.max(0.0) as u64));
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
    lines.extend([Line::from(format!(
        "in {}/min · out {}/min",
        rate(q.arrival_per_min),
        rate(q.delivery_per_min)
    ))]);
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
            "{}/min · {} in progress · {} failed · {} mailboxes queued",
            compact_or_unknown(r.rate_per_min.map(|r| r.max(0.0) as u64)),
            thousands(r.in_progress),
            thousands(r.failed),
            thousands(r.mailboxes_pending),
        )));
    }
    lines.push(Line::from(Span::styled(safe(&eta), th.title())));
    lines.extend(sweep_line);
    if let Some(last) = r.revisions.last() {
        let history: Vec<String> = r.revisions.iter().map(|v| compact(v.scope)).collect();
        let shown = if history.len() > 4 {
            format!("…→{}", history[history.len() - 3..].join("→"))
        } else {
            history.join("→")
        };
        lines.push(Line::from(format!(
            "scope {unit}: {shown} ({} revisions)",
            r.revisions.len().saturating_sub(1)
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
        "done {}{took}: {} mailboxes restored{failed}",
        clock(done, now),
        thousands(r.mailboxes_restored)
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

/// A mailbox state, with a shorter word for a narrow column.
fn state_fit(s: crate::domain::MailboxState) -> Fit {
    use crate::domain::MailboxState as S;
    let short = match s {
        S::LockedOut => "locked",
        S::ReindexPending => "pending",
        S::Reindexing => "indexing",
        other => other.as_str(),
    };
    if short == s.as_str() {
        Fit::Whole(short.into())
    } else {
        Fit::Choices(vec![s.as_str().into(), short.into()])
    }
}

/// An ETA on a line of its own, longest first: "{what} Oct 08 04:25–Oct 09
/// 01:55 UTC (in 5h 45m–1d 03h)", then without the date of the p50's
/// day-count form, then without the relative part, then the relative part
/// alone: what fits is shown, a p90 is never cut. `done` when there is
/// nothing to estimate, `why` before the source's reason when there is no
/// estimate.
fn eta_forms(
    what: &str,
    eta: &crate::domain::forecast::EtaRange,
    now: DateTime<Utc>,
    done: &str,
    why: &str,
) -> Vec<String> {
    match eta_relative(eta, now) {
        Some(rel) => {
            let range = eta_range(eta, now);
            let mut forms = vec![
                safe(&format!("{what} {range} ({rel})")),
                safe(&format!("{what} {range}")),
            ];
            forms.extend(
                eta_cell_forms(eta, now)
                    .into_iter()
                    .map(|f| format!("{what} {f} UTC")),
            );
            forms.push(format!("{what} {rel}"));
            // The promise alone, in the fewest cells: "ETA ≤01:55+2d".
            if let Some(p90) = eta_cell_forms(eta, now)
                .last()
                .and_then(|f| f.rsplit('–').next().map(str::to_string))
            {
                let short = what.split(' ').find(|w| !w.is_empty()).unwrap_or(what);
                forms.push(format!("{short} ≤{p90}"));
            }
            forms
        }
        None if eta.reason.is_empty() => vec![done.to_string()],
        None => vec![safe(&format!("{why}{}", eta_range(eta, now)))],
    }
}

/// An ETA in a table cell: both ends, the date dropped before a p90 is,
/// or what the source says instead (`none` when it says nothing).
fn eta_fit(eta: &crate::domain::forecast::EtaRange, now: DateTime<Utc>, none: &str) -> Fit {
    let forms = eta_cell_forms(eta, now);
    if !forms.is_empty() {
        Fit::Choices(forms)
    } else if eta.is_known() {
        // Due: the forecast says it should be done by now.
        Fit::Whole(eta_range(eta, now))
    } else if eta.reason.is_empty() {
        Fit::Whole(none.to_string())
    } else {
        Fit::End(safe(&eta.reason))
    }
}

fn render_lookup(f: &mut Frame, area: Rect, app: &App, lv: &super::app::LookupView) {
    let th = &app.theme;
    let now = app.model.overview.incident.now.unwrap_or(app.clock);
    let [input, list, detail] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(3),
        Constraint::Length(7),
    ])
    .areas(area);
    let found = &lv.found;
    let status = if lv.loading {
        " searching…".to_string()
    } else {
        format!(" {}", found.count())
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![Span::raw(safe(&lv.query)), Span::raw("▏")])).block(
            Block::default().borders(Borders::ALL).title(Span::styled(
                format!(" Lookup: mailbox, domain or tenant ·{status} "),
                th.title(),
            )),
        ),
        input,
    );
    // The best match only a misspelling: ask, rather than answer as if
    // it were what was typed.
    let b = match found.did_you_mean().filter(|_| lv.error.is_none()) {
        Some(meant) => Block::default().borders(Borders::ALL).title(Span::styled(
            format!(" no exact match: did you mean {}? ", safe(&meant)),
            th.alert(),
        )),
        None => Block::default().borders(Borders::ALL),
    };
    if let Some(e) = &lv.error {
        let inner = b.inner(list);
        f.render_widget(b, list);
        f.render_widget(
            Paragraph::new(Span::styled(format!("✖ {}", safe(e)), th.alert())),
            inner,
        );
    } else {
        let inner = b.inner(list);
        let visible = inner.height as usize;
        let start = lv.selected.saturating_sub(visible.saturating_sub(1));
        let plain = Style::default();
        let rows: Vec<Vec<(Fit, Style)>> = found
            .matches
            .iter()
            .skip(start)
            .take(visible.max(1))
            .map(|m| {
                // A misspelling of the query, marked on its row.
                let mark = if m.is_approximate() { "≈ " } else { "" };
                let what = match (&m.address, &m.domain, &m.tenant_name) {
                    (Some(a), _, _) => Fit::Address(format!("{mark}{a}")),
                    (None, Some(d), _) => Fit::Middle(format!("{mark}{d}")),
                    (None, None, Some(n)) => Fit::End(format!("{mark}{n}")),
                    _ => Fit::Whole(mark.to_string()),
                };
                let affected = m
                    .affected_mailboxes
                    .map(|a| format!("{} affected", thousands(a)))
                    .unwrap_or_default();
                vec![
                    (Fit::Whole(m.kind.to_string()), plain),
                    (what, plain),
                    (
                        match m.state.as_deref() {
                            Some(st) => crate::domain::MailboxState::parse(st)
                                .map_or_else(|| Fit::Whole(st.to_string()), state_fit),
                            None => Fit::Whole(String::new()),
                        },
                        plain,
                    ),
                    (Fit::Whole(m.tenant_id.clone()), plain),
                    (Fit::Whole(affected), plain),
                ]
            })
            .collect();
        let cols = [
            Col::new(""),
            Col::new(""),
            Col::new(""),
            Col::new(""),
            Col::new(""),
        ];
        let laid = fit::lay_out(&cols, rows, inner.width, 1, th.title());
        let table = Table::new(laid.rows, laid.widths).block(b);
        render_selectable(
            f,
            list,
            table,
            th,
            (!found.matches.is_empty()).then(|| lv.selected - start),
        );
    }
    let mut lines: Vec<Line> = Vec::new();
    if let Some(m) = found.matches.get(lv.selected) {
        let next = app.model.board.promised_update();
        let (detail_lines, say) = super::lookup::describe_match(m, now, next);
        lines.extend(detail_lines.into_iter().map(Line::from));
        lines.push(Line::from(Span::styled(
            format!("say: \"{say}\""),
            th.title(),
        )));
    } else if lv.query.trim().is_empty() {
        lines.push(Line::from(
            "Type an address, a domain or a tenant name; matches update as you type.",
        ));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" Answer ")),
        detail,
    );
}

fn render_tenant(f: &mut Frame, area: Rect, app: &App, tv: &TenantView) {
    let th = &app.theme;
    let now = app.model.overview.incident.now.unwrap_or(app.clock);
    let tenant = app.model.tenant(&tv.tenant_id);
    let name = tenant.map_or_else(|| safe(&tv.tenant_id), |t| safe(&t.name));
    let decided = tenant.is_some_and(|t| t.priority_set.is_some());
    let slipped = tenant.is_some_and(|t| t.eta_slip.is_some());
    let [summary, list] = Layout::vertical([
        Constraint::Length(4 + u16::from(decided) + u16::from(slipped)),
        Constraint::Min(3),
    ])
    .areas(area);
    let mut lines = vec![Line::from(vec![
        Span::styled(format!(" {name}"), th.title()),
        Span::raw(format!(" ({})", safe(&tv.tenant_id))),
    ])];
    let room = summary.width as usize;
    if let Some(t) = tenant {
        // Shorter words before cut figures.
        // Mailboxes the sweep has not probed are said, not counted as fine.
        let unchecked = match t.unchecked() {
            0 => String::new(),
            n => format!(" · {} not checked yet", thousands(n)),
        };
        let counts = [
            format!(
                " {} of {} mailboxes affected ({}){unchecked} · {} restored · {} · {}",
                thousands(t.affected()),
                thousands(t.mailboxes),
                percent(t.affected_fraction()),
                thousands(t.restored()),
                queued_claim(t.queued_messages, app.model.overview.lost_messages()),
                t.priority.as_str(),
            ),
            format!(
                " {} of {} affected ({}){unchecked} · {} restored · {} queued · {}",
                thousands(t.affected()),
                thousands(t.mailboxes),
                percent(t.affected_fraction()),
                thousands(t.restored()),
                compact_or_unknown(t.queued_messages),
                t.priority.as_str(),
            ),
        ];
        lines.push(Line::from(fit::first_fit(&counts, room)));
        if let Some(d) = &t.priority_set {
            lines.push(Line::from(Span::styled(
                fit::end(
                    &format!(" priority {}", safe(&super::app::decision_text(d))),
                    room,
                ),
                th.dim(),
            )));
        }

        let etas = if t.affected() == 0 && t.unchecked() > 0 {
            vec![" none affected among those checked so far".to_string()]
        } else if t.affected() == 0 {
            vec![" nothing left to restore".to_string()]
        } else {
            eta_forms(" ETA", &t.eta, now, " ETA no estimate", " ETA ")
        };
        let ranks = if t.reindex_rank > 0 {
            vec![
                format!(
                    " · its last mailbox is {} in the reindex order",
                    thousands(t.reindex_rank)
                ),
                format!(" · last mailbox #{} in order", thousands(t.reindex_rank)),
                String::new(),
            ]
        } else {
            vec![String::new()]
        };
        // The ETA whole before the rank; the rank before the relative part.
        let (eta, rank) = etas
            .iter()
            .flat_map(|e| ranks.iter().map(move |r| (e, r)))
            .find(|(e, r)| fit::width(e) + fit::width(r) <= room)
            .map_or_else(
                || (fit::first_fit(&etas, room), String::new()),
                |(e, r)| (e.clone(), r.clone()),
            );
        lines.push(Line::from(vec![
            Span::styled(eta, th.title()),
            Span::raw(rank),
        ]));
        if let Some(slip) = &t.eta_slip {
            lines.push(Line::from(Span::styled(
                format!(" {}: {}", slip_marker(slip, now), slip_basis(slip, now)),
                th.alert(),
            )));
        }
    }
    f.render_widget(Paragraph::new(lines), summary);

    let pages = (tv.total as usize)
        .div_ceil(super::app::MAILBOX_PAGE as usize)
        .max(1);
    let title = mailboxes_title(
        tv,
        pages,
        app.filter_editing,
        list.width.saturating_sub(2) as usize,
    );
    let b = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, th.title()));
    if let Some(e) = &tv.error {
        let inner = b.inner(list);
        f.render_widget(b, list);
        f.render_widget(
            Paragraph::new(Span::styled(format!("✖ {}", safe(e)), th.alert()))
                .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    let wide = list.width >= 110;
    let inner = b.inner(list);
    let visible = inner.height.saturating_sub(1) as usize;
    let start = tv.selected.saturating_sub(visible.saturating_sub(1));
    let shown = tv.visible();
    let plain = Style::default();
    let rows: Vec<Vec<(Fit, Style)>> = shown
        .iter()
        .skip(start)
        .take(visible.max(1))
        .map(|m| {
            let pos = if m.reindex_position > 0 {
                thousands(m.reindex_position)
            } else {
                "–".into()
            };
            let state = match m.state {
                Some(s) => (state_fit(s), th.state(s)),
                None => (Fit::Whole("?".into()), plain),
            };
            let mut cells = vec![
                (Fit::Address(safe(&m.address)), plain),
                state,
                (eta_fit(&m.eta, now, "–"), plain),
                (Fit::Number(pos), plain),
                (Fit::Number(thousands_or_unknown(m.queued_messages)), plain),
            ];
            if wide {
                cells.push((Fit::Middle(safe(&m.volume)), plain));
                cells.push((Fit::End(safe(&m.last_error)), plain));
            }
            cells
        })
        .collect();
    let cols: &[Col] = if wide {
        &[
            Col::new("address"),
            Col::new("state"),
            Col::new("ETA p50–p90"),
            Col::right("pos"),
            Col::right("queued"),
            Col::new("volume"),
            Col::grow("last error"),
        ]
    } else {
        &[
            Col::new("address"),
            Col::new("state"),
            Col::new("ETA p50–p90"),
            Col::right("pos"),
            Col::right("queued"),
        ]
    };
    let laid = fit::lay_out(cols, rows, inner.width, 1, th.title());
    let table = Table::new(laid.rows, laid.widths)
        .header(laid.header)
        .block(b);
    render_selectable(
        f,
        list,
        table,
        th,
        (!shown.is_empty()).then(|| tv.selected.min(shown.len() - 1) - start.min(tv.selected)),
    );
}

/// The drill-down's title: how many mailboxes and which set they are
/// (the state filter says it: "not ok" counts the restored too, which the
/// export of the affected does not), the order, and the page, in `room`
/// cells. Words give way before the page number does.
fn mailboxes_title(tv: &TenantView, pages: usize, editing: bool, room: usize) -> String {
    use super::app::StateFilter;
    let n = thousands(tv.total);
    let (long, short) = match tv.filter {
        StateFilter::NotOk => (
            format!("{n} not ok (affected now or restored)"),
            format!("{n} not ok"),
        ),
        StateFilter::Affected => (format!("{n} affected now"), format!("{n} affected")),
        StateFilter::Only(s) => (format!("{n} {}", s.as_str()), format!("{n} {}", s.as_str())),
    };
    let order = if tv.sort_by_eta {
        "reindex order"
    } else {
        "by address"
    };
    let page = format!("page {}/{pages}", tv.page + 1);
    let mut extra = String::new();
    if tv.loading {
        extra.push_str(" · loading…");
    }
    if !tv.filter_text.is_empty() || editing {
        extra.push_str(&format!(
            " · /{}{}",
            safe(&tv.filter_text),
            if editing { "▏" } else { "" }
        ));
    }
    let forms = [
        format!(" Mailboxes · {long} · {order} · {page}{extra} "),
        format!(" Mailboxes · {short} · {order} · {page}{extra} "),
        format!(" Mailboxes · {short} · {page}{extra} "),
        format!(" {short} · {page}{extra} "),
        format!(" {page}{extra} "),
    ];
    forms
        .iter()
        .find(|t| fit::width(t) <= room)
        .unwrap_or(&forms[4])
        .clone()
}

/// A table whose `row` (counted from the first row drawn) is marked as
/// selected.
fn render_selectable(f: &mut Frame, area: Rect, table: Table<'_>, th: &Theme, row: Option<usize>) {
    let table = table
        .row_highlight_style(th.selected())
        .highlight_symbol("▶");
    let mut state = TableState::default();
    state.select(row);
    f.render_stateful_widget(table, area, &mut state);
}

/// Footer hints, generated from the active keymap so remapped keys show.
pub fn footer_hints(app: &App) -> String {
    if let Some(input) = &app.palette {
        return format!(":{input}▏  (tab completes, enter runs, esc cancels)");
    }
    if app.filter_editing {
        return "type to filter · enter keep · esc clear".into();
    }
    if let Some(c) = &app.composer {
        use super::composer::Stage;
        return match c.stage {
            Stage::Editing => {
                "tab/shift-tab field · ←→ state · enter: newline in the body · ctrl-p preview · esc close (draft kept)"
            }
            Stage::Previewing => "asking the gateway for a preview… (esc: back)",
            Stage::Previewed => "↑↓ scroll · enter: publish… · esc: back to the form",
            Stage::Confirm => "y: publish now · any other key: back to the preview",
            Stage::Publishing => "publishing…",
        }
        .into();
    }
    if let Some(form) = &app.prio {
        return if form.confirming {
            "enter or y: set it · any other key: back to the form".into()
        } else {
            "←→ priority · ↑↓ rank · type the reason · enter review · esc cancel".into()
        };
    }
    if matches!(app.view, View::Lookup(_)) {
        return "type to search · ↑↓ choose · enter open tenant · ctrl-y copy answer · esc back"
            .into();
    }
    if let View::Trends(tv) = &app.view {
        let km = &app.keymap;
        return [
            km.short(Context::Overview, Action::Back)
                .map(|k| format!("{k} back")),
            km.short(Context::Overview, Action::Down)
                .map(|k| format!("{k} next tenant")),
            km.short(Context::Overview, Action::Up)
                .map(|k| format!("{k} previous")),
            km.short(Context::Overview, Action::Top)
                .filter(|_| !tv.tenant_id.is_empty())
                .map(|k| format!("{k} every tenant")),
            km.short(Context::Global, Action::Quit)
                .map(|k| format!("{k} quit")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
    }
    if matches!(app.view, View::Timeline(_)) {
        let km = &app.keymap;
        return [
            km.short(Context::Overview, Action::Back)
                .map(|k| format!("{k} back")),
            km.short(Context::Overview, Action::Open)
                .map(|k| format!("{k} details")),
            km.short(Context::Global, Action::Timeline)
                .map(|k| format!("{k} reload")),
            km.short(Context::Global, Action::Quit)
                .map(|k| format!("{k} quit")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
    }
    let ctx = app.context();
    let km = &app.keymap;
    let wanted: &[(Context, Action, &str)] = match ctx {
        Context::Overview => &[
            (Context::Global, Action::Quit, "quit"),
            (Context::Global, Action::Help, "help"),
            (Context::Global, Action::Palette, "cmd"),
            (Context::Overview, Action::Open, "open"),
            (Context::Overview, Action::Prioritize, "prio"),
            (Context::Overview, Action::SortNext, "sort"),
            (Context::Overview, Action::Filter, "filter"),
            (Context::Overview, Action::AffectedOnly, "affected"),
            (Context::Overview, Action::SortReverse, "reverse"),
        ],
        _ => &[
            (Context::Tenant, Action::Back, "back"),
            (Context::Tenant, Action::NextPage, "next page"),
            (Context::Tenant, Action::PrevPage, "prev"),
            (Context::Tenant, Action::StateFilter, "states"),
            (Context::Tenant, Action::ToggleOrder, "order"),
            (Context::Tenant, Action::Filter, "filter"),
            (Context::Tenant, Action::Export, "export"),
            (Context::Tenant, Action::Prioritize, "prio"),
            (Context::Global, Action::Help, "help"),
            (Context::Global, Action::Quit, "quit"),
        ],
    };
    wanted
        .iter()
        .filter(|(_, a, _)| !hidden(app, *a))
        .filter_map(|(c, a, what)| km.short(*c, *a).map(|k| format!("{k} {what}")))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn render_footer(f: &mut Frame, area: Rect, app: &App) {
    let line = match &app.status {
        Some((text, true)) => Span::styled(
            clip(&format!("✖ {}", safe(text)), area.width as usize),
            app.theme.alert(),
        ),
        Some((text, false)) => Span::raw(clip(&safe(text), area.width as usize)),
        None => Span::styled(
            clip(&footer_hints(app), area.width as usize),
            app.theme.dim(),
        ),
    };
    f.render_widget(Paragraph::new(line), area);
}

/// Actions this console's role cannot perform are not offered (like k9s
/// --readonly): the gateway would refuse them anyway.
fn hidden(app: &App, a: Action) -> bool {
    match a {
        Action::Prioritize => !app.role().can_prioritize(),
        Action::Compose => !app.role().can_publish(),
        _ => false,
    }
}

/// The keys that work here, from the active keymap: global ones and the
/// current view's, each description wrapped under its own column in
/// `width` cells so none is cut.
fn help_lines(app: &App, here: Context, width: usize) -> Vec<Line<'static>> {
    let (km, th) = (&app.keymap, &app.theme);
    let sections: Vec<(Context, Vec<(String, &'static str)>)> = [Context::Global, here]
        .into_iter()
        .map(|ctx| {
            let keys = ctx
                .actions()
                .iter()
                .filter(|a| !hidden(app, **a))
                .map(|a| (safe(&km.label(ctx, *a)), a.describe()))
                .collect();
            (ctx, keys)
        })
        .collect();
    let key_w = sections
        .iter()
        .flat_map(|(_, k)| k.iter().map(|(label, _)| fit::width(label)))
        .max()
        .unwrap_or(0)
        .min(20);
    let text_w = width.saturating_sub(key_w + 2).max(10);
    let mut lines = Vec::new();
    for (ctx, keys) in sections {
        lines.push(Line::from(Span::styled(
            format!("{} keys", ctx.name()),
            th.title()
                .add_modifier(ratatui::style::Modifier::UNDERLINED),
        )));
        for (label, what) in keys {
            for (i, part) in fit::wrap(what, text_w).into_iter().enumerate() {
                let key = if i == 0 {
                    fit::middle(&label, key_w)
                } else {
                    String::new()
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("{key:>key_w$}  "), th.title()),
                    Span::raw(part),
                ]));
            }
        }
    }
    lines
}

/// The widest the help wants: keys and descriptions on one line each.
fn help_width(app: &App, here: Context) -> usize {
    help_lines(app, here, usize::MAX / 2)
        .iter()
        .map(|l| l.width())
        .max()
        .unwrap_or(0)
}

/// The help over the screen: as wide as its lines want (up to the
/// terminal), as tall as the terminal; ↑↓ scroll it when it does not fit.
fn render_help(f: &mut Frame, area: Rect, app: &App) {
    let th = &app.theme;
    let here = app.context();
    let w = (help_width(app, here) as u16 + 2).min(area.width);
    let lines = help_lines(app, here, w.saturating_sub(2) as usize);
    let h = (lines.len() as u16 + 2).min(area.height);
    let inner_h = h.saturating_sub(2) as usize;
    let max_scroll = lines.len().saturating_sub(inner_h);
    app.help_max_scroll.set(max_scroll as u16);
    let scroll = (app.help_scroll as usize).min(max_scroll);
    let title = if max_scroll > 0 {
        format!(
            " Keys ({}) {}–{} of {} · ↑↓ scroll, other keys close ",
            safe(app.keymap.name()),
            scroll + 1,
            scroll + inner_h,
            lines.len()
        )
    } else {
        format!(
            " Keys ({} keymap) · any key closes ",
            safe(app.keymap.name())
        )
    };
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).scroll((scroll as u16, 0)).block(
            Block::default().borders(Borders::ALL).title(Span::styled(
                fit::end(&title, w.saturating_sub(2) as usize),
                th.title(),
            )),
        ),
        r,
    );
}

fn render_timeline(f: &mut Frame, area: Rect, app: &App, tv: &super::app::TimelineView) {
    let th = &app.theme;
    // Where status updates went: the page, and each channel's deliveries.
    let board = &app.model.board;
    let [top, area] = Layout::vertical([Constraint::Length(2), Constraint::Min(3)]).areas(area);
    let mut lines = vec![Line::from(vec![
        Span::styled(" status page ", th.title()),
        Span::raw(if board.page_url.is_empty() {
            "none".to_string()
        } else {
            safe(&board.page_url)
        }),
        Span::raw(match &board.latest {
            Some(u) => format!(
                " · latest {} {} at {} UTC by {}",
                safe(&u.id),
                u.state.as_str(),
                u.published_at.format("%H:%M"),
                safe(&u.published_by)
            ),
            None => " · nothing published yet".into(),
        }),
    ])];
    let mut spans = vec![Span::styled(" deliveries ", th.title())];
    for c in &board.channels {
        let style = if c.failed > 0 {
            th.alert()
        } else if c.pending > 0 {
            th.badge()
        } else {
            th.ok()
        };
        let mut text = format!("{} {} sent", safe(&c.channel), thousands(c.sent));
        if c.pending > 0 {
            text.push_str(&format!(", {} pending", thousands(c.pending)));
        }
        if c.failed > 0 {
            text.push_str(&format!(", {} failed", thousands(c.failed)));
        }
        if (c.pending > 0 || c.failed > 0) && !c.last_problem.is_empty() {
            text.push_str(&format!(" ({})", clip(&safe(&c.last_problem), 40)));
        }
        spans.push(Span::styled(text, style));
        spans.push(Span::raw("  "));
    }
    if board.channels.is_empty() {
        spans.push(Span::raw("none yet"));
    }
    lines.push(Line::from(spans));
    f.render_widget(Paragraph::new(lines), top);
    let status = if tv.loading && tv.events.is_empty() {
        " loading…".to_string()
    } else {
        let n = tv.events.len() as u64;
        format!(
            " {} {}",
            thousands(n),
            if n == 1 { "event" } else { "events" }
        )
    };
    let b = block(
        app,
        &format!("Timeline: priority changes and publishes, UTC ·{status}"),
    );
    let inner = b.inner(area);
    if let Some(e) = &tv.error {
        f.render_widget(b, area);
        f.render_widget(
            Paragraph::new(Span::styled(format!("✖ {}", safe(e)), th.alert())),
            inner,
        );
        return;
    }
    if tv.events.is_empty() && !tv.loading {
        f.render_widget(b, area);
        f.render_widget(
            Paragraph::new(
                "Nothing on record yet: priority changes and status updates appear here.",
            ),
            inner,
        );
        return;
    }
    let visible = inner.height.saturating_sub(1).max(1) as usize;
    // Newest at the bottom, like a log; the selection starts there.
    let selected = tv.selected.min(tv.events.len().saturating_sub(1));
    let start = selected.saturating_sub(visible.saturating_sub(1));
    let plain = Style::default();
    let rows: Vec<Vec<(Fit, Style)>> = tv
        .events
        .iter()
        .skip(start)
        .take(visible)
        .map(|e| {
            vec![
                (
                    Fit::Choices(
                        ["%m-%d %H:%M:%S", "%H:%M:%S", "%H:%M"]
                            .map(|f| e.at.format(f).to_string())
                            .to_vec(),
                    ),
                    plain,
                ),
                (Fit::End(safe(&e.actor)), plain),
                (
                    Fit::Choices(vec![
                        safe(&e.action),
                        safe(e.action.strip_prefix("set_").unwrap_or(&e.action)),
                    ]),
                    plain,
                ),
                (Fit::End(event_target(app, e)), plain),
                (Fit::End(safe(&e.detail)), plain),
                (Fit::End(safe(&e.reason)), plain),
            ]
        })
        .collect();
    let cols = [
        Col::new("time"),
        Col::new("who"),
        Col::new("what"),
        Col::new("tenant"),
        Col::new("change"),
        Col::grow("reason"),
    ];
    let laid = fit::lay_out(&cols, rows, inner.width, 1, th.dim());
    let table = Table::new(laid.rows, laid.widths)
        .header(laid.header)
        .block(b);
    render_selectable(f, area, table, th, Some(selected - start));
    if tv.detail
        && let Some(e) = tv.events.get(selected)
    {
        render_event(f, area, app, e);
    }
}

/// "Acme Title & Escrow (t00001)": an event's target, named when it is a
/// tenant this console knows.
fn event_target(app: &App, e: &crate::domain::priority::AuditEvent) -> String {
    app.model.tenant(&e.target).map_or_else(
        || safe(&e.target),
        |t| format!("{} ({})", safe(&t.name), safe(&e.target)),
    )
}

/// One timeline event in full, over the list: nothing cut.
fn render_event(f: &mut Frame, area: Rect, app: &App, e: &crate::domain::priority::AuditEvent) {
    let th = &app.theme;
    let w = area.width.saturating_sub(4).min(100);
    // Each value wrapped under its own column, the name to its left.
    let room = (w as usize).saturating_sub(2 + 8);
    let mut lines: Vec<Line> = Vec::new();
    for (name, value) in [
        ("when", e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        ("who", safe(&e.actor)),
        ("what", safe(&e.action)),
        ("target", event_target(app, e)),
        ("change", safe(&e.detail)),
        ("reason", safe(&e.reason)),
    ] {
        for (i, l) in fit::wrap(&value, room).into_iter().enumerate() {
            let label = if i == 0 { name } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("{label:<8}"), th.title()),
                Span::raw(l),
            ]));
        }
    }
    let h = (lines.len() as u16 + 2).min(area.height);
    let para = Paragraph::new(lines);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    f.render_widget(
        para.block(Block::default().borders(Borders::ALL).title(Span::styled(
            format!(" Event {} · esc closes ", e.id),
            th.title(),
        ))),
        r,
    );
}

fn render_prio(f: &mut Frame, area: Rect, app: &App, form: &super::app::PrioForm) {
    let th = &app.theme;
    let w = 76.min(area.width.saturating_sub(2));
    let inner_w = w.saturating_sub(2) as usize;
    let mut lines = vec![
        Line::from(vec![
            Span::styled(safe(&form.tenant_name), th.title()),
            Span::raw(format!(" ({})", safe(&form.tenant_id))),
        ]),
        Line::from(format!(
            "now: {}",
            form.current.as_ref().map_or_else(
                || format!("{} (default; nobody has set it)", form.default.as_str()),
                |d| safe(&super::app::decision_text(d))
            )
        )),
        Line::from(""),
    ];
    let mut choice = vec![Span::raw("priority: ")];
    for p in crate::domain::Priority::ALL {
        let style = if p == form.priority {
            th.selected()
        } else {
            th.dim()
        };
        choice.push(Span::styled(format!(" {} ", p.as_str()), style));
        choice.push(Span::raw(" "));
    }
    choice.push(Span::styled("(←→; P0 goes first)", th.dim()));
    lines.push(Line::from(choice));
    lines.push(Line::from(vec![
        Span::raw("rank:     "),
        Span::raw(match form.rank {
            0 => "fair order among its priority".to_string(),
            r => format!("#{r} within {}", form.priority.as_str()),
        }),
        Span::styled("  (↑↓; #1 goes first)", th.dim()),
    ]));
    let count = form.reason.chars().count();
    let reason = format!("reason: {}▏", safe(&form.reason));
    // Show the end of a long reason: that is where the typing happens.
    let shown: String = {
        let chars: Vec<char> = reason.chars().collect();
        let keep = inner_w.saturating_sub(1).max(10);
        if chars.len() > keep {
            std::iter::once('…')
                .chain(chars[chars.len() - keep + 1..].iter().copied())
                .collect()
        } else {
            reason
        }
    };
    lines.push(Line::from(shown));
    lines.push(Line::from(Span::styled(
        format!(
            "{count}/{} characters",
            crate::domain::priority::MAX_REASON_CHARS
        ),
        if count > crate::domain::priority::MAX_REASON_CHARS {
            th.alert()
        } else {
            th.dim()
        },
    )));
    lines.push(Line::from(""));
    if let Some(e) = &form.error {
        lines.push(Line::from(Span::styled(
            format!("✖ {}", safe(e)),
            th.alert(),
        )));
    }
    if form.sending {
        lines.push(Line::from("sending…"));
    } else if form.confirming {
        lines.push(Line::from(Span::styled(
            format!(
                "Set {} from {} to {}? enter/y: yes · other key: no",
                safe(&form.tenant_name),
                form.current_label(),
                crate::domain::priority::label(form.priority, form.rank)
            ),
            th.alert(),
        )));
    } else {
        lines.push(Line::from(Span::styled(
            "enter: review · esc: cancel",
            th.dim(),
        )));
    }
    let h = (lines.len() as u16 + 4).min(area.height.saturating_sub(2));
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Set reindex priority ", th.title())),
        ),
        r,
    );
}

fn render_composer(f: &mut Frame, area: Rect, app: &App, c: &super::composer::Composer) {
    use super::composer::{Field, Stage};
    let th = &app.theme;
    let wide = area.width >= 110;
    let showing_preview = matches!(
        c.stage,
        Stage::Previewed | Stage::Confirm | Stage::Publishing
    );
    // Side by side when there is room; otherwise the preview replaces the
    // form while it is shown.
    let (form, side) = if wide {
        let [a, b] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(area);
        (a, b)
    } else if showing_preview {
        (Rect::default(), area)
    } else {
        (area, Rect::default())
    };
    let label = |fld: Field, name: &str| {
        let style = if c.field == fld && c.stage == Stage::Editing {
            th.selected()
        } else {
            th.title()
        };
        Span::styled(format!("{name:<12}"), style)
    };
    let cursor = |fld: Field| if c.field == fld { "▏" } else { "" };
    let pad = " ".repeat(12);
    let mut lines: Vec<Line> = Vec::new();
    let mut states = vec![label(Field::State, "state")];
    for st in crate::domain::IncidentState::ALL {
        let style = if st.as_str() == c.draft.state {
            th.selected()
        } else {
            th.dim()
        };
        states.push(Span::styled(format!(" {} ", st.as_str()), style));
    }
    lines.push(Line::from(states));
    lines.push(Line::from(vec![
        label(Field::Title, "title"),
        Span::raw(safe(&c.draft.title)),
        Span::raw(cursor(Field::Title)),
    ]));
    lines.push(Line::from(Span::styled(
        format!(
            "{pad}{}/{} characters",
            c.draft.title.chars().count(),
            crate::domain::status::MAX_TITLE_CHARS
        ),
        th.dim(),
    )));
    lines.push(Line::from(label(Field::Body, "body")));
    let body_lines: Vec<&str> = c.draft.body.split('\n').collect();
    let room = (form.height as usize).saturating_sub(14).max(3);
    let skip = body_lines.len().saturating_sub(room);
    for (i, l) in body_lines.iter().enumerate().skip(skip) {
        let at_end = i + 1 == body_lines.len();
        lines.push(Line::from(format!(
            "  {}{}",
            safe(l),
            if at_end { cursor(Field::Body) } else { "" }
        )));
    }
    lines.push(Line::from(Span::styled(
        format!(
            "{pad}{}/{} characters · {}",
            c.draft.body.chars().count(),
            crate::domain::status::MAX_BODY_CHARS,
            crate::domain::status::PLACEHOLDERS
                .map(|(p, _)| format!("{{{p}}}"))
                .join(" ")
        ),
        th.dim(),
    )));
    lines.push(Line::from(vec![
        label(Field::Components, "components"),
        Span::raw(safe(&c.draft.components)),
        Span::raw(cursor(Field::Components)),
    ]));
    let known: Vec<&str> = app
        .model
        .board
        .components
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    lines.push(Line::from(Span::styled(
        format!(
            "{pad}ID=STATUS, comma separated; ids: {}",
            safe(&known.join(" "))
        ),
        th.dim(),
    )));
    lines.push(Line::from(vec![
        label(Field::Next, "next update"),
        Span::raw(safe(&c.draft.next)),
        Span::raw(cursor(Field::Next)),
    ]));
    lines.push(match c.next_hint(app.source_now()) {
        Ok(hint) => Line::from(Span::styled(format!("{pad}→ {hint}"), th.dim())),
        Err(e) => Line::from(Span::styled(format!("{pad}✖ {}", safe(&e)), th.alert())),
    });
    if let Some(e) = &c.error {
        lines.push(Line::from(Span::styled(
            format!("✖ {}", safe(e)),
            th.alert(),
        )));
    }
    if !app.model.board.page_url.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("status page: {}", safe(&app.model.board.page_url)),
            th.dim(),
        )));
    }
    // The ETAs that moved later since the last update (as the gateway
    // marks them), so this update can say so: in the preview panel, or
    // under the form while a narrow screen shows no preview.
    let source_now = app.model.overview.incident.now.unwrap_or(app.clock);
    let slips: Vec<Line> = super::composer::slip_lines(
        &app.model.slipped(),
        app.model.board.latest.is_some(),
        source_now,
        8,
    )
    .into_iter()
    .enumerate()
    .map(|(i, l)| {
        Line::from(Span::styled(
            if i == 0 { format!("↗ {l}") } else { l },
            th.alert(),
        ))
    })
    .collect();
    if side.height == 0 {
        lines.extend(slips.iter().cloned());
    }
    if form.height > 0 {
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block(app, "Status update · the draft is saved as you type")),
            form,
        );
    }
    if side.height == 0 {
        return;
    }
    let mut out: Vec<Line> = Vec::new();
    if c.stage == Stage::Confirm {
        let mut channels: Vec<&str> = c.previews.iter().map(|p| p.0.as_str()).collect();
        channels.dedup();
        out.push(Line::from(Span::styled(
            format!(
                "Publish to {} now? y: yes · any other key: no",
                safe(&channels.join(", "))
            ),
            th.badge(),
        )));
    }
    for fd in &c.findings {
        let (mark, style) = if fd.error {
            ("✖", th.alert())
        } else {
            ("⚠", th.badge())
        };
        out.push(Line::from(Span::styled(
            format!("{mark} {}: {}", safe(&fd.field), safe(&fd.message)),
            style,
        )));
    }
    out.extend(slips);
    match c.stage {
        Stage::Editing if c.previews.is_empty() => {
            out.push(Line::from(
                "ctrl-p shows exactly what each channel will receive.",
            ));
        }
        Stage::Previewing => out.push(Line::from("asking the gateway…")),
        _ => {}
    }
    for (channel, ctype, content) in &c.previews {
        out.push(Line::from(Span::styled(
            format!(
                "── {}",
                safe(&super::composer::preview_label(channel, ctype))
            ),
            th.title(),
        )));
        out.extend(content.lines().map(|l| Line::from(safe(l))));
    }
    f.render_widget(
        Paragraph::new(out)
            .wrap(Wrap { trim: false })
            .scroll((c.scroll, 0))
            .block(block(app, "Preview: exactly what each channel receives")),
        side,
    );
}
