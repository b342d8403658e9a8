//! The trends screen: mailboxes without service and the inbound queue over
//! the incident, measured (from the gateway's `GetTrends`), with the
//! forecast drawn ahead as a band (the straight run from now to zero at the
//! p50 and at the p90) and each scope revision marked. For every tenant or
//! one. Lines differ by marker as well as colour (measured braille, p50
//! `•`, p90 `▄`, a scope revision `█` on the top edge), so the chart reads
//! the same in 16 colours, in a light theme and under NO_COLOR.

use chrono::{DateTime, Duration, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Wrap};

use crate::console::app::{App, Command, View};
use crate::console::keymap::Action;
use crate::domain::forecast::EtaRange;
use crate::domain::format::{duration, thousands};
use crate::domain::sanitize::sanitize;
use crate::domain::trends::History;

/// The trends view: the platform's queue depth and affected mailboxes over
/// time, or one tenant's, with the forecast drawn ahead.
#[derive(Debug, Clone)]
pub struct TrendsView {
    /// Empty: every tenant (the platform).
    pub tenant_id: String,
    pub history: Option<crate::domain::trends::History>,
    pub loading: bool,
    pub error: Option<String>,
    pub fetched_at: Option<DateTime<Utc>>,
    pub back: Box<View>,
    serial: u64,
}

impl TrendsView {
    /// The trends fetched for `serial`; on an error the last curve stays,
    /// marked with it.
    pub(in crate::console) fn answered(&mut self, serial: u64, result: Result<History, String>) {
        if self.serial != serial {
            return;
        }
        self.loading = false;
        match result {
            Ok(h) => {
                self.history = Some(h);
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }
}

impl App {
    /// Opens the trends of `tenant_id` (empty: the platform's).
    pub(in crate::console) fn open_trends(&mut self, tenant_id: String) -> Command {
        self.filter_editing = false;
        let back = match std::mem::replace(&mut self.view, View::Overview) {
            View::Trends(tv) => tv.back,
            other => Box::new(other),
        };
        self.view = View::Trends(TrendsView {
            tenant_id,
            history: None,
            loading: true,
            error: None,
            fetched_at: None,
            back,
            serial: 0,
        });
        self.fetch_trends()
    }

    pub(in crate::console) fn fetch_trends(&mut self) -> Command {
        self.serial += 1;
        let serial = self.serial;
        let View::Trends(tv) = &mut self.view else {
            return Command::None;
        };
        tv.serial = serial;
        tv.loading = true;
        tv.fetched_at = Some(self.clock);
        Command::FetchTrends {
            serial,
            tenant_id: tv.tenant_id.clone(),
        }
    }

    /// ↑↓ pick the tenant before or after (in the tenants table's order),
    /// home goes back to every tenant, esc back where it was opened.
    pub(in crate::console) fn trends_action(&mut self, action: Action) -> Command {
        let View::Trends(tv) = &mut self.view else {
            return Command::None;
        };
        let step = match action {
            Action::Back => {
                let back = std::mem::replace(&mut tv.back, Box::new(View::Overview));
                self.view = *back;
                return Command::None;
            }
            Action::Top if !tv.tenant_id.is_empty() => {
                tv.tenant_id.clear();
                tv.history = None;
                return self.fetch_trends();
            }
            Action::Trends => return self.fetch_trends(),
            Action::Down => 1,
            Action::Up => -1,
            _ => return Command::None,
        };
        let len = self.model.ordered_len();
        if len == 0 {
            return Command::None;
        }
        let now = self.model.ordered().position(|t| *t.id == *tv.tenant_id);
        let at = match (now, step) {
            (Some(i), 1) => (i + 1).min(len - 1),
            (Some(i), _) => i.saturating_sub(1),
            // From every tenant: the one selected in the table.
            (None, _) => self.selected.min(len - 1),
        };
        if let Some(t) = self.model.ordered_at(at) {
            tv.tenant_id = t.id.to_string();
            tv.history = None;
            self.selected = at;
            self.selected_tenant = Some(t.id.to_string());
        }
        self.fetch_trends()
    }
}

/// How far the chart reaches on each side of now, at least: now is in the
/// middle, the history to its left (blank before the gateway's first
/// point), as much time to its right, so a forecast days out does not
/// squash the measured curve.
const MIN_AHEAD: Duration = Duration::hours(4);

/// One chart's data, in chart coordinates: x in seconds since the chart's
/// left edge (`left`), y the figure.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Series {
    /// Runs of measured points; a gap (not measured) splits them.
    pub measured: Vec<Vec<(f64, f64)>>,
    /// From now's figure to zero at the p50 and at the p90 (cut at the
    /// chart's right edge); empty without an estimate or a figure now.
    pub p50: Vec<(f64, f64)>,
    pub p90: Vec<(f64, f64)>,
    /// Marks along the top edge (scope revisions), one point each.
    pub marks: Vec<(f64, f64)>,
    pub left: DateTime<Utc>,
    pub x_max: f64,
    pub y_max: f64,
    /// The forecast reaches past the right edge.
    pub cut: bool,
}

/// Builds a chart's data from `values` (one per point of `times`), the
/// figure `now_value` at `now`, the estimate `eta` and `marks` times.
pub(crate) fn series(
    times: &[DateTime<Utc>],
    values: &[Option<u64>],
    now: DateTime<Utc>,
    now_value: Option<u64>,
    eta: &EtaRange,
    marks: &[DateTime<Utc>],
) -> Series {
    let Some(&start) = times.first() else {
        return Series::default();
    };
    let now = now.max(start);
    let ahead = (now - start).max(MIN_AHEAD);
    let (left, right) = (now - ahead, now + ahead);
    let x = |t: DateTime<Utc>| (t - left).num_milliseconds().max(0) as f64 / 1000.0;
    let x_max = x(right);
    let mut out = Series {
        left,
        x_max,
        ..Series::default()
    };
    let mut run = Vec::new();
    for (t, v) in times.iter().zip(values) {
        match v {
            Some(v) => run.push((x(*t), *v as f64)),
            None if !run.is_empty() => out.measured.push(std::mem::take(&mut run)),
            None => {}
        }
    }
    if !run.is_empty() {
        out.measured.push(run);
    }
    // The forecast: from now's figure down to zero at each quantile.
    if let (Some(v), Some(p50), Some(p90)) = (now_value.filter(|&v| v > 0), eta.p50, eta.p90) {
        let v = v as f64;
        let line = |end: DateTime<Utc>, cut: &mut bool| {
            let end = end.max(now);
            if end <= right {
                return vec![(x(now), v), (x(end), 0.0)];
            }
            *cut = true;
            let share = (right - now).num_seconds() as f64 / (end - now).num_seconds() as f64;
            vec![(x(now), v), (x_max, v * (1.0 - share))]
        };
        out.p50 = line(p50, &mut out.cut);
        out.p90 = line(p90, &mut out.cut);
    }
    let y_max = out
        .measured
        .iter()
        .flatten()
        .chain(&out.p50)
        .map(|p| p.1)
        .fold(0.0, f64::max);
    out.y_max = nice_ceiling(y_max * 1.05);
    out.marks = marks
        .iter()
        .filter(|&&t| t >= start && t <= right)
        .map(|&t| (x(t), out.y_max))
        .collect();
    out
}

/// The axis top: `v` rounded up to two significant digits (10,101 →
/// 11,000); 1 when everything is 0.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let unit = 10f64.powi(v.log10().floor() as i32 - 1).max(1.0);
    (v / unit).ceil() * unit
}

/// "14:05", or "Oct 08 14:05" when the chart spans more than a day.
fn time_label(t: DateTime<Utc>, long: bool) -> String {
    if long {
        t.format("%b %d %H:%M").to_string()
    } else {
        t.format("%H:%M").to_string()
    }
}

struct Labels {
    title: String,
    /// The figures are a floor: what the damage sweep found so far.
    so_far: Option<String>,
    /// Why there is no forecast line, if there is none.
    no_forecast: Option<String>,
}

fn chart<'a>(s: &'a Series, now: DateTime<Utc>, width: u16, l: &Labels, app: &App) -> Chart<'a> {
    let th = &app.theme;
    let mut data = Vec::new();
    for run in &s.measured {
        data.push(
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(th.gauge())
                .data(run),
        );
    }
    let forecast = th
        .badge()
        .remove_modifier(ratatui::style::Modifier::REVERSED);
    if !s.p50.is_empty() {
        data.push(
            Dataset::default()
                .name("p50 forecast")
                .marker(Marker::Dot)
                .graph_type(GraphType::Line)
                .style(forecast)
                .data(&s.p50),
        );
        data.push(
            Dataset::default()
                .name("p90 forecast")
                .marker(Marker::Bar)
                .graph_type(GraphType::Line)
                .style(forecast)
                .data(&s.p90),
        );
    }
    if !s.marks.is_empty() {
        let d = Dataset::default()
            .marker(Marker::Block)
            .graph_type(GraphType::Scatter)
            .style(th.alert())
            .data(&s.marks);
        data.push(d.name("scope revised"));
    }
    let start = s.left;
    let end = start + Duration::milliseconds((s.x_max * 1000.0) as i64);
    // Times on a wide screen; on a narrow one, how far from now (three
    // "Oct 06 17:30" do not fit in 60 columns).
    let labels = if width >= 100 {
        let long = end - start > Duration::hours(20);
        [
            time_label(start, long),
            format!("now {}", time_label(now, long)),
            time_label(end, long),
        ]
    } else {
        [
            format!("-{}", duration(now - start)),
            format!("now {}", now.format("%H:%M")),
            format!("+{}", duration(end - now)),
        ]
    };
    let mut title = vec![Span::styled(format!(" {} ", l.title), th.title())];
    if let Some(note) = &l.so_far {
        title.push(Span::styled(format!("· {note} "), th.alert()));
    }
    if let Some(why) = &l.no_forecast {
        title.push(Span::styled(format!("· {why} "), th.dim()));
    } else if s.cut {
        title.push(Span::styled(
            "· forecast goes on past the right edge ",
            th.dim(),
        ));
    }
    Chart::new(data)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(Line::from(title)),
        )
        .x_axis(
            Axis::default()
                .bounds([0.0, s.x_max])
                .style(th.dim())
                .labels(labels),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, s.y_max])
                .style(th.dim())
                .labels(["0".to_string(), thousands(s.y_max as u64)]),
        )
        // The key is on the screen's first line, whatever the chart's size.
        .legend_position(None)
}

/// What each mark means, for the first line.
const KEY: &str = "⣀ measured · • p50 · ▄ p90 forecast · █ scope revised";

/// The later of the ETAs of the clusters with work (the platform is back
/// when its last cluster is), or none when any has none, its reason
/// naming the cluster when there are several.
fn latest<'a>(etas: impl Iterator<Item = (&'a str, &'a EtaRange)>) -> EtaRange {
    let etas: Vec<(&str, &EtaRange)> = etas.collect();
    let several = etas.len() > 1;
    let Some((name, eta)) = etas.into_iter().reduce(|a, b| match (a.1.p90, b.1.p90) {
        (Some(x), Some(y)) if x >= y => a,
        (Some(_), Some(_)) => b,
        (None, _) => a,
        (_, None) => b,
    }) else {
        return EtaRange::default();
    };
    let mut eta = eta.clone();
    if several && eta.p90.is_none() {
        let why = if eta.reason.is_empty() {
            "no estimate"
        } else {
            &eta.reason
        };
        eta.reason = format!("{}: {why}", sanitize(name));
    }
    eta
}

fn why_none(eta: &EtaRange, value: Option<u64>) -> Option<String> {
    match value {
        None => Some("not measured now".into()),
        Some(0) => None,
        Some(_) if eta.p50.is_some() && eta.p90.is_some() => None,
        Some(_) if eta.reason.is_empty() => Some("no estimate".into()),
        Some(_) => Some(sanitize(&eta.reason).into_owned()),
    }
}

pub(crate) fn render(f: &mut Frame, area: Rect, app: &App, tv: &TrendsView) {
    let th = &app.theme;
    let now = app.source_now();
    let o = &app.model.overview;
    let tenant = (!tv.tenant_id.is_empty())
        .then(|| app.model.tenant(&tv.tenant_id))
        .flatten();
    let who = match (&tv.tenant_id, tenant) {
        (id, _) if id.is_empty() => "every tenant".to_string(),
        (id, Some(t)) => format!("{} ({})", sanitize(&t.name), sanitize(id)),
        (id, None) => sanitize(id).into_owned(),
    };
    let mut head = vec![
        Span::styled(" Trends ", th.title()),
        Span::raw(format!("· {who} ")),
    ];
    if tv.loading && tv.history.is_none() {
        head.push(Span::styled("· loading ", th.dim()));
    }
    if let Some(e) = &tv.error {
        head.push(Span::styled(format!("· {} ", sanitize(e)), th.alert()));
    }
    // The key beside the title when it fits, else on a line of its own.
    let key = Span::styled(format!(" {KEY} "), th.dim());
    let used: usize = head.iter().map(|s| s.content.chars().count()).sum();
    let lines = if used + KEY.chars().count() + 2 <= area.width as usize {
        let gap = area.width as usize - used - KEY.chars().count() - 2;
        head.push(Span::raw(" ".repeat(gap)));
        head.push(key);
        vec![Line::from(head)]
    } else {
        vec![Line::from(head), Line::from(key)]
    };
    let [top, body] =
        Layout::vertical([Constraint::Length(lines.len() as u16), Constraint::Min(4)]).areas(area);
    f.render_widget(Paragraph::new(lines), top);
    let Some(h) = tv.history.as_ref().filter(|h| h.points.len() >= 2) else {
        let msg = if tv.history.is_some() {
            "Not enough history yet: the gateway records a point every minute of the incident's clock."
        } else {
            ""
        };
        f.render_widget(
            Paragraph::new(msg)
                .wrap(Wrap { trim: true })
                .block(Block::default().borders(Borders::ALL)),
            body,
        );
        return;
    };
    let [upper, lower] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
    let times: Vec<DateTime<Utc>> = h.points.iter().map(|p| p.at).collect();
    let revisions: Vec<DateTime<Utc>> = o
        .clusters
        .iter()
        .flat_map(|c| c.reindex.revisions.iter().skip(1).map(|r| r.at))
        .collect();

    // Mailboxes without service: the tenant's, or the platform's.
    // On a platform whose damage sweep has not checked every mailbox, the
    // count is what was found so far: the title says so.
    let (affected, now_affected, eta, title, so_far) = match (&h.tenant_id, tenant) {
        (id, t) if !id.is_empty() && h.tenant.len() == h.points.len() => (
            h.tenant.clone(),
            t.map(|t| t.affected()),
            t.map(|t| t.eta.clone()).unwrap_or_default(),
            "mailboxes without service, this tenant",
            t.filter(|t| t.unchecked() > 0)
                .map(|t| format!("so far: {} not checked yet", thousands(t.unchecked()))),
        ),
        _ => (
            h.points.iter().map(|p| p.affected).collect(),
            (o.totals.mailboxes > 0).then_some(o.totals.affected_mailboxes),
            latest(
                o.clusters
                    .iter()
                    .filter(|c| c.reindex.scope > 0 && c.reindex.finished_at.is_none())
                    .map(|c| (c.name.as_str(), &c.reindex.eta)),
            ),
            "mailboxes without service",
            o.first_sweep_running().map(|sw| {
                format!(
                    "so far: the first sweep has checked {} of {}",
                    thousands(sw.swept),
                    thousands(sw.mailboxes)
                )
            }),
        ),
    };
    let s = series(&times, &affected, now, now_affected, &eta, &revisions);
    let labels = Labels {
        title: title.into(),
        so_far,
        no_forecast: why_none(&eta, now_affected).map(|w| format!("no forecast: {w}")),
    };
    f.render_widget(chart(&s, now, upper.width, &labels, app), upper);

    // The inbound queue: the whole platform's (the gateway keeps no
    // per-tenant queue history).
    let depth: Vec<Option<u64>> = h.points.iter().map(|p| p.queue_depth).collect();
    let now_depth = o.live_queue_depth();
    let drain = latest(
        o.clusters
            .iter()
            .filter(|c| c.queue.depth().is_none_or(|d| d > 0))
            .map(|c| (c.name.as_str(), &c.queue.drain_eta)),
    );
    let s = series(&times, &depth, now, now_depth, &drain, &[]);
    let labels = Labels {
        title: if h.tenant_id.is_empty() {
            "inbound queue".into()
        } else {
            "inbound queue, every tenant".into()
        },
        so_far: None,
        no_forecast: why_none(&drain, now_depth).map(|w| format!("no drain forecast: {w}")),
    };
    f.render_widget(chart(&s, now, lower.width, &labels, app), lower);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(min: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_223_314_200, 0).unwrap() + Duration::minutes(min)
    }

    #[test]
    fn a_gap_in_the_measurements_splits_the_line_rather_than_drawing_zero() {
        let times = [at(0), at(1), at(2), at(3)];
        let s = series(
            &times,
            &[Some(5), None, Some(7), Some(6)],
            at(3),
            Some(6),
            &EtaRange::default(),
            &[],
        );
        // Now in the middle, 4 h from each edge: x counts from the left.
        let x0 = 4.0 * 3600.0 - 180.0;
        assert_eq!(
            s.measured,
            vec![vec![(x0, 5.0)], vec![(x0 + 120.0, 7.0), (x0 + 180.0, 6.0)]]
        );
        assert_eq!(s.x_max, 8.0 * 3600.0);
        assert!(s.p50.is_empty(), "no estimate, no forecast line");
    }

    #[test]
    fn the_forecast_runs_from_now_to_zero_at_each_quantile_and_is_cut_at_the_edge() {
        // Ten hours of history: the chart spans 10 h each side of now.
        let times = [at(0), at(600)];
        let h = 3600.0;
        let s = series(
            &times,
            &[Some(100), Some(80)],
            at(600),
            Some(80),
            &EtaRange::at(at(660), at(720)),
            &[at(300)],
        );
        assert_eq!(s.p50, vec![(10.0 * h, 80.0), (11.0 * h, 0.0)]);
        assert_eq!(s.p90, vec![(10.0 * h, 80.0), (12.0 * h, 0.0)]);
        assert!(!s.cut);
        assert_eq!(s.marks, vec![(5.0 * h, s.y_max)]);
        assert_eq!(s.y_max, 110.0, "100 and some headroom, rounded");
        // Twenty hours out: the p90 line stops at the right edge, at the
        // height it would have there.
        let s = series(
            &times,
            &[Some(100), Some(80)],
            at(600),
            Some(80),
            &EtaRange::at(at(660), at(600 + 20 * 60)),
            &[],
        );
        assert!(s.cut);
        assert_eq!(s.x_max, 20.0 * h);
        assert_eq!(s.p90, vec![(10.0 * h, 80.0), (20.0 * h, 40.0)]);
    }

    #[test]
    fn the_axis_top_is_a_round_number_above_the_highest_figure() {
        assert_eq!(nice_ceiling(10_101.0), 11_000.0);
        assert_eq!(nice_ceiling(59_252.0 * 1.05), 63_000.0);
        assert_eq!(nice_ceiling(7.0), 7.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }
}
