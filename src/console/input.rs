//! The one text input every form types into: the lookup query, the
//! priority form's reason, the composer's fields, the command palette and
//! the filter. A key is either typed (a character without ctrl or alt,
//! backspace, enter in a text of several lines) or left to the keymap, so
//! typing works the same everywhere and the keymap cannot take a letter
//! away from a text (`keymap::Key::is_typed`).

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::keymap::Key;

/// How much a text takes, and whether enter starts a new line in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Input {
    pub max_chars: usize,
    pub max_bytes: usize,
    pub lines: bool,
}

/// What a key did to the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Typed {
    /// The text changed.
    Changed,
    /// A character that does not fit: the text is full.
    Full,
    /// Backspace on an empty text.
    Empty,
    /// Not a typing key: the keymap's to handle.
    Pass,
}

impl Input {
    /// One line of at most `max_chars` characters.
    pub(super) const fn chars(max_chars: usize) -> Self {
        Input {
            max_chars,
            max_bytes: usize::MAX,
            lines: false,
        }
    }

    /// One line of at most `max_bytes` bytes (what a wire limit counts).
    pub(super) const fn bytes(max_bytes: usize) -> Self {
        Input {
            max_chars: usize::MAX,
            max_bytes,
            lines: false,
        }
    }

    /// Several lines: enter types a new line.
    pub(super) const fn lines(self) -> Self {
        Input {
            lines: true,
            ..self
        }
    }

    fn fits(&self, text: &str, c: char) -> bool {
        text.len().saturating_add(c.len_utf8()) <= self.max_bytes
            && text.chars().count() < self.max_chars
    }

    /// Applies `k` to `text` if it is a typing key.
    pub(super) fn key(&self, text: &mut String, k: &KeyEvent) -> Typed {
        let typed = match k.code {
            KeyCode::Enter if self.lines => Some('\n'),
            KeyCode::Char(c) if Key::from_event(k).is_typed() && !c.is_control() => Some(c),
            KeyCode::Backspace if Key::from_event(k).is_typed() => {
                return if text.pop().is_some() {
                    Typed::Changed
                } else {
                    Typed::Empty
                };
            }
            _ => None,
        };
        match typed {
            Some(c) if self.fits(text, c) => {
                text.push(c);
                Typed::Changed
            }
            Some(_) => Typed::Full,
            None => Typed::Pass,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyModifiers;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn characters_are_typed_and_ctrl_or_alt_keys_are_left_to_the_keymap() {
        let mut t = String::new();
        let input = Input::chars(10);
        let plain = |c| key(KeyCode::Char(c), KeyModifiers::NONE);
        assert_eq!(input.key(&mut t, &plain('a')), Typed::Changed);
        assert_eq!(
            input.key(&mut t, &key(KeyCode::Char('B'), KeyModifiers::SHIFT)),
            Typed::Changed
        );
        assert_eq!(
            input.key(&mut t, &key(KeyCode::Char('y'), KeyModifiers::CONTROL)),
            Typed::Pass
        );
        assert_eq!(
            input.key(&mut t, &key(KeyCode::Char('x'), KeyModifiers::ALT)),
            Typed::Pass
        );
        assert_eq!(
            input.key(&mut t, &key(KeyCode::Enter, KeyModifiers::NONE)),
            Typed::Pass,
            "enter is the keymap's in one line"
        );
        assert_eq!(t, "aB");
        let back = key(KeyCode::Backspace, KeyModifiers::NONE);
        assert_eq!(input.key(&mut t, &back), Typed::Changed);
        assert_eq!(input.key(&mut t, &back), Typed::Changed);
        assert_eq!(input.key(&mut t, &back), Typed::Empty);
    }

    #[test]
    fn a_full_text_takes_no_more_and_says_so() {
        let mut t = String::new();
        let by_chars = Input::chars(2);
        for c in ['é', 'é'] {
            assert_eq!(
                by_chars.key(&mut t, &key(KeyCode::Char(c), KeyModifiers::NONE)),
                Typed::Changed
            );
        }
        assert_eq!(
            by_chars.key(&mut t, &key(KeyCode::Char('x'), KeyModifiers::NONE)),
            Typed::Full
        );
        let mut t = String::from("ab");
        // Three bytes: 'é' (two) does not fit after "ab".
        let by_bytes = Input::bytes(3);
        assert_eq!(
            by_bytes.key(&mut t, &key(KeyCode::Char('é'), KeyModifiers::NONE)),
            Typed::Full
        );
        assert_eq!(
            by_bytes.key(&mut t, &key(KeyCode::Char('c'), KeyModifiers::NONE)),
            Typed::Changed
        );
        assert_eq!(t, "abc");
    }

    #[test]
    fn enter_starts_a_new_line_only_in_a_text_of_several_lines() {
        let mut t = String::from("a");
        let body = Input::chars(100).lines();
        assert_eq!(
            body.key(&mut t, &key(KeyCode::Enter, KeyModifiers::NONE)),
            Typed::Changed
        );
        assert_eq!(t, "a\n");
    }
}
