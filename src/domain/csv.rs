//! The affected-mailbox list as CSV (RFC 4180): one format for
//! `warroom export tenant` and the attachment of tenant e-mail notices.

use serde::Serialize;

#[derive(Debug, Serialize, PartialEq)]
pub struct Row {
    pub address: String,
    pub state: String,
    pub eta_p50: Option<chrono::DateTime<chrono::Utc>>,
    pub eta_p90: Option<chrono::DateTime<chrono::Utc>>,
    /// None: not measured per mailbox (an empty CSV field, JSON null).
    pub queued_messages: Option<u64>,
}

/// One CSV field: quoted when it holds a comma, a quote or a line break,
/// with quotes doubled (RFC 4180).
pub fn field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_field(&mut out, s);
    out
}

/// `field`, appended to `out` (no allocation of its own).
pub(crate) fn push_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        for c in s.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// A time as a CSV field: RFC 3339 in UTC to the second, empty when there
/// is none.
pub fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from("address,state,eta_p50,eta_p90,queued_messages\r\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{}\r\n",
            field(&r.address),
            field(&r.state),
            time(r.eta_p50),
            time(r.eta_p90),
            r.queued_messages.map(|n| n.to_string()).unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A minimal RFC 4180 reader for one line, to prove the writer's quoting.
    fn parse_line(line: &str) -> Vec<String> {
        let mut fields = vec![String::new()];
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    chars.next();
                    fields.last_mut().unwrap().push('"');
                }
                ('"', _) => quoted = !quoted,
                (',', false) => fields.push(String::new()),
                (c, _) => fields.last_mut().unwrap().push(c),
            }
        }
        fields
    }

    #[test]
    fn commas_and_quotes_round_trip() {
        let tricky = ["a,b", "say \"hi\"", "plain", "", "x\"", ",\",\""];
        let line = tricky
            .iter()
            .map(|s| field(s))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(parse_line(&line), tricky);
    }

    proptest! {
        #[test]
        fn any_fields_round_trip(fields in proptest::collection::vec("[^\r\n]{0,12}", 1..6)) {
            let line = fields.iter().map(|s| field(s)).collect::<Vec<_>>().join(",");
            prop_assert_eq!(parse_line(&line), fields);
        }
    }
}
