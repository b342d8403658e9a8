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

    proptest! {
        #[test]
        fn output_never_holds_a_control_character(s in any::<String>()) {
            let out = sanitize(&s);
            prop_assert!(!out.chars().any(needs_replacing));
        }
    }
}
