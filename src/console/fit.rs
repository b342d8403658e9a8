//! Fitting text into table columns: one width allocator and one set of ways
//! to shorten a value, used by every table on screen.
//!
//! Columns share the width by what they hold: each column says what its
//! visible rows need and the least it can live with; when everything fits,
//! each gets what it needs and the spare goes to the widest; when it does
//! not, the widest columns give up width first, never below their least.
//! A value that does not fit is shortened where it says least: the middle
//! of a domain, the domain of an address (the local part tells the rows of
//! one tenant apart), the end of a name or a sentence; a number is never
//! cut (its column's least is its width).

use ratatui::layout::Constraint;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row};
use unicode_width::UnicodeWidthChar;

/// Display width of `s` in terminal cells.
pub(crate) fn width(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// The longest prefix of `s` at most `max` cells wide.
fn head(s: &str, max: usize) -> &str {
    let mut w = 0;
    for (i, c) in s.char_indices() {
        w += c.width().unwrap_or(0);
        if w > max {
            return &s[..i];
        }
    }
    s
}

/// The longest suffix of `s` at most `max` cells wide.
fn tail(s: &str, max: usize) -> &str {
    let mut w = 0;
    for (i, c) in s.char_indices().rev() {
        w += c.width().unwrap_or(0);
        if w > max {
            return &s[i + c.len_utf8()..];
        }
    }
    s
}

/// `s` cut at the end with `…` to at most `max` cells.
pub(crate) fn end(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    format!("{}…", head(s, max - 1))
}

/// `s` with its middle replaced by `…` to at most `max` cells: the start
/// and the end, which tell long domains apart, stay.
/// `derby-yellowstone-law.example` in 20 → `derby-yell…w.example`.
pub(crate) fn middle(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max < 3 {
        return end(s, max);
    }
    let keep = max - 1;
    let back = keep / 2;
    let front = keep - back;
    format!("{}…{}", head(s, front), tail(s, back))
}

/// An address in at most `max` cells: the local part whole when it can be
/// (it is what tells one tenant's mailboxes apart), the domain shortened in
/// its middle; else the middle of the whole.
/// `grace.smith@derby-yellowstone-law.example` in 28 →
/// `grace.smith@derby-ye…example`.
pub(crate) fn address(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if let Some((local, domain)) = s.rsplit_once('@') {
        let room = max.saturating_sub(width(local) + 1);
        // Enough of the domain to be read as one: a few letters each side.
        if room >= 7 {
            return format!("{local}@{}", middle(domain, room));
        }
    }
    middle(s, max)
}

/// `s` in lines of at most `w` cells, broken between words (a word longer
/// than a line is broken where the line ends). Nothing is lost.
pub(crate) fn wrap(s: &str, w: usize) -> Vec<String> {
    let w = w.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split(' ') {
        let mut word = word;
        loop {
            let used = width(&line);
            let sep = usize::from(!line.is_empty());
            if used + sep + width(word) <= w {
                if sep == 1 {
                    line.push(' ');
                }
                line.push_str(word);
                break;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word wider than the line: as much as fits, then the rest.
            let part = head(word, w);
            let part = if part.is_empty() {
                // A character wider than the line: it goes alone.
                word.chars().next().map_or("", |c| &word[..c.len_utf8()])
            } else {
                part
            };
            lines.push(part.to_string());
            word = &word[part.len()..];
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// The first of `forms` (longest first) that fits in `w` cells; else the
/// last, cut at its end.
pub(crate) fn first_fit(forms: &[String], w: usize) -> String {
    forms
        .iter()
        .find(|f| width(f) <= w)
        .or(forms.last())
        .map(|f| end(f, w))
        .unwrap_or_default()
}

/// How a cell's text may be shortened.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fit {
    /// Never shortened: a number, a code. Its width is its least.
    Whole(String),
    /// Right-aligned and never shortened: a count.
    Number(String),
    /// Cut at the end: a name, a sentence.
    End(String),
    /// Cut in the middle: a domain.
    Middle(String),
    /// An address: the domain gives way first.
    Address(String),
    /// Ways to say the same, longest first: the first that fits is shown.
    /// An ETA whose shorter form drops the date.
    Choices(Vec<String>),
}

/// What a free-text column asks for before the others have what they need.
const GROW_ASKS: usize = 20;

/// The least a shortened value keeps: fewer cells say nothing.
const LEAST: usize = 8;

impl Fit {
    /// Cells to show it whole.
    pub(crate) fn need(&self) -> usize {
        match self {
            Fit::Whole(s) | Fit::Number(s) | Fit::End(s) | Fit::Middle(s) | Fit::Address(s) => {
                width(s)
            }
            Fit::Choices(c) => c.iter().map(|s| width(s)).max().unwrap_or(0),
        }
    }

    /// Fewest cells it can be shown in and still say something.
    pub(crate) fn least(&self) -> usize {
        match self {
            Fit::Whole(s) | Fit::Number(s) => width(s),
            Fit::End(s) | Fit::Middle(s) => width(s).min(LEAST),
            Fit::Address(s) => {
                // The local part and a little of the domain.
                let local = s.rsplit_once('@').map_or(0, |(l, _)| width(l) + 8);
                width(s).min(local.max(LEAST)).min(24)
            }
            Fit::Choices(c) => c.iter().map(|s| width(s)).min().unwrap_or(0),
        }
    }

    /// The text in at most `w` cells (a number right-aligned in them).
    pub(crate) fn fit(&self, w: usize) -> String {
        match self {
            Fit::Whole(s) => s.clone(),
            Fit::Number(s) => format!("{s:>w$}"),
            Fit::End(s) => end(s, w),
            Fit::Middle(s) => middle(s, w),
            Fit::Address(s) => address(s, w),
            Fit::Choices(c) => c
                .iter()
                .find(|s| width(s) <= w)
                .or(c.last())
                .map(|s| end(s, w))
                .unwrap_or_default(),
        }
    }
}

/// A column: its header, and the least it keeps whatever its rows hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Col {
    pub header: &'static str,
    /// Right-align the header over numbers.
    pub right: bool,
    /// Free text such as a reason or an error: it asks for a little room
    /// until the other columns have what they need, then takes the spare.
    pub grow: bool,
}

impl Col {
    pub(crate) const fn new(header: &'static str) -> Self {
        Col {
            header,
            right: false,
            grow: false,
        }
    }
    pub(crate) const fn right(header: &'static str) -> Self {
        Col {
            header,
            right: true,
            grow: false,
        }
    }
    pub(crate) const fn grow(header: &'static str) -> Self {
        Col {
            header,
            right: false,
            grow: true,
        }
    }
}

/// Widths for columns that need `need[i]` cells and can live with
/// `least[i]`, in `avail` cells (spacing already taken off). What fits gets
/// what it needs and the spare goes to the `grow` column, else the widest;
/// when it does not fit, the widest column gives up a cell, then the
/// widest again, down to each one's least. If the leasts do not fit either,
/// the widest gives again below its least, down to its `floor` (a number's
/// floor is its width: it is never cut; past the floors the table cuts at
/// its right edge).
pub(crate) fn allocate(
    need: &[usize],
    least: &[usize],
    floor: &[usize],
    grow: Option<usize>,
    avail: usize,
) -> Vec<usize> {
    let least: Vec<usize> = least.iter().zip(need).map(|(l, n)| (*l).min(*n)).collect();
    let mut w = need.to_vec();
    let total: usize = w.iter().sum();
    if total <= avail {
        let spare = avail - total;
        let to = grow.or_else(|| {
            w.iter()
                .enumerate()
                .max_by_key(|(i, x)| (**x, std::cmp::Reverse(*i)))
                .map(|(i, _)| i)
        });
        if let Some(i) = to.filter(|i| *i < w.len()) {
            w[i] += spare;
        }
        return w;
    }
    let mut over = total - avail;
    // First down to each one's least; if the leasts do not fit either,
    // the widest gives again, below its least down to its floor, rather
    // than the table cutting off its last columns.
    let floor: Vec<usize> = floor
        .iter()
        .zip(&least)
        .map(|(f, l)| (*f).min(*l))
        .collect();
    for floor in [least.clone(), floor] {
        while over > 0 {
            // The widest column that can still give.
            let Some(i) = (0..w.len())
                .filter(|&i| w[i] > floor[i])
                .max_by_key(|&i| (w[i], std::cmp::Reverse(i)))
            else {
                break;
            };
            w[i] -= 1;
            over -= 1;
        }
    }
    w
}

/// A table laid out to `width` cells: the constraints and the rows, each
/// cell shortened to its column. `marker` is the width of the selection
/// symbol the table draws before its rows; the spacing is ratatui's one
/// cell between columns.
pub(crate) struct Laid<'a> {
    pub widths: Vec<Constraint>,
    pub header: Row<'a>,
    pub rows: Vec<Row<'a>>,
}

pub(crate) fn lay_out<'a>(
    cols: &[Col],
    rows: Vec<Vec<(Fit, Style)>>,
    width: u16,
    marker: u16,
    header_style: Style,
) -> Laid<'a> {
    let n = cols.len();
    let spacing = n.saturating_sub(1);
    let avail = (width as usize).saturating_sub(marker as usize + spacing);
    let mut need: Vec<usize> = cols.iter().map(|c| self::width(c.header)).collect();
    // A header may be cut to what its values need, never below 3 cells.
    let mut least: Vec<usize> = cols.iter().map(|c| self::width(c.header).min(3)).collect();
    for row in &rows {
        for (i, (fit, _)) in row.iter().enumerate().take(n) {
            need[i] = need[i].max(fit.need());
            least[i] = least[i].max(fit.least());
        }
    }
    // Free text (a reason, an error) asks for little and takes the spare:
    // it gives way before the values that tell rows apart.
    let grow = cols.iter().position(|c| c.grow);
    if let Some(g) = grow {
        need[g] = need[g].min(GROW_ASKS).max(least[g]);
    }
    // Short of room, a column that has a shorter way to say the same
    // ("pending" for "reindex_pending") says it before any value is cut,
    // the biggest saving first; a saving of a cell or two is not worth
    // the words.
    let mut over = need.iter().sum::<usize>().saturating_sub(avail);
    let mut cheap: Vec<(usize, usize)> = (0..n)
        .filter(|&i| {
            rows.iter()
                .all(|r| matches!(r.get(i), Some((Fit::Choices(_) | Fit::Whole(_), _))))
        })
        .map(|i| (i, need[i].saturating_sub(least[i])))
        .filter(|(_, saving)| *saving >= 4)
        .collect();
    cheap.sort_by_key(|(i, saving)| (std::cmp::Reverse(*saving), *i));
    for (i, saving) in cheap {
        if over == 0 {
            break;
        }
        need[i] = least[i];
        over = over.saturating_sub(saving);
    }
    // Below its least only text that can be cut; a number or a code never.
    let floor: Vec<usize> = (0..n)
        .map(|i| {
            let hard = rows
                .iter()
                .any(|r| matches!(r.get(i), Some((Fit::Whole(_) | Fit::Number(_), _))));
            if hard { least[i] } else { 1 }
        })
        .collect();
    let w = allocate(&need, &least, &floor, grow, avail);
    let header = Row::new(cols.iter().zip(&w).map(|(c, &w)| {
        let h = end(c.header, w);
        Cell::from(if c.right { format!("{h:>w$}") } else { h })
    }))
    .style(header_style);
    let rows =
        rows.into_iter()
            .map(|r| {
                Row::new(r.into_iter().zip(&w).map(|((fit, style), &w)| {
                    Cell::from(Line::from(Span::styled(fit.fit(w), style)))
                }))
            })
            .collect();
    Laid {
        widths: w.iter().map(|&w| Constraint::Length(w as u16)).collect(),
        header,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_loses_nothing_and_keeps_words_whole() {
        let text = "title company closing sales today; their escrow desk cannot reach clients";
        let lines = wrap(text, 20);
        assert!(lines.iter().all(|l| width(l) <= 20), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        assert_eq!(lines[0], "title company");
        let long = wrap("a dovecot.index.log.corrupted.file here", 10);
        assert!(long.iter().all(|l| width(l) <= 10), "{long:?}");
        assert_eq!(
            long.concat().replace(' ', ""),
            "adovecot.index.log.corrupted.filehere"
        );
        assert_eq!(wrap("", 5), [""]);
    }

    #[test]
    fn the_middle_of_a_long_domain_gives_way() {
        assert_eq!(
            middle("derby-yellowstone-law.example", 40),
            "derby-yellowstone-law.example"
        );
        let m = middle("derby-yellowstone-law.example", 20);
        assert_eq!(m, "derby-yell…w.example");
        assert_eq!(width(&m), 20);
        assert!(m.starts_with("derby") && m.ends_with(".example"));
    }

    #[test]
    fn an_address_keeps_its_local_part_and_shortens_its_domain() {
        let a = "grace.smith@derby-yellowstone-law.example";
        let short = address(a, 28);
        assert_eq!(short, "grace.smith@derby-ye…example");
        assert_eq!(width(&short), 28);
        // Six rows of one tenant stay told apart.
        let b = address("heidi.smith@derby-yellowstone-law.example", 28);
        assert_ne!(short, b);
        assert!(b.starts_with("heidi.smith@"));
        // No room for the local part: the middle of the whole.
        let tiny = address(a, 12);
        assert_eq!(width(&tiny), 12);
        assert!(
            tiny.starts_with("grace") && tiny.ends_with("mple"),
            "{tiny}"
        );
    }

    #[test]
    fn shortening_counts_terminal_cells_not_bytes() {
        assert_eq!(end("ééééé", 3), "éé…");
        let cjk = middle("日本語のドメイン.example", 11);
        assert!((10..=11).contains(&width(&cjk)), "{cjk}");
        assert_eq!(end("abc", 0), "");
    }

    #[test]
    fn columns_get_what_they_need_and_the_spare_goes_to_the_widest() {
        // name 30, domain 25, count 5: 100 cells.
        let w = allocate(&[30, 25, 5], &[8, 8, 5], &[1, 1, 5], None, 100);
        assert_eq!(w, [70, 25, 5]);
        // A free-text column takes the spare when there is one.
        let w = allocate(&[30, 25, 5], &[8, 8, 5], &[1, 1, 5], Some(1), 100);
        assert_eq!(w, [30, 65, 5]);
    }

    #[test]
    fn when_short_of_room_the_widest_gives_first_and_numbers_never() {
        // 60 needed, 50 available: the 30 gives until it meets the 25,
        // then both give alike; the number keeps its 5.
        let w = allocate(&[30, 25, 5], &[8, 8, 5], &[1, 1, 5], None, 50);
        assert_eq!(w.iter().sum::<usize>(), 50);
        assert_eq!(w[2], 5);
        assert!(w[0].abs_diff(w[1]) <= 1, "{w:?}");
        // Below the leasts only when they do not fit: the widest again.
        let w = allocate(&[30, 25, 5], &[8, 8, 5], &[1, 1, 5], None, 19);
        assert_eq!(w.iter().sum::<usize>(), 19);
        assert_eq!(w[2], 5, "{w:?}");
    }

    #[test]
    fn a_choice_shows_the_longest_form_that_fits() {
        let eta = Fit::Choices(vec![
            "Oct 08 04:40–Oct 09 01:10".into(),
            "04:40+1d–01:10+2d".into(),
        ]);
        assert_eq!(eta.need(), 25);
        assert_eq!(eta.least(), 17);
        assert_eq!(eta.fit(30), "Oct 08 04:40–Oct 09 01:10");
        assert_eq!(eta.fit(18), "04:40+1d–01:10+2d");
        assert_eq!(Fit::Number("1,234".into()).fit(8), "   1,234");
    }

    #[test]
    fn a_laid_out_table_fills_the_width_it_is_given() {
        let rows = vec![vec![
            (
                Fit::End("Derby Yellowstone Law GmbH".into()),
                Style::default(),
            ),
            (
                Fit::Middle("derby-yellowstone-law.example".into()),
                Style::default(),
            ),
            (Fit::Number("2,882".into()), Style::default()),
        ]];
        let cols = [
            Col::new("tenant"),
            Col::new("domain"),
            Col::right("affected"),
        ];
        let laid = lay_out(&cols, rows, 40, 1, Style::default());
        let total: u16 = laid
            .widths
            .iter()
            .map(|c| match c {
                Constraint::Length(n) => *n,
                _ => 0,
            })
            .sum();
        assert_eq!(total, 40 - 1 - 2);
    }
}
