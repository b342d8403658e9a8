//! The one rule for secrets in what warroom says: answers, logs, `info`
//! and errors.
//!
//! A configured secret is a token, an API key, a URL's `user:password@`,
//! and the path and query of a URL that is itself the secret (a Slack or
//! webhook URL keeps its key in the path: `/services/T000/B000/XXXX`).
//! Text that may hold one (an HTTP client's error names the URL it failed
//! to reach) goes through a `Redactor` that knows them, where the text is
//! made, so every surface that shows it later (a delivery's detail in
//! `ListStatusUpdates` and Watch, the timeline, the log) is safe. URLs that
//! are shown on purpose go through `url_shown` or `secret_url_shown`.

use std::borrow::Cow;

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// The parts of `url`: (scheme with `://`, userinfo, host and port, path
/// with query and fragment). Any part may be empty; text that is not a URL
/// is all "path".
fn parts(url: &str) -> (&str, &str, &str, &str) {
    let Some(i) = url.find("://") else {
        return ("", "", "", url);
    };
    let (scheme, rest) = url.split_at(i + 3);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rfind('@') {
        Some(at) => (scheme, &authority[..at], &authority[at + 1..], path),
        None => (scheme, "", authority, path),
    }
}

/// A URL as it may be shown: `user:password@` becomes `***@`, the rest is
/// kept (a gateway's or a backend's URL: its path is not a secret).
pub fn url_shown(url: &str) -> Cow<'_, str> {
    let (scheme, userinfo, host, path) = parts(url);
    if userinfo.is_empty() {
        Cow::Borrowed(url)
    } else {
        Cow::Owned(format!("{scheme}***@{host}{path}"))
    }
}

/// A URL that is itself a secret, as it may be shown: scheme and host
/// only, `https://hooks.slack.com/…`.
pub fn secret_url_shown(url: &str) -> String {
    let (scheme, _, host, path) = parts(url);
    if scheme.is_empty() {
        return REDACTED.to_string();
    }
    if path.is_empty() || path == "/" {
        format!("{scheme}{host}{path}")
    } else {
        format!("{scheme}{host}/…")
    }
}

/// Replaces every secret it was told about with `<redacted>`.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that holds another is replaced whole.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

/// Shorter than this is not taken as a secret: replacing "a" or "/" in
/// every message would make them unreadable and hide nothing.
const MIN_SECRET_CHARS: usize = 4;

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// A token, an API key, a password.
    pub fn secret(mut self, s: &str) -> Self {
        let s = s.trim();
        if s.chars().count() >= MIN_SECRET_CHARS && !self.secrets.iter().any(|k| k == s) {
            self.secrets.push(s.to_string());
            self.secrets.sort_by_key(|k| std::cmp::Reverse(k.len()));
        }
        self
    }

    /// A URL's `user:password` (and the password alone).
    pub fn url_userinfo(self, url: &str) -> Self {
        let (_, userinfo, _, _) = parts(url);
        let password = userinfo.split_once(':').map_or("", |(_, p)| p);
        self.secret(userinfo).secret(password)
    }

    /// A URL that is itself the secret: its userinfo, and its path and
    /// query, as written and as an HTTP client prints them (`/a/b?k=v`,
    /// `/a/b`, `k=v`).
    pub fn secret_url(self, url: &str) -> Self {
        let (_, _, _, path) = parts(url);
        let path = path.split('#').next().unwrap_or("");
        let (only_path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut r = self.url_userinfo(url).secret(path).secret(query);
        if only_path.len() > 1 {
            r = r.secret(only_path);
        }
        r
    }

    /// `text` with every known secret replaced (borrowed when clean).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.secrets.iter().any(|s| text.contains(s.as_str())) {
            return Cow::Borrowed(text);
        }
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        Cow::Owned(out)
    }

    /// As `redact`, for an owned string.
    pub fn redact_owned(&self, text: String) -> String {
        match self.redact(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOOK: &str = "https://hooks.slack.com/services/T000/B000/SECRETPATH123?key=SECRETQUERY";

    #[test]
    fn a_url_with_a_password_is_shown_without_it() {
        assert_eq!(
            url_shown("http://ana:SECRETPW@gw.example:50051/x"),
            "http://***@gw.example:50051/x"
        );
        assert_eq!(
            url_shown("http://127.0.0.1:50051"),
            "http://127.0.0.1:50051"
        );
        assert_eq!(url_shown("not a url"), "not a url");
    }

    #[test]
    fn a_secret_url_shows_its_scheme_and_host_only() {
        assert_eq!(secret_url_shown(HOOK), "https://hooks.slack.com/…");
        assert_eq!(
            secret_url_shown("http://u:p@127.0.0.1:9/"),
            "http://127.0.0.1:9/"
        );
        assert_eq!(secret_url_shown("garbage"), REDACTED);
    }

    #[test]
    fn every_part_of_a_secret_is_redacted_wherever_it_is_in_the_text() {
        let r = Redactor::new()
            .secret_url(HOOK)
            .secret("KEY-0123456789")
            .secret("ab"); // too short to be taken
        let said = format!(
            "cannot reach the webhook: error sending request for url ({HOOK}): \
             /services/T000/B000/SECRETPATH123 refused; key=SECRETQUERY; KEY-0123456789; ab"
        );
        let out = r.redact(&said);
        for secret in ["SECRETPATH123", "SECRETQUERY", "KEY-0123456789"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(out.contains("https://hooks.slack.com<redacted>"), "{out}");
        assert!(out.ends_with("; ab"), "{out}");
        assert!(matches!(r.redact("HTTP 500"), Cow::Borrowed(_)));
        assert!(!format!("{r:?}").contains("SECRET"));
    }

    #[test]
    fn userinfo_and_its_password_are_secrets() {
        let r = Redactor::new().url_userinfo("http://ana:SECRETPW1@h:1/");
        assert_eq!(
            r.redact("ana:SECRETPW1 and SECRETPW1"),
            "<redacted> and <redacted>"
        );
    }
}
