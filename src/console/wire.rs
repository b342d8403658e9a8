//! The bytes the console puts on the wire: a ratatui backend that writes
//! the same cells as ratatui's crossterm backend in fewer bytes, for SSH
//! sessions on slow links.
//!
//! ratatui already sends only the cells that changed. What it spends on
//! each changed run is the escape sequences around it, and mid-incident
//! those were 86% of the bytes (`scripts/measure-terminal --dump`): an
//! absolute cursor move per run (`ESC[31;78H`) and colour changes spelt
//! as 256-colour codes, undone field by field (`ESC[1m ESC[38;5;1;49m` …
//! `ESC[22m ESC[39;49m`). This backend writes instead:
//!
//! - the shortest move from where the cursor is: forward in the row
//!   (`ESC[5C`), to a column (`ESC[78G`, or CR for the first), down by line
//!   feeds or `ESC[2B`, or absolute; the column is set absolutely after a
//!   line feed and after any non-ASCII character, whose width the terminal
//!   may count differently;
//! - a gap of up to three unchanged cells rewritten from what the screen
//!   holds, when that is shorter than moving over it;
//! - one SGR per style change, with the 16 basic colours as `31`/`91`
//!   (what palette entries 0–15 are), and a plain cell reached by `ESC[m`
//!   when that is shorter than undoing attribute by attribute;
//! - the cursor hidden once, not on every frame.
//!
//! Every other call (cursor, clear, size) is crossterm's. Control
//! characters that would reach a cell anyway are drawn as `?`: backend data
//! is sanitised before it is laid out, this is the last gate. The test
//! below checks, on random frames, that a terminal emulator fed these bytes
//! shows exactly what one fed crossterm's shows.

use std::io::{self, Write};

use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use ratatui::style::{Color, Modifier};

pub struct WireBackend<W: Write> {
    inner: CrosstermBackend<W>,
    out: Vec<u8>,
    screen: Screen,
    cursor_hidden: bool,
}

impl<W: Write> WireBackend<W> {
    pub fn new(writer: W) -> Self {
        WireBackend {
            inner: CrosstermBackend::new(writer),
            out: Vec::with_capacity(16 * 1024),
            screen: Screen::unknown(0, 0),
            cursor_hidden: false,
        }
    }

    /// The screen as it is now: unknown cells unless just cleared.
    fn resync(&mut self, cleared: bool) {
        let size = self.inner.size().unwrap_or_default();
        self.screen = Screen::unknown(size.width, size.height);
        if cleared {
            self.screen.blank();
        }
    }
}

/// What the terminal's pen holds.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Pen {
    fg: Color,
    bg: Color,
    underline: Color,
    modifier: Modifier,
}

impl Pen {
    const PLAIN: Pen = Pen {
        fg: Color::Reset,
        bg: Color::Reset,
        underline: Color::Reset,
        modifier: Modifier::empty(),
    };

    fn of(cell: &Cell) -> Pen {
        Pen {
            fg: cell.fg,
            bg: cell.bg,
            underline: cell.underline_color,
            modifier: cell.modifier,
        }
    }
}

/// Where the cursor is, as far as this draw knows.
#[derive(Clone, Copy)]
struct Cursor {
    x: u16,
    y: u16,
    /// False after a character whose width the terminal may count
    /// differently (anything not ASCII), or at the right margin.
    column_sure: bool,
}

/// The SGR parameters of a modifier: (set, unset). Bold and dim share
/// their unset (22).
const MODIFIERS: [(Modifier, u8, u8); 9] = [
    (Modifier::BOLD, 1, 22),
    (Modifier::DIM, 2, 22),
    (Modifier::ITALIC, 3, 23),
    (Modifier::UNDERLINED, 4, 24),
    (Modifier::SLOW_BLINK, 5, 25),
    (Modifier::RAPID_BLINK, 6, 25),
    (Modifier::REVERSED, 7, 27),
    (Modifier::HIDDEN, 8, 28),
    (Modifier::CROSSED_OUT, 9, 29),
];

/// Palette entry of ratatui's named colours (what crossterm sends them as).
fn palette(c: Color) -> Option<u8> {
    Some(match c {
        Color::Black => 0,
        Color::Red => 1,
        Color::Green => 2,
        Color::Yellow => 3,
        Color::Blue => 4,
        Color::Magenta => 5,
        Color::Cyan => 6,
        Color::Gray => 7,
        Color::DarkGray => 8,
        Color::LightRed => 9,
        Color::LightGreen => 10,
        Color::LightYellow => 11,
        Color::LightBlue => 12,
        Color::LightMagenta => 13,
        Color::LightCyan => 14,
        Color::White => 15,
        Color::Indexed(n) => n,
        Color::Reset | Color::Rgb(..) => return None,
    })
}

/// SGR parameters for a colour; `base` is 30 (foreground), 40
/// (background) or 50 (underline, which has no short forms).
fn colour(params: &mut Vec<String>, c: Color, base: u8) {
    match (c, palette(c)) {
        (Color::Reset, _) => params.push((base + 9).to_string()),
        (Color::Rgb(r, g, b), _) => params.push(format!("{};2;{r};{g};{b}", base + 8)),
        (_, Some(n)) if n < 8 && base != 50 => params.push((base + n).to_string()),
        (_, Some(n)) if n < 16 && base != 50 => params.push((base + 60 + n - 8).to_string()),
        (_, Some(n)) => params.push(format!("{};5;{n}", base + 8)),
        (_, None) => {}
    }
}

/// The SGR parameters that take the pen from `from` to `to`, attribute
/// by attribute.
fn changes(from: Pen, to: Pen) -> Vec<String> {
    let mut p = Vec::new();
    // What the unset codes sent clear: 22 clears bold and dim together, 25
    // both blinks, so what stays of them is set again below.
    let mut lost = Modifier::empty();
    for (m, _, off) in MODIFIERS {
        if (from.modifier - to.modifier).contains(m) && !lost.contains(m) {
            p.push(off.to_string());
            for (shared, _, o) in MODIFIERS {
                if o == off {
                    lost |= shared;
                }
            }
        }
    }
    let set = to.modifier - (from.modifier - lost);
    for (m, on, _) in MODIFIERS {
        if set.contains(m) {
            p.push(on.to_string());
        }
    }
    if from.fg != to.fg {
        colour(&mut p, to.fg, 30);
    }
    if from.bg != to.bg {
        colour(&mut p, to.bg, 40);
    }
    if from.underline != to.underline {
        colour(&mut p, to.underline, 50);
    }
    p
}

/// The SGR parameters that draw `to` from a reset pen: `ESC[m` alone for
/// the plain pen.
fn from_plain(to: Pen) -> Vec<String> {
    let mut p = changes(Pen::PLAIN, to);
    p.insert(0, if p.is_empty() { "" } else { "0" }.to_string());
    p
}

fn sgr(out: &mut Vec<u8>, from: Pen, to: Pen) {
    let a = changes(from, to);
    let b = from_plain(to);
    let len = |p: &[String]| p.iter().map(|s| s.len() + 1).sum::<usize>();
    let best = if len(&b) < len(&a) { b } else { a };
    out.extend_from_slice(b"\x1b[");
    out.extend_from_slice(best.join(";").as_bytes());
    out.push(b'm');
}

fn csi(out: &mut Vec<u8>, n: u32, f: u8, one_is_default: bool) {
    out.extend_from_slice(b"\x1b[");
    if !(one_is_default && n == 1) {
        out.extend_from_slice(n.to_string().as_bytes());
    }
    out.push(f);
}

/// The shortest way to column `x` in the cursor's row, from column
/// `from` if the cursor's column is known.
fn column(out: &mut Vec<u8>, from: Option<u16>, x: u16) {
    if from == Some(x) {
        return;
    }
    if x == 0 {
        out.push(b'\r');
        return;
    }
    let mut best = Vec::new();
    csi(&mut best, u32::from(x) + 1, b'G', true);
    if let Some(c) = from.filter(|&c| c < x) {
        let mut fwd = Vec::new();
        csi(&mut fwd, u32::from(x - c), b'C', true);
        if fwd.len() < best.len() {
            best = fwd;
        }
    }
    out.extend_from_slice(&best);
}

/// The shortest move from `from` (if known) to `(x, y)`: absolute, or
/// relative (line feeds or `ESC[nB` down, `ESC[nA` up, then a column).
/// After a line feed the column is not trusted (a terminal in newline
/// mode also returns the carriage), so the column is set absolutely.
fn move_to(out: &mut Vec<u8>, from: Option<Cursor>, x: u16, y: u16) {
    let (x1, y1) = (u32::from(x) + 1, u32::from(y) + 1);
    let mut best = Vec::new();
    // Absolute: ESC[row;colH, with row or col left out when 1.
    best.extend_from_slice(b"\x1b[");
    if y1 != 1 {
        best.extend_from_slice(y1.to_string().as_bytes());
    }
    if x1 != 1 {
        best.push(b';');
        best.extend_from_slice(x1.to_string().as_bytes());
    }
    best.push(b'H');
    let Some(c) = from else {
        out.extend_from_slice(&best);
        return;
    };
    let sure = c.column_sure.then_some(c.x);
    let mut tries = Vec::new();
    if c.y == y {
        let mut t = Vec::new();
        column(&mut t, sure, x);
        tries.push(t);
    } else if c.y > y {
        let mut t = Vec::new();
        csi(&mut t, u32::from(c.y - y), b'A', true);
        column(&mut t, sure, x);
        tries.push(t);
    } else {
        let mut t = Vec::new();
        csi(&mut t, u32::from(y - c.y), b'B', true);
        column(&mut t, sure, x);
        tries.push(t);
        // A line feed never scrolls here: the cursor is above `y`.
        let mut t = vec![b'\n'; usize::from(y - c.y)];
        column(&mut t, None, x);
        tries.push(t);
    }
    for t in tries {
        if t.len() < best.len() {
            best = t;
        }
    }
    out.extend_from_slice(&best);
}

/// What the terminal shows, as far as this backend wrote it: per cell the
/// byte when it is one printable ASCII character (0 when unknown or
/// anything else) and its pen. Short gaps between changed cells are
/// rewritten from it when that is cheaper than moving over them.
pub(crate) struct Screen {
    width: u16,
    cells: Vec<(u8, Pen)>,
}

/// Gaps up to this many cells may be rewritten instead of skipped
/// (`ESC[3C` is four bytes).
const MAX_FILL: u16 = 3;

impl Screen {
    pub(crate) fn unknown(width: u16, height: u16) -> Screen {
        Screen {
            width,
            cells: vec![(0, Pen::PLAIN); usize::from(width) * usize::from(height)],
        }
    }

    /// After the terminal was cleared: every cell a plain blank.
    fn blank(&mut self) {
        self.cells.fill((b' ', Pen::PLAIN));
    }

    fn at(&mut self, x: u16, y: u16) -> Option<&mut (u8, Pen)> {
        if x >= self.width {
            return None;
        }
        self.cells
            .get_mut(usize::from(y) * usize::from(self.width) + usize::from(x))
    }

    /// The bytes that redraw `[from, to)` of row `y` as it is, if every
    /// cell there is a known ASCII character drawn with `pen`.
    fn gap(&self, y: u16, from: u16, to: u16, pen: Pen) -> Option<Vec<u8>> {
        let row = usize::from(y) * usize::from(self.width);
        let cells = self
            .cells
            .get(row + usize::from(from)..row + usize::from(to))?;
        cells
            .iter()
            .map(|&(b, p)| (b != 0 && p == pen).then_some(b))
            .collect()
    }

    /// Writes `cells` (ratatui's diff: position and content) as terminal
    /// bytes into `out`; the pen is plain before and after.
    fn encode<'a>(&mut self, out: &mut Vec<u8>, cells: impl Iterator<Item = (u16, u16, &'a Cell)>) {
        let mut pen = Pen::PLAIN;
        let mut cursor: Option<Cursor> = None;
        for (x, y, cell) in cells {
            match cursor {
                Some(c) if c.x == x && c.y == y => {}
                Some(c) if c.y == y && c.column_sure && c.x < x && x - c.x <= MAX_FILL => {
                    match self.gap(y, c.x, x, pen) {
                        Some(bytes) => out.extend_from_slice(&bytes),
                        None => move_to(out, cursor, x, y),
                    }
                }
                _ => move_to(out, cursor, x, y),
            }
            let want = Pen::of(cell);
            if want != pen {
                sgr(out, pen, want);
                pen = want;
            }
            let symbol = cell.symbol();
            let mut ascii = true;
            for ch in symbol.chars() {
                if ch.is_control() {
                    out.push(b'?');
                } else {
                    ascii &= ch.is_ascii();
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
            }
            let w = ratatui::text::Span::raw(symbol).width().max(1) as u16;
            let byte = match symbol.as_bytes() {
                [b] if (0x20..0x7f).contains(b) => *b,
                _ => 0,
            };
            if let Some(c) = self.at(x, y) {
                *c = (byte, pen);
            }
            for hidden in 1..w {
                if let Some(c) = self.at(x.saturating_add(hidden), y) {
                    *c = (0, pen);
                }
            }
            let nx = x.saturating_add(w);
            cursor = Some(Cursor {
                x: nx,
                y,
                column_sure: ascii && nx < self.width,
            });
        }
        if pen != Pen::PLAIN {
            out.extend_from_slice(b"\x1b[m");
        }
    }
}

impl<W: Write> Backend for WireBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        // The copy of the screen is sized when the screen is cleared, which
        // ratatui does on every resize: no size query per frame.
        self.out.clear();
        self.screen.encode(&mut self.out, content);
        self.inner.write_all(&self.out)
    }

    /// Hiding a hidden cursor again would cost six bytes a frame.
    fn hide_cursor(&mut self) -> io::Result<()> {
        if self.cursor_hidden {
            return Ok(());
        }
        self.cursor_hidden = true;
        self.inner.hide_cursor()
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        self.cursor_hidden = false;
        self.inner.show_cursor()
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        self.inner.get_cursor_position()
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        self.inner.set_cursor_position(position)
    }

    fn clear(&mut self) -> io::Result<()> {
        self.clear_region(ClearType::All)
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.inner.clear_region(clear_type)?;
        self.resync(clear_type == ClearType::All);
        Ok(())
    }

    fn size(&self) -> io::Result<Size> {
        self.inner.size()
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> io::Result<()> {
        Backend::flush(&mut self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    use crate::sources::simulator::rng::Rng;

    /// Deterministic pseudo-random numbers: the simulator's generator.
    struct Mix(Rng);
    impl Mix {
        fn below(&mut self, n: u64) -> u64 {
            self.0.next_u64() % n
        }
    }

    const COLOURS: [Color; 8] = [
        Color::Reset,
        Color::Red,
        Color::LightCyan,
        Color::DarkGray,
        Color::Indexed(3),
        Color::Indexed(12),
        Color::Indexed(200),
        Color::Rgb(1, 2, 3),
    ];
    const MODS: [Modifier; 6] = [
        Modifier::BOLD,
        Modifier::DIM,
        Modifier::ITALIC,
        Modifier::UNDERLINED,
        Modifier::REVERSED,
        Modifier::empty(),
    ];
    const WORDS: [&str; 8] = [
        "2,880",
        "▶P2",
        "Acme",
        "│",
        "█▇▆",
        "10:41–17:51",
        "漢字",
        "é ",
    ];

    fn random_style(r: &mut Mix) -> Style {
        // Each stroke sets the whole style of its cells (modifiers are not
        // added to what the cell had).
        let mut s = Style::new()
            .remove_modifier(Modifier::all())
            .fg(COLOURS[r.below(8) as usize])
            .bg(COLOURS[r.below(8) as usize]);
        for _ in 0..r.below(3) {
            s = s.add_modifier(MODS[r.below(6) as usize]);
        }
        // Terminals disagree on bold and dim together (vt100 keeps one);
        // the console never asks for both.
        if s.add_modifier.contains(Modifier::BOLD) {
            s = s.remove_modifier(Modifier::DIM);
        }
        s
    }

    fn scribble(buf: &mut Buffer, r: &mut Mix, strokes: u64) {
        let area = buf.area;
        for _ in 0..strokes {
            let x = r.below(u64::from(area.width)) as u16;
            let y = r.below(u64::from(area.height)) as u16;
            let word = WORDS[r.below(8) as usize];
            let style = random_style(r);
            buf.set_stringn(x, y, word, usize::from(area.width - x), style);
        }
    }

    /// What a terminal shows in every cell: text, colours, attributes.
    fn screen(term: &vt100::Parser) -> Vec<String> {
        let (rows, cols) = term.screen().size();
        let mut cells = Vec::new();
        for y in 0..rows.get() {
            for x in 0..cols.get() {
                let c = term.screen().cell(y, x).expect("cell on screen");
                let text = match c.contents() {
                    " " => "",
                    t => t,
                };
                cells.push(format!(
                    "{x},{y} {text:?} {:?} {:?} b{} d{} i{} u{} r{}",
                    c.fgcolor(),
                    c.bgcolor(),
                    c.bold(),
                    c.dim(),
                    c.italic(),
                    c.underline(),
                    c.inverse()
                ));
            }
        }
        cells
    }

    fn bytes_of<'a>(
        screen: &mut Screen,
        cells: impl Iterator<Item = (u16, u16, &'a Cell)>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        screen.encode(&mut out, cells);
        out
    }

    fn blank(width: u16, height: u16) -> Screen {
        let mut s = Screen::unknown(width, height);
        s.blank();
        s
    }

    /// Random frames with every colour kind, attribute, wide and
    /// box-drawing characters: after each diff, a terminal fed this
    /// backend's bytes shows exactly what one fed crossterm's shows.
    #[test]
    fn a_terminal_shows_the_same_as_with_crossterms_bytes_after_every_diff() {
        let area = Rect::new(0, 0, 37, 9);
        let vt = || {
            vt100::Parser::new(
                area.height.try_into().expect("rows"),
                area.width.try_into().expect("columns"),
                0,
            )
        };
        for case in 0..300 {
            let mut r = Mix(Rng::new(case));
            let (mut ours, mut theirs) = (vt(), vt());
            let mut wire = blank(area.width, area.height);
            let mut shown = Buffer::empty(area);
            for frame in 0..4 {
                let mut next = shown.clone();
                let strokes = 1 + r.below(12);
                scribble(&mut next, &mut r, strokes);
                let diff = shown.diff(&next);
                ours.process(&bytes_of(&mut wire, diff.iter().copied()));
                let mut bytes = Vec::new();
                CrosstermBackend::new(&mut bytes)
                    .draw(diff.into_iter())
                    .expect("draw");
                theirs.process(&bytes);
                let (a, b) = (screen(&ours), screen(&theirs));
                for (a, b) in a.iter().zip(&b) {
                    assert_eq!(a, b, "case {case}, frame {frame}");
                }
                shown = next;
            }
        }
    }

    /// Unsetting bold also unsets dim (one code, 22): dim is set again.
    /// (Not in the emulator test: terminals disagree on bold with dim.)
    #[test]
    fn a_shared_unset_code_sets_again_what_stays() {
        let pen = |modifier| Pen {
            modifier,
            ..Pen::PLAIN
        };
        let to_dim = changes(pen(Modifier::BOLD | Modifier::DIM), pen(Modifier::DIM));
        assert_eq!(to_dim, ["22", "2"]);
        let blinks = Modifier::SLOW_BLINK | Modifier::RAPID_BLINK;
        let to_rapid = changes(pen(blinks), pen(Modifier::RAPID_BLINK));
        assert_eq!(to_rapid, ["25", "6"]);
    }

    #[test]
    fn control_characters_in_a_cell_reach_the_terminal_as_question_marks() {
        // ratatui's own diff refuses such cells (a debug assertion), so
        // they are handed over as a diff directly.
        let cells: Vec<Cell> = ["\x1b", "\u{9b}", "\x07"].map(Cell::new).into();
        let out = bytes_of(
            &mut blank(10, 1),
            cells.iter().enumerate().map(|(x, c)| (x as u16, 0, c)),
        );
        assert!(!out.contains(&0x07), "{out:?}");
        assert_eq!(
            out.iter().filter(|&&b| b == 0x1b).count(),
            1,
            "only the move: {out:?}"
        );
        assert!(String::from_utf8_lossy(&out).ends_with("???"), "{out:?}");
    }

    /// A mid-incident tick on the tenants table: in each of 20 rows the
    /// affected count (bold red), restored, queued and the ETA change a
    /// digit or two.
    #[test]
    fn a_tick_on_the_tenants_table_costs_under_60_percent_of_crosstermss_bytes() {
        let area = Rect::new(0, 0, 120, 40);
        let row = |buf: &mut Buffer, y: u16, n: u32| {
            let plain = Style::new();
            let alarm = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
            buf.set_string(
                1,
                y,
                format!(" P2  Tenant {y:<20} domain-{y}.com  A  {:>9}", 3348),
                plain,
            );
            buf.set_string(58, y, format!("{:>8}", 2880 - n), alarm);
            buf.set_string(
                66,
                y,
                format!(
                    "  86%  {:>8} {:>8} 10:{:02}–17:{:02}",
                    39 + n,
                    26400 - 7 * n,
                    41 - n,
                    51 - n
                ),
                plain,
            );
        };
        let mut before = Buffer::empty(area);
        let mut after = Buffer::empty(area);
        for y in 18..38 {
            row(&mut before, y, 0);
            row(&mut after, y, 1);
        }
        let diff = before.diff(&after);
        let ours = bytes_of(&mut blank(120, 40), diff.iter().copied());
        let mut theirs = Vec::new();
        CrosstermBackend::new(&mut theirs)
            .draw(diff.into_iter())
            .expect("draw");
        let theirs = theirs.len();
        assert!(
            ours.len() * 100 < theirs * 60,
            "ours {} bytes, crossterm's {theirs}: {}",
            ours.len(),
            String::from_utf8_lossy(&ours).escape_debug()
        );
    }
}
