//! Key bindings: every action has a name, every binding lives in a TOML
//! keymap (three are shipped and embedded: default, vim, emacs), and a user
//! keymap overrides single actions. Help and footer hints are generated from
//! the active keymap, so a remapped key shows where the user looks.
//!
//! Invalid files are rejected with `file:line:column` and the list of valid
//! names: an unknown context, action or key, or one key bound to two actions
//! in one context (global bindings count in every context).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use toml::Spanned;

mod actions;
pub use actions::{Action, Context};

/// One key with its modifiers, normalised so that "G" and "shift-g" are the
/// same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

const NAMED: [(&str, KeyCode); 14] = [
    ("enter", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("backspace", KeyCode::Backspace),
    ("space", KeyCode::Char(' ')),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("pgup", KeyCode::PageUp),
    ("pgdn", KeyCode::PageDown),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
];

const NAMED_MORE: [(&str, KeyCode); 2] = [("delete", KeyCode::Delete), ("insert", KeyCode::Insert)];

impl Key {
    fn new(code: KeyCode, mods: KeyModifiers) -> Self {
        // Shift is part of the character itself ('G'); terminals differ in
        // whether they also report the modifier.
        let mut mods = mods & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match code {
            KeyCode::Char(c) => {
                if mods.contains(KeyModifiers::SHIFT) {
                    mods.remove(KeyModifiers::SHIFT);
                    KeyCode::Char(c.to_ascii_uppercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        // ctrl-letters arrive lower-case.
        let code = match code {
            KeyCode::Char(c) if mods.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            c => c,
        };
        Key { code, mods }
    }

    pub fn from_event(e: &KeyEvent) -> Self {
        Key::new(e.code, e.modifiers)
    }

    /// Typed into a text: a character without ctrl or alt, or backspace.
    /// Where text is typed such a key edits it and cannot be bound.
    pub fn is_typed(&self) -> bool {
        !self
            .mods
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
            && matches!(self.code, KeyCode::Char(_) | KeyCode::Backspace)
    }

    /// Parses "q", "G", "ctrl-q", "alt-x", "shift-tab", "f5", "pgdn".
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("empty key".into());
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (m, len) = if lower.starts_with("ctrl-") && rest.len() > 5 {
                (KeyModifiers::CONTROL, 5)
            } else if lower.starts_with("alt-") && rest.len() > 4 {
                (KeyModifiers::ALT, 4)
            } else if lower.starts_with("shift-") && rest.len() > 6 {
                (KeyModifiers::SHIFT, 6)
            } else {
                break;
            };
            mods |= m;
            rest = &rest[len..];
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_control() => KeyCode::Char(c),
            _ => {
                let lower = rest.to_ascii_lowercase();
                if let Some((_, c)) = NAMED
                    .iter()
                    .chain(NAMED_MORE.iter())
                    .find(|(n, _)| *n == lower)
                {
                    *c
                } else if let Some(n) = lower.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
                    if (1..=12).contains(&n) {
                        KeyCode::F(n)
                    } else {
                        return Err(format!("unknown key {s:?}: function keys are f1..f12"));
                    }
                } else {
                    return Err(format!(
                        "unknown key {s:?}: use a character, f1..f12 or one of {}, with optional ctrl-, alt-, shift-",
                        NAMED
                            .iter()
                            .chain(NAMED_MORE.iter())
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        };
        if code == KeyCode::Tab && mods.contains(KeyModifiers::SHIFT) {
            return Ok(Key::new(KeyCode::BackTab, mods));
        }
        Ok(Key::new(code, mods))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "f{n}"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            code => {
                let name = NAMED
                    .iter()
                    .chain(NAMED_MORE.iter())
                    .find(|(_, c)| *c == code)
                    .map_or("?", |(n, _)| *n);
                f.write_str(name)
            }
        }
    }
}

/// Every problem in a keymap, in the order found (file order, then
/// conflicts), so one `warroom keymap check` names them all. Derefs to the
/// first, the one a one-line message starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct FileErrors(Vec<FileError>);

impl FileErrors {
    pub fn all(&self) -> &[FileError] {
        &self.0
    }

    /// `Ok` when nothing was found.
    fn check(found: Vec<FileError>) -> Result<(), FileErrors> {
        if found.is_empty() {
            Ok(())
        } else {
            Err(FileErrors(found))
        }
    }
}

impl std::ops::Deref for FileErrors {
    type Target = FileError;
    fn deref(&self) -> &FileError {
        // Never empty: only `check` builds one, from a non-empty list.
        &self.0[0]
    }
}

impl fmt::Display for FileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FileErrors {}

use crate::config::{FileError, SHIPPED_KEYMAPS, line_col};

type RawFile = BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, Spanned<Vec<Spanned<String>>>>>;

/// Where one binding came from, to point at it in a conflict.
#[derive(Debug, Clone)]
struct Origin {
    file: String,
    line: usize,
    column: usize,
}

/// The keys of one action, each with where it was written.
type Located = Vec<(Key, Origin)>;

/// The bindings of one file: (context, action) → keys.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    entries: Vec<(Context, Action, Located)>,
}

/// Parses one keymap file. `file` names it in errors; every problem is
/// reported, not only the first (a bad section or action is skipped and the
/// rest still checked).
pub fn parse(file: &str, text: &str) -> Result<Layer, FileErrors> {
    let err = |span: std::ops::Range<usize>, message: String| {
        FileError::at(file, text, span.start, message)
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        FileErrors(vec![err(
            span,
            format!("not a valid keymap: {}", e.message()),
        )])
    })?;
    let mut found = Vec::new();
    let mut layer = Layer::default();
    for (ctx_name, actions) in raw {
        let Some(ctx) = Context::parse(ctx_name.get_ref()) else {
            found.push(err(
                ctx_name.span(),
                format!(
                    "unknown context [{}]; valid contexts: {}",
                    ctx_name.get_ref(),
                    Context::ALL.map(Context::name).join(", ")
                ),
            ));
            continue;
        };
        for (action_name, keys) in actions {
            let action = Action::parse(action_name.get_ref()).filter(|a| ctx.actions().contains(a));
            let Some(action) = action else {
                found.push(err(
                    action_name.span(),
                    format!(
                        "unknown action {:?} in [{}]; valid actions there: {}",
                        action_name.get_ref(),
                        ctx.name(),
                        ctx.actions()
                            .iter()
                            .map(|a| a.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
                continue;
            };
            let mut parsed = Vec::new();
            for k in keys.get_ref() {
                let key = match Key::parse(k.get_ref()) {
                    Ok(key) if ctx.types() && key.is_typed() => {
                        found.push(err(
                            k.span(),
                            format!(
                                "key {key} cannot be bound in [{}]: text is typed there; \
                                 use a ctrl- or alt- key or a named key (enter, esc, tab, f1…)",
                                ctx.name()
                            ),
                        ));
                        continue;
                    }
                    Ok(key) => key,
                    Err(m) => {
                        found.push(err(k.span(), m));
                        continue;
                    }
                };
                let (line, column) = line_col(text, k.span().start);
                parsed.push((
                    key,
                    Origin {
                        file: file.to_string(),
                        line,
                        column,
                    },
                ));
            }
            layer.entries.push((ctx, action, parsed));
        }
    }
    // In the file's order, whatever order the sections were read in.
    found.sort_by_key(|e| (e.line, e.column));
    FileErrors::check(found)?;
    Ok(layer)
}

/// The active bindings.
#[derive(Debug, Clone)]
pub struct Keymap {
    name: String,
    keys: BTreeMap<(Context, Action), Vec<Key>>,
    lookup: HashMap<(Context, Key), Action>,
}

/// The shipped keymaps' texts, named as the config knows them.
pub const BUILTIN: [(&str, &str); 3] = [
    (
        SHIPPED_KEYMAPS[0],
        include_str!("../../../keymaps/default.toml"),
    ),
    (
        SHIPPED_KEYMAPS[1],
        include_str!("../../../keymaps/vim.toml"),
    ),
    (
        SHIPPED_KEYMAPS[2],
        include_str!("../../../keymaps/emacs.toml"),
    ),
];

/// The text of a shipped keymap, or which names exist.
pub fn builtin_text(name: &str) -> Result<&'static str, String> {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            format!(
                "unknown keymap {name:?}; shipped keymaps: {}",
                builtin_names().join(", ")
            )
        })
}

pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

impl Keymap {
    /// A shipped keymap by name.
    pub fn builtin(name: &str) -> Result<Keymap, String> {
        let text = builtin_text(name)?;
        Keymap::build(name, &[(format!("keymaps/{name}.toml"), text.to_string())])
            .map_err(|e| e.to_string())
    }

    pub fn default_keymap() -> Keymap {
        // The shipped files are checked by a unit test; an error here is a
        // build defect, and an empty keymap would still let ctrl-c quit.
        Keymap::builtin("default").unwrap_or_else(|_| Keymap {
            name: "empty".into(),
            keys: BTreeMap::new(),
            lookup: HashMap::new(),
        })
    }

    /// Layers files in order (later files override whole actions) and checks
    /// that no key does two things in one context.
    pub fn build(name: &str, files: &[(String, String)]) -> Result<Keymap, FileErrors> {
        let mut merged: BTreeMap<(Context, Action), Located> = BTreeMap::new();
        let mut found = Vec::new();
        for (file, text) in files {
            match parse(file, text) {
                Ok(layer) => {
                    for (ctx, action, keys) in layer.entries {
                        merged.insert((ctx, action), keys);
                    }
                }
                Err(e) => found.extend(e.0),
            }
        }
        FileErrors::check(found)?;
        let mut conflicts: Vec<FileError> = Vec::new();
        let mut lookup: HashMap<(Context, Key), (Action, Origin)> = HashMap::new();
        // Global first, so a context binding that shadows it is reported.
        for ctx in Context::ALL {
            for ((c, action), keys) in merged.iter().filter(|((c, _), _)| *c == ctx) {
                for (key, origin) in keys {
                    let contexts: Vec<Context> = if *c == Context::Global {
                        Context::ALL
                            .into_iter()
                            .filter(|t| *t == Context::Global || t.takes_global())
                            .collect()
                    } else {
                        vec![*c]
                    };
                    for target in contexts {
                        if let Some((other, _)) = lookup
                            .get(&(target, *key))
                            .filter(|(other, _)| other != action)
                        {
                            // Once per binding written, not per context
                            // a global binding reaches.
                            let seen = conflicts.iter().any(|e| {
                                (&e.file, e.line, e.column)
                                    == (&origin.file, origin.line, origin.column)
                            });
                            if !seen {
                                conflicts.push(FileError {
                                    file: origin.file.clone(),
                                    line: origin.line,
                                    column: origin.column,
                                    message: format!(
                                        "key {key} is bound to both {:?} and {:?} in [{}]",
                                        other.name(),
                                        action.name(),
                                        target.name()
                                    ),
                                });
                            }
                            continue;
                        }
                        lookup.insert((target, *key), (*action, origin.clone()));
                    }
                }
            }
        }
        FileErrors::check(conflicts)?;
        Ok(Keymap {
            name: name.to_string(),
            keys: merged
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().map(|(key, _)| key).collect()))
                .collect(),
            lookup: lookup.into_iter().map(|(k, (a, _))| (k, a)).collect(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The action for a key in a context (global bindings too, where
    /// `Context::takes_global`).
    pub fn action(&self, ctx: Context, key: &KeyEvent) -> Option<Action> {
        self.lookup.get(&(ctx, Key::from_event(key))).copied()
    }

    pub fn keys(&self, ctx: Context, action: Action) -> &[Key] {
        self.keys.get(&(ctx, action)).map_or(&[], Vec::as_slice)
    }

    /// "q", or "q/ctrl-c"; "unbound" when nothing triggers the action.
    pub fn label(&self, ctx: Context, action: Action) -> String {
        let keys = self.keys(ctx, action);
        if keys.is_empty() {
            "unbound".into()
        } else {
            keys.iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join("/")
        }
    }

    /// The first key only: for the footer.
    pub fn short(&self, ctx: Context, action: Action) -> Option<String> {
        self.keys(ctx, action).first().map(|k| k.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn shipped_keymaps_are_valid_and_complete() {
        for name in builtin_names() {
            let k = Keymap::builtin(name).unwrap();
            for ctx in Context::ALL {
                for a in ctx.actions() {
                    assert!(
                        !k.keys(ctx, *a).is_empty(),
                        "{name}: {} unbound in {}",
                        a.name(),
                        ctx.name()
                    );
                }
            }
        }
    }

    #[test]
    fn keys_parse_and_print() {
        for (s, shown) in [
            ("q", "q"),
            ("G", "G"),
            ("shift-g", "G"),
            ("ctrl-Q", "ctrl-q"),
            ("alt-x", "alt-x"),
            ("shift-tab", "shift-tab"),
            ("f5", "f5"),
            ("pgdn", "pgdn"),
            ("space", "space"),
            (":", ":"),
        ] {
            assert_eq!(Key::parse(s).unwrap().to_string(), shown, "{s}");
        }
        assert!(Key::parse("f13").is_err());
        assert!(Key::parse("hyper-q").unwrap_err().contains("unknown key"));
        assert!(Key::parse("").is_err());
    }

    #[test]
    fn user_override_replaces_one_action_and_global_applies_everywhere() {
        let k = Keymap::build(
            "default",
            &[
                ("default.toml".into(), BUILTIN[0].1.into()),
                ("user.toml".into(), "[global]\nquit = [\"ctrl-q\"]\n".into()),
            ],
        )
        .unwrap();
        let ctrl_q = ev(KeyCode::Char('q'), KeyModifiers::CONTROL);
        assert_eq!(k.action(Context::Tenant, &ctrl_q), Some(Action::Quit));
        assert_eq!(
            k.action(
                Context::Overview,
                &ev(KeyCode::Char('q'), KeyModifiers::NONE)
            ),
            None
        );
        assert_eq!(k.label(Context::Global, Action::Quit), "ctrl-q");
        // Terminals that report shift with an upper-case letter still match.
        assert_eq!(
            k.action(
                Context::Overview,
                &ev(KeyCode::Char('G'), KeyModifiers::SHIFT)
            ),
            Some(Action::Bottom)
        );
    }

    #[test]
    fn errors_name_the_place_and_the_valid_names() {
        let e = parse("k.toml", "[overview]\ndown = [\"j\"]\nfly = [\"x\"]\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 1));
        assert!(e.message.contains("unknown action \"fly\""), "{e}");
        assert!(e.message.contains("page_down"), "lists valid actions: {e}");
        assert!(e.to_string().starts_with("k.toml:3:1: "));

        let e = parse("k.toml", "[overview]\ndown = [\"j\", \"hyper-j\"]\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 14));
        assert!(e.message.contains("unknown key"), "{e}");

        let e = parse("k.toml", "[sidebar]\n").unwrap_err();
        assert!(
            e.message
                .contains("valid contexts: global, overview, tenant, timeline"),
            "{e}"
        );

        let e = parse("k.toml", "[overview\n").unwrap_err();
        assert_eq!(e.line, 1);

        let e = Keymap::build(
            "x",
            &[(
                "k.toml".into(),
                "[overview]\ndown = [\"x\"]\nup = [\"x\"]\n".into(),
            )],
        )
        .unwrap_err();
        assert!(e.message.contains("bound to both"), "{e}");
        assert_eq!(e.line, 3);

        let e = Keymap::build(
            "x",
            &[(
                "k.toml".into(),
                "[global]\nquit = [\"j\"]\n[overview]\ndown = [\"j\"]\n".into(),
            )],
        )
        .unwrap_err();
        assert!(e.message.contains("\"quit\" and \"down\""), "{e}");
    }

    /// One check names every problem in the file, in file order (it used
    /// to stop at the first, so fixing a keymap took one run per mistake).
    #[test]
    fn every_problem_in_a_keymap_is_reported_at_once() {
        let text = "[overview]\ndown = [\"x\"]\nup = [\"x\"]\nfly = [\"f\"]\n\
                    top = [\"hyper-t\"]\n[sidebar]\n[global]\nquit = [\"q\"]\nhelp = [\"q\"]\n";
        let e = parse("k.toml", text).unwrap_err();
        let at: Vec<(usize, usize)> = e.all().iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(at, [(4, 1), (5, 8), (6, 2)], "{e}");
        assert_eq!(e.to_string().lines().count(), 3, "{e}");
        let conflicts = Keymap::build(
            "x",
            &[(
                "k.toml".into(),
                "[overview]\ndown = [\"x\"]\nup = [\"x\"]\n[global]\nquit = [\"q\"]\nhelp = [\"q\"]\n"
                    .into(),
            )],
        )
        .unwrap_err();
        let lines: Vec<usize> = conflicts.all().iter().map(|e| e.line).collect();
        assert_eq!(lines.len(), 2, "one report per binding: {conflicts}");
        assert!(lines.contains(&3) && lines.contains(&6), "{conflicts}");
    }
}
