//! What every screen shares: the header (incident, totals, connection,
//! clock, the next update's countdown), the footer (the last answer, or
//! the keys that work here, generated from the keymap), and the helpers the
//! screens draw with. Every string from the gateway passes through
//! `sanitize` (via `safe`) before it reaches a cell.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Table, TableState};

use crate::console::app::{App, Conn, View};
use crate::console::fit::Fit;
use crate::console::keymap::{Action, Context};
use crate::console::theme::Theme;
use crate::domain::format::{
    clip, compact, compact_or_unknown, counted, duration, eta_cell_forms, eta_range, eta_relative,
    percent, queued_claim, thousands,
};
use crate::domain::sanitize::sanitize;
use chrono::{DateTime, Utc};

/// Gateway text made inert for the terminal.
pub(super) fn safe(s: &str) -> String {
    sanitize(s).into_owned()
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

pub(crate) fn render_header(f: &mut Frame, area: Rect, app: &App) {
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
    // With several replicas, which one this console is on.
    if let Some(via) = &app.via {
        right.push(Span::styled(format!(" via {} ·", safe(via)), th.dim()));
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
            // While the first damage sweep runs, a count of what it found.
            let so_far = match o.first_sweep_running() {
                Some(sw) => format!(" so far ({} swept)", percent(sw.fraction())),
                None => String::new(),
            };
            format!(
                "{} affected{so_far}",
                counted(t.affected_mailboxes, "mailbox", "mailboxes")
            )
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
                " · {} · {} restored · {} queued",
                counted(t.affected_tenants, "tenant", "tenants"),
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

pub(super) fn block(app: &App, title: &str) -> Block<'static> {
    Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(stale_title(app, title), app.theme.title()))
}

/// A mailbox state, with a shorter word for a narrow column.
pub(super) fn state_fit(s: crate::domain::MailboxState) -> Fit {
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
pub(super) fn eta_forms(
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
pub(super) fn eta_fit(
    eta: &crate::domain::forecast::EtaRange,
    now: DateTime<Utc>,
    none: &str,
) -> Fit {
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

/// A table whose `row` (counted from the first row drawn) is marked as
/// selected.
pub(super) fn render_selectable(
    f: &mut Frame,
    area: Rect,
    table: Table<'_>,
    th: &Theme,
    row: Option<usize>,
) {
    let table = table
        .row_highlight_style(th.selected())
        .highlight_symbol("▶");
    let mut state = TableState::default();
    state.select(row);
    f.render_stateful_widget(table, area, &mut state);
}

/// Footer hints for what is in front, generated from the active keymap so
/// remapped keys show.
pub fn footer_hints(app: &App) -> String {
    use Action as A;
    use Context as C;
    let ctx = app.beneath_help();
    let hint = |wanted: &[(&[Action], &str)]| keys_hint(app, ctx, wanted);
    match ctx {
        C::Palette => format!(
            ":{}▏  ({})",
            app.palette.as_deref().unwrap_or(""),
            hint(&[
                (&[A::Complete], "completes"),
                (&[A::Submit], "runs"),
                (&[A::Back], "cancels"),
            ])
        ),
        C::Filter => typing(
            "type to filter",
            hint(&[(&[A::Submit], "keep"), (&[A::Back], "clear")]),
        ),
        C::Composer => {
            hint(&[
                (&[A::NextField, A::PrevField], "field"),
                (&[A::StatePrev, A::StateNext], "state"),
            ]) + " · enter: newline in the body · "
                + &hint(&[
                    (&[A::Preview], "preview"),
                    (&[A::Back], "close (draft kept)"),
                    (&[A::Help], "keys"),
                ])
        }
        C::Preview => match app.composer.as_ref().map(|c| &c.stage) {
            Some(crate::console::composer::Stage::Publishing) => "publishing…".into(),
            Some(crate::console::composer::Stage::Previewing) => format!(
                "asking the gateway for a preview… ({})",
                hint(&[(&[A::Back], "back")])
            ),
            _ => hint(&[
                (&[A::Up, A::Down], "scroll"),
                (&[A::Submit], "publish…"),
                (&[A::Back], "back to the form"),
            ]),
        },
        C::ConfirmPublish => {
            hint(&[(&[A::Confirm], "publish now")]) + " · any other key: back to the preview"
        }
        C::ConfirmPriority => {
            hint(&[(&[A::Confirm], "set it")]) + " · any other key: back to the form"
        }
        C::Priority => {
            hint(&[
                (&[A::PriorityUp, A::PriorityDown], "priority"),
                (&[A::RankUp, A::RankDown], "rank"),
            ]) + &typing(
                " · type the reason",
                hint(&[
                    (&[A::Submit], "review"),
                    (&[A::Back], "cancel"),
                    (&[A::Help], "keys"),
                ]),
            )
        }
        C::Lookup => typing(
            "type to search",
            hint(&[
                (&[A::Up, A::Down], "choose"),
                (&[A::Open], "open tenant"),
                (&[A::Copy], "copy answer"),
                (&[A::Back], "back"),
            ]),
        ),
        C::Trends => {
            let mut wanted: Vec<(&[Action], &str)> = vec![
                (&[A::Back], "back"),
                (&[A::Down], "next tenant"),
                (&[A::Up], "previous"),
            ];
            let one_tenant = matches!(&app.view, View::Trends(tv) if !tv.tenant_id.is_empty());
            if one_tenant {
                wanted.push((&[A::Top], "every tenant"));
            }
            wanted.push((&[A::Quit], "quit"));
            hint(&wanted)
        }
        C::Timeline => hint(&[
            (&[A::Back], "back"),
            (&[A::Open], "details"),
            (&[A::Timeline], "reload"),
            (&[A::Quit], "quit"),
        ]),
        C::Overview => hint(&[
            (&[A::Quit], "quit"),
            (&[A::Help], "help"),
            (&[A::Palette], "cmd"),
            (&[A::Open], "open"),
            (&[A::Prioritize], "prio"),
            (&[A::SortNext], "sort"),
            (&[A::Filter], "filter"),
            (&[A::AffectedOnly], "affected"),
            (&[A::SortReverse], "reverse"),
        ]),
        C::Tenant | C::Global | C::Help => hint(&[
            (&[A::Back], "back"),
            (&[A::NextPage], "next page"),
            (&[A::PrevPage], "prev"),
            (&[A::StateFilter], "states"),
            (&[A::ToggleOrder], "order"),
            (&[A::Filter], "filter"),
            (&[A::Export], "export"),
            (&[A::Prioritize], "prio"),
            (&[A::Help], "help"),
            (&[A::Quit], "quit"),
        ]),
    }
}

/// "type to search · ↑↓ choose": what typing does, then the keys.
fn typing(what: &str, keys: String) -> String {
    if keys.is_empty() {
        what.to_string()
    } else {
        format!("{what} · {keys}")
    }
}

/// The first key of each action in the active keymap in `ctx` (with
/// `[global]`'s where it applies), together: "↑↓" for two arrows,
/// "tab/shift-tab" for longer names; `None` when one is unbound.
pub(super) fn first_keys(app: &App, ctx: Context, actions: &[Action]) -> Option<String> {
    let first_key = |a: Action| {
        app.keymap.short(ctx, a).or_else(|| {
            ctx.takes_global()
                .then(|| app.keymap.short(Context::Global, a))
                .flatten()
        })
    };
    let keys: Vec<String> = actions
        .iter()
        .map(|a| first_key(*a))
        .collect::<Option<_>>()?;
    let sep = if keys.iter().all(|k| crate::console::fit::width(k) == 1) {
        ""
    } else {
        "/"
    };
    Some(keys.join(sep))
}

/// "q quit · ? help": for each wanted group of actions, their keys
/// (`first_keys`) and what they do here, leaving out what is unbound or what
/// this console's role cannot do.
fn keys_hint(app: &App, ctx: Context, wanted: &[(&[Action], &str)]) -> String {
    wanted
        .iter()
        .filter(|(actions, _)| !actions.iter().any(|a| hidden(app, *a)))
        .filter_map(|(actions, what)| {
            first_keys(app, ctx, actions).map(|keys| format!("{keys} {what}"))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// A `w`×`h` box in the middle of `area`, cleared: where the help, a form
/// or an event in full is drawn over the screen.
pub(super) fn overlay(f: &mut Frame, area: Rect, w: u16, h: u16) -> Rect {
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    r
}

pub(crate) fn render_footer(f: &mut Frame, area: Rect, app: &App) {
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
pub(super) fn hidden(app: &App, a: Action) -> bool {
    match a {
        Action::Prioritize => !app.role().can_prioritize(),
        Action::Compose => !app.role().can_publish(),
        _ => false,
    }
}
