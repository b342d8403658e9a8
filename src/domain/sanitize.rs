//! Makes untrusted text safe to draw in a terminal.
//!
//! Tenant names, addresses and error strings come from backends and are
//! attacker-influenced. Printed raw, an OSC 52 sequence could rewrite the
//! operator's clipboard and a CSI sequence could clear or forge the screen.
//! Every control character becomes a visible, inert picture (ESC → `␛`), so
//! `"\x1b[2J"` is drawn as the four characters `␛[2J` and does nothing.

use std::borrow::Cow;

fn needs_replacing(c: char) -> bool {
    c.is_control() // C0, DEL and C1 (U+0080..U+009F, which includes 8-bit CSI)
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

fn visible(c: char, out: &mut String) {
    match c {
        '\u{00}'..='\u{1F}' => {
            // U+2400 block: ␀ ␁ … ␛ …
            out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{FFFD}'));
        }
        '\u{7F}' => out.push('\u{2421}'), // ␡
        _ => {
            // C1 controls and bidi overrides: show the code point.
            out.push_str(&format!("<U+{:04X}>", c as u32));
        }
    }
}

/// Returns `s` unchanged when it is clean (no allocation), or a copy with
/// every control character replaced by a visible one.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_replacing) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_replacing(c) {
            visible(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Line breaks a multi-line field (a body, a reason) may hold: `\n`, and
/// `\r` only as part of `\r\n` (a Windows line end).
pub const LINE_BREAKS: &[char] = &['\n'];
/// A body also holds tabs (a pasted table).
pub const LINE_BREAKS_AND_TABS: &[char] = &['\n', '\t'];

/// Refuses text a person typed that holds a control character (ESC, OSC,
/// C1, NUL, a lone CR...) other than those in `allowed`, naming the field,
/// the character and where it is, so the author can find it: "body contains
/// the control character U+001B at line 2, column 7 (character 31); remove
/// it". A `\r` right before a `\n` counts as a line end when `\n` is allowed.
/// The one rule for every field people write (a decision's reason, an
/// update's title and body): what passes it is sent on as written.
pub fn refuse_controls(field: &str, s: &str, allowed: &[char]) -> Result<(), String> {
    let (mut line, mut column) = (1usize, 0usize);
    let mut chars = s.chars().enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        column += 1;
        let crlf =
            c == '\r' && allowed.contains(&'\n') && chars.peek().map(|(_, n)| *n) == Some('\n');
        if c.is_control() && !allowed.contains(&c) && !crlf {
            let at = if allowed.contains(&'\n') {
                format!("line {line}, column {column} (character {})", i + 1)
            } else {
                format!("character {}", i + 1)
            };
            return Err(format!(
                "{field} contains the control character U+{:04X} at {at}; remove it",
                c as u32
            ));
        }
        if c == '\n' {
            line += 1;
            column = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(sanitize("acme-title.com"), Cow::Borrowed(_)));
        assert!(matches!(sanitize("Ünïcødé GmbH"), Cow::Borrowed(_)));
    }

    #[test]
    fn escape_sequences_become_inert_text() {
        assert_eq!(sanitize("\x1b]52;c;aGVsbG8=\x07"), "␛]52;c;aGVsbG8=␇");
        assert_eq!(sanitize("\x1b[2J"), "␛[2J");
        assert_eq!(sanitize("a\r\nb\tc"), "a␍␊b␉c");
        assert_eq!(sanitize("x\u{9b}31m"), "x<U+009B>31m");
        assert_eq!(
            sanitize("evil\u{202E}moc.elpmaxe"),
            "evil<U+202E>moc.elpmaxe"
        );
    }

    #[test]
    fn a_control_character_is_refused_with_where_it_is() {
        assert_eq!(
            refuse_controls("title", "Cluster A\x1b]52;c;x\x07", &[]).unwrap_err(),
            "title contains the control character U+001B at character 10; remove it"
        );
        assert_eq!(
            refuse_controls(
                "body",
                "first line\r\nsecond\tline\u{9b}2J",
                LINE_BREAKS_AND_TABS
            )
            .unwrap_err(),
            "body contains the control character U+009B at line 2, column 12 (character 24); remove it"
        );
        // A lone CR moves the cursor back over what was written: refused.
        assert!(
            refuse_controls("body", "ok\rforged", LINE_BREAKS_AND_TABS)
                .unwrap_err()
                .contains("U+000D at line 1, column 3")
        );
        assert!(refuse_controls("title", "two\nlines", &[]).is_err());
        assert!(refuse_controls("title", "tab\there", &[]).is_err());
        assert!(refuse_controls("reason", "tab\there", LINE_BREAKS).is_err());
        assert!(refuse_controls("body", "a\r\nb\n\tc — Ünïcødé", LINE_BREAKS_AND_TABS).is_ok());
        assert!(refuse_controls("body", "nul\0", LINE_BREAKS_AND_TABS).is_err());
    }

    proptest! {
        #[test]
        fn output_never_holds_a_control_character(s in any::<String>()) {
            let out = sanitize(&s);
            prop_assert!(!out.chars().any(needs_replacing));
        }
    }
}
