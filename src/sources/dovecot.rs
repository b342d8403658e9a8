//! A client for Dovecot 2.3's doveadm HTTP API (`service doveadm { inet_listener http }`).
//!
//! What the API looks like on the wire (seen on Dovecot 2.3.19; docs/backends.md, docs/dovecot-damage.md):
//! `POST /doveadm/v1` with `[["command",{params},"tag"]]`, answered by
//! `[["doveadmResponse",<result>,"tag"]]`; every value in a result is a
//! string, numbers too. Failures of a command come back as HTTP 200 with
//! `[["error",{"type":"exitCode","exitCode":67},"tag"]]`. An invalid `field`
//! name kills the doveadm process, so the connection closes with no answer.
//!
//! This client sends one command per POST (Dovecot's docs advise against
//! batching), only ever asks for field names Dovecot knows, queries one user
//! at a time (one damaged mailbox fails a whole wildcard query) and never
//! panics on what comes back: anything unexpected is [`DoveError::Malformed`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::domain::format::{base64, causes, clip};
use serde_json::{Value, json};

/// Answers larger than this are refused rather than buffered.
const MAX_BODY: usize = 32 << 20;

/// The longest piece of a backend's answer quoted in an error.
const SNIPPET: usize = 160;

/// Why a doveadm client's settings are refused. The API key never appears
/// in these; the URL is quoted clipped and inert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("doveadm URL {url:?}: {why}")]
    Url { url: String, why: String },
    #[error("doveadm URL: put no credentials in the URL; use the API key")]
    Credentials,
    #[error("doveadm API key is empty")]
    EmptyApiKey,
    #[error("doveadm time-out must be more than 0")]
    ZeroTimeout,
    /// The HTTP client could not be built with this key.
    #[error(transparent)]
    Client(#[from] crate::http::ClientError),
}

/// Why a doveadm call failed. The API key never appears in these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DoveError {
    /// The command ran and failed with a doveadm exit code (sysexits.h).
    #[error("doveadm exit code {code} ({meaning})")]
    Exit { code: i32, meaning: &'static str },
    /// HTTP 401/403: the API key (or password) is wrong.
    #[error("doveadm API refused the credentials")]
    Auth,
    /// Any other HTTP status than 200 (400 for a request it cannot parse).
    #[error("doveadm API answered HTTP {0}")]
    Http(u16),
    /// No TCP connection (Dovecot down, wrong port).
    #[error("doveadm API unreachable: {0}")]
    Unreachable(String),
    /// No full answer within the client's time-out.
    #[error("doveadm API timed out")]
    Timeout,
    /// The connection closed before an answer: the doveadm process died
    /// (an invalid field name does that) or Dovecot was stopped mid-call.
    #[error("doveadm closed the connection without an answer")]
    ConnectionClosed,
    /// The answer is not what the API documents.
    #[error("malformed doveadm answer: {0}")]
    Malformed(String),
    /// doveadm refused the request itself (`unknownMethod`, `invalidRequest`).
    #[error("doveadm refused the request: {0}")]
    Rejected(String),
    /// Refused before sending: e.g. a wildcard where one user is needed.
    #[error("invalid doveadm argument: {0}")]
    Invalid(String),
}

impl DoveError {
    /// Dovecot as a whole is not answering (or not letting us in): the
    /// mailbox is not at fault, so work should pause and resume, not fail.
    pub fn is_outage(&self) -> bool {
        match self {
            DoveError::Unreachable(_) | DoveError::Timeout | DoveError::Auth => true,
            DoveError::Http(code) => *code >= 500,
            _ => false,
        }
    }

    /// Worth trying the same call again a few times: a temporary failure
    /// (exit code 75, e.g. a corrupted transaction log that the failed
    /// access has just rebuilt) or a doveadm process that died mid-call.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DoveError::Exit { code: 75, .. } | DoveError::ConnectionClosed
        )
    }
}

/// What a doveadm exit code means (sysexits.h plus doveadm's own).
pub fn exit_meaning(code: i32) -> &'static str {
    match code {
        -1 => "unknown failure",
        1 => "failed",
        2 => "changed during the command",
        64 => "usage error",
        65 => "not possible",
        66 => "no input",
        67 => "unknown user",
        68 => "unknown mailbox",
        69 => "service unavailable",
        70 => "internal software error",
        71 => "system error",
        73 => "cannot create",
        74 => "I/O error",
        75 => "temporary failure (e.g. corrupted index, rebuilt)",
        76 => "protocol error",
        77 => "permission denied",
        78 => "configuration error",
        1001 => "replication not possible",
        _ => "unrecognised exit code",
    }
}

/// One mailbox's counters, from `mailboxStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailboxStatus {
    pub messages: u64,
    pub unseen: u64,
}

/// One folder's counters and identifiers, from `mailboxStatus` with the
/// fields `messages`, `uidnext`, `uidvalidity` and `highestmodseq` (all four
/// are names Dovecot 2.3 knows). `name` is the folder's full name as
/// Dovecot lists it (`INBOX`, `Archive.2024`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FolderStatus {
    pub name: String,
    pub messages: u64,
    pub uidnext: u64,
    pub uidvalidity: u64,
    pub highestmodseq: u64,
}

/// A doveadm HTTP API client. Cheap to share behind an `Arc`; calls may run
/// concurrently.
pub struct Doveadm {
    endpoint: reqwest::Url,
    client: reqwest::Client,
    timeout: Duration,
    next_tag: AtomicU64,
}

impl fmt::Debug for Doveadm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Doveadm")
            .field("endpoint", &self.endpoint.as_str())
            .field("timeout", &self.timeout)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

impl Doveadm {
    /// `base_url` is Dovecot's doveadm HTTP listener, e.g.
    /// `http://127.0.0.1:8080` (`/doveadm/v1` is added unless already
    /// there). `api_key` is `doveadm_api_key` from dovecot.conf; it goes in
    /// `Authorization: X-Dovecot-API <base64(key)>` and nowhere else. Each
    /// call (connect, send, whole answer) must finish within `timeout`.
    pub fn new(base_url: &str, api_key: &str, timeout: Duration) -> Result<Self, ConfigError> {
        let bad = |why: String| ConfigError::Url {
            url: clip(base_url, 200),
            why,
        };
        let mut endpoint = reqwest::Url::parse(base_url.trim()).map_err(|e| bad(e.to_string()))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(bad("must be http:// or https://".into()));
        }
        if endpoint.host_str().is_none() {
            return Err(bad("no host".into()));
        }
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            return Err(ConfigError::Credentials);
        }
        endpoint.set_query(None);
        endpoint.set_fragment(None);
        let path = endpoint.path().trim_end_matches('/').to_string();
        if !path.ends_with("/doveadm/v1") {
            endpoint.set_path(&format!("{path}/doveadm/v1"));
        } else {
            endpoint.set_path(&path);
        }
        if api_key.is_empty() {
            return Err(ConfigError::EmptyApiKey);
        }
        if timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        // An admin API with a key: never through a proxy, never redirected.
        let client = crate::http::keyed_client(
            "doveadm",
            &format!("X-Dovecot-API {}", base64(api_key.as_bytes())),
            timeout,
            timeout.min(Duration::from_secs(5)),
            true,
        )
        .map_err(ConfigError::Client)?;
        Ok(Doveadm {
            endpoint,
            client,
            timeout,
            next_tag: AtomicU64::new(1),
        })
    }

    /// The URL commands are posted to.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// Users matching `mask` (`*@acme.test`, `alice@acme.test`): command
    /// `user {"userMask":[mask]}`.
    pub async fn users(&self, mask: &str) -> Result<Vec<String>, DoveError> {
        if mask.is_empty() {
            return Err(DoveError::Invalid("empty user mask".into()));
        }
        let result = self.call("user", json!({ "userMask": [mask] })).await?;
        let list = result
            .get("userList")
            .and_then(Value::as_array)
            .ok_or_else(|| malformed_value("no userList in", &result))?;
        list.iter()
            .map(|u| {
                u.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| malformed_value("a user that is not a string:", u))
            })
            .collect()
    }

    /// `messages` and `unseen` of one mailbox of one user (no wildcards:
    /// one damaged mailbox would fail a whole wildcard query).
    pub async fn mailbox_status(
        &self,
        user: &str,
        mailbox: &str,
    ) -> Result<MailboxStatus, DoveError> {
        one_user(user)?;
        if mailbox.is_empty() || mailbox.contains(['*', '%', '?']) {
            return Err(DoveError::Invalid(format!(
                "mailbox_status needs one mailbox name, not {:?}",
                clip(mailbox, 80)
            )));
        }
        // Only field names Dovecot knows: an unknown one kills doveadm.
        let result = self
            .call(
                "mailboxStatus",
                json!({
                    "user": user,
                    "field": ["messages", "unseen"],
                    "mailboxMask": [mailbox],
                }),
            )
            .await?;
        let rows = result
            .as_array()
            .ok_or_else(|| malformed_value("mailboxStatus result is not a list:", &result))?;
        let row = rows
            .iter()
            .find(|r| r.get("mailbox").and_then(Value::as_str) == Some(mailbox))
            .or_else(|| if rows.len() == 1 { rows.first() } else { None })
            .ok_or_else(|| {
                DoveError::Malformed(format!(
                    "mailboxStatus gave {} rows, none for {:?}",
                    rows.len(),
                    clip(mailbox, 80)
                ))
            })?;
        Ok(MailboxStatus {
            messages: counter(row, "messages")?,
            unseen: counter(row, "unseen")?,
        })
    }

    /// [`FolderStatus`] of each of the user's folders matching
    /// `mailbox_mask` (`*` for all, `INBOX` for one), in the order Dovecot
    /// lists them. Folders that cannot be selected (a parent that exists
    /// only as a name) are not listed by Dovecot. One damaged folder fails
    /// the whole call (exit code 75 on the access that meets a corrupted
    /// transaction log), so this is per user: no wildcard users.
    pub async fn folder_status(
        &self,
        user: &str,
        mailbox_mask: &str,
    ) -> Result<Vec<FolderStatus>, DoveError> {
        one_user(user)?;
        mask_not_empty(mailbox_mask)?;
        // Only field names Dovecot knows: an unknown one kills doveadm.
        let result = self
            .call(
                "mailboxStatus",
                json!({
                    "user": user,
                    "field": ["messages", "uidnext", "uidvalidity", "highestmodseq"],
                    "mailboxMask": [mailbox_mask],
                }),
            )
            .await?;
        let rows = result
            .as_array()
            .ok_or_else(|| malformed_value("mailboxStatus result is not a list:", &result))?;
        rows.iter()
            .map(|row| {
                let name = row
                    .get("mailbox")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| malformed_value("a row without its mailbox:", row))?;
                Ok(FolderStatus {
                    name: name.to_string(),
                    messages: counter(row, "messages")?,
                    uidnext: counter(row, "uidnext")?,
                    uidvalidity: counter(row, "uidvalidity")?,
                    highestmodseq: counter(row, "highestmodseq")?,
                })
            })
            .collect()
    }

    /// Queues indexing of the user's mailboxes matching `mailbox_mask` in
    /// Dovecot's indexer (`index` with `"queue": true`: returns at once;
    /// without it the call blocks until indexing is done).
    pub async fn index(&self, user: &str, mailbox_mask: &str) -> Result<(), DoveError> {
        one_user(user)?;
        mask_not_empty(mailbox_mask)?;
        self.call(
            "index",
            json!({ "user": user, "mailboxMask": mailbox_mask, "queue": true }),
        )
        .await
        .map(drop)
    }

    /// Rescans the user's mailboxes matching `mailbox_mask` against the
    /// files on disk and fixes the indexes (`forceResync` with `fsck`).
    /// This is what repairs a stale index; `index` alone does not.
    pub async fn force_resync(&self, user: &str, mailbox_mask: &str) -> Result<(), DoveError> {
        self.force_resync_with(user, mailbox_mask, true).await
    }

    /// `forceResync` with or without `fsck`. Without it Dovecot still
    /// rescans the folders' directories against the index, which is what
    /// finds (and fixes) a stale index: seen on Dovecot 2.3.19, see
    /// `docs/dovecot-damage.md`.
    pub async fn force_resync_with(
        &self,
        user: &str,
        mailbox_mask: &str,
        fsck: bool,
    ) -> Result<(), DoveError> {
        one_user(user)?;
        mask_not_empty(mailbox_mask)?;
        let params = if fsck {
            json!({ "user": user, "mailboxMask": mailbox_mask, "fsck": true })
        } else {
            json!({ "user": user, "mailboxMask": mailbox_mask })
        };
        self.call("forceResync", params).await.map(drop)
    }

    /// Posts one command and returns its result (or its error).
    async fn call(&self, command: &str, params: Value) -> Result<Value, DoveError> {
        let tag = format!("w{}", self.next_tag.fetch_add(1, Ordering::Relaxed));
        let body = json!([[command, params, tag]]);
        let mut resp = self
            .client
            .post(self.endpoint.clone())
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(DoveError::Malformed(format!(
                    "answer larger than {MAX_BODY} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        match status {
            200 => parse_reply(&bytes, &tag),
            401 | 403 => Err(DoveError::Auth),
            other => Err(DoveError::Http(other)),
        }
    }
}

/// Reads `[["doveadmResponse",<result>,tag]]` or `[["error",{..},tag]]`.
pub(crate) fn parse_reply(body: &[u8], tag: &str) -> Result<Value, DoveError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        DoveError::Malformed(format!(
            "not JSON ({e}): {:?}",
            clip(&String::from_utf8_lossy(body), SNIPPET)
        ))
    })?;
    let entries = v
        .as_array()
        .ok_or_else(|| malformed_value("not a list of answers:", &v))?;
    let entry = entries
        .iter()
        .find(|e| e.get(2).and_then(Value::as_str) == Some(tag))
        .ok_or_else(|| malformed_value(&format!("no answer tagged {tag:?} in"), &v))?;
    match entry.get(0).and_then(Value::as_str) {
        Some("doveadmResponse") => Ok(entry.get(1).cloned().unwrap_or(Value::Null)),
        Some("error") => Err(error_of(entry.get(1).unwrap_or(&Value::Null))),
        _ => Err(malformed_value("unknown answer kind:", entry)),
    }
}

/// `{"type":"exitCode","exitCode":67}`, `{"type":"unknownMethod",..}`.
fn error_of(v: &Value) -> DoveError {
    match v.get("type").and_then(Value::as_str) {
        Some("exitCode") => match v.get("exitCode").and_then(as_i64) {
            Some(code) => match i32::try_from(code) {
                Ok(code) => DoveError::Exit {
                    code,
                    meaning: exit_meaning(code),
                },
                Err(_) => malformed_value("exit code out of range:", v),
            },
            None => malformed_value("error without an exit code:", v),
        },
        Some(kind) if !kind.is_empty() => DoveError::Rejected(clip(kind, 80).to_string()),
        _ => malformed_value("error of no type:", v),
    }
}

/// A counter from a result row: a string of digits (what Dovecot sends) or
/// a JSON number.
fn counter(row: &Value, field: &str) -> Result<u64, DoveError> {
    match row.get(field) {
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| malformed_value(&format!("{field} is not a count:"), row)),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| malformed_value(&format!("{field} is not a count:"), row)),
        _ => Err(malformed_value(&format!("no {field} in"), row)),
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn one_user(user: &str) -> Result<(), DoveError> {
    if user.is_empty() || user.contains(['*', '?']) {
        return Err(DoveError::Invalid(format!(
            "one user is needed, not {:?}",
            clip(user, 80)
        )));
    }
    Ok(())
}

fn mask_not_empty(mask: &str) -> Result<(), DoveError> {
    if mask.is_empty() {
        return Err(DoveError::Invalid("empty mailbox mask".into()));
    }
    Ok(())
}

fn malformed_value(what: &str, v: &Value) -> DoveError {
    DoveError::Malformed(format!("{what} {}", clip(&v.to_string(), SNIPPET)))
}

/// Maps a transport failure. The URL is left out (it is known to the
/// caller) and so is everything about the request's headers.
fn transport_error(e: reqwest::Error) -> DoveError {
    if e.is_timeout() {
        return DoveError::Timeout;
    }
    let e = e.without_url();
    let text = causes(&e);
    if e.is_connect() {
        return DoveError::Unreachable(clip(&text, 300));
    }
    let lower = text.to_lowercase();
    if ["closed", "reset", "incomplete", "broken pipe", "eof"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return DoveError::ConnectionClosed;
    }
    DoveError::Unreachable(clip(&text, 300))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn new_checks_its_arguments_and_never_shows_the_key() {
        let d = Doveadm::new(
            "http://127.0.0.1:8080",
            "s3cr3t-key",
            Duration::from_secs(1),
        )
        .expect("valid");
        assert_eq!(d.endpoint(), "http://127.0.0.1:8080/doveadm/v1");
        let shown = format!("{d:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains(&base64(b"s3cr3t-key")));
        let d = Doveadm::new("http://h:1/doveadm/v1/", "k", Duration::from_secs(1)).unwrap();
        assert_eq!(d.endpoint(), "http://h:1/doveadm/v1");
        for (url, key, t, why) in [
            (
                "ftp://h/",
                "k",
                1,
                "doveadm URL \"ftp://h/\": must be http:// or https://",
            ),
            (
                "not a url",
                "k",
                1,
                "doveadm URL \"not a url\": relative URL without a base",
            ),
            ("http://h/", "", 1, "doveadm API key is empty"),
            ("http://h/", "k", 0, "doveadm time-out must be more than 0"),
            (
                "http://u:p@h/",
                "k",
                1,
                "doveadm URL: put no credentials in the URL; use the API key",
            ),
        ] {
            let e = Doveadm::new(url, key, Duration::from_secs(t)).err();
            assert_eq!(e.map(|e| e.to_string()).as_deref(), Some(why), "{url}");
        }
    }

    #[test]
    fn replies_are_read_by_tag_and_errors_mapped() {
        let ok = br#"[["doveadmResponse",{"userList":["a@x"]},"w1"]]"#;
        assert_eq!(parse_reply(ok, "w1").unwrap(), json!({"userList": ["a@x"]}));
        let err = br#"[["error",{"type":"exitCode", "exitCode":67},"w2"]]"#;
        assert_eq!(
            parse_reply(err, "w2").unwrap_err(),
            DoveError::Exit {
                code: 67,
                meaning: "unknown user"
            }
        );
        let err = br#"[["error",{"type":"exitCode","exitCode":"75"},"w2"]]"#;
        assert!(parse_reply(err, "w2").unwrap_err().is_retryable());
        let err = br#"[["error",{"type":"unknownMethod", "exitCode":0},"t"]]"#;
        assert_eq!(
            parse_reply(err, "t").unwrap_err(),
            DoveError::Rejected("unknownMethod".into())
        );
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let bodies: [&[u8]; 16] = [
            b"",
            b"null",
            b"{}",
            b"[]",
            b"[[]]",
            b"[null]",
            b"[[\"doveadmResponse\"]]",
            b"[[\"doveadmResponse\",{},\"other\"]]",
            b"[[\"surprise\",{},\"w1\"]]",
            b"[[\"error\",null,\"w1\"]]",
            b"[[\"error\",{\"type\":\"exitCode\"},\"w1\"]]",
            b"[[\"error\",{\"type\":\"exitCode\",\"exitCode\":1e300},\"w1\"]]",
            b"[[\"error\",{\"type\":\"exitCode\",\"exitCode\":99999999999},\"w1\"]]",
            b"[[\"error\",{},\"w1\"]]",
            b"\xff\xfe garbage",
            b"[[\"doveadmResponse\",[{\"mailbox\":\"INBOX\"",
        ];
        for body in bodies {
            match parse_reply(body, "w1") {
                Err(DoveError::Malformed(m)) => assert!(m.len() < 400, "{m}"),
                other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(body)),
            }
        }
        // A missing result is null, which the callers reject in turn.
        assert_eq!(
            parse_reply(b"[[\"doveadmResponse\",null,\"w1\"]]", "w1").unwrap(),
            Value::Null
        );
    }

    #[test]
    fn counters_accept_strings_and_numbers_only() {
        let row = json!({"mailbox":"INBOX","messages":"12","unseen":3,"bad":"-1","neg":-1});
        assert_eq!(counter(&row, "messages").unwrap(), 12);
        assert_eq!(counter(&row, "unseen").unwrap(), 3);
        for f in ["bad", "neg", "mailbox", "missing"] {
            assert!(
                matches!(counter(&row, f), Err(DoveError::Malformed(_))),
                "{f}"
            );
        }
    }

    /// A one-shot HTTP server: answers every request with `reply` (raw
    /// bytes; empty = close the connection without answering, None = never
    /// answer) and hands back the requests it read.
    async fn canned(reply: Option<&'static [u8]>) -> (String, tokio::sync::mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let len = text[..end]
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + len {
                                break;
                            }
                        }
                    }
                    let _ = tx.send(String::from_utf8_lossy(&buf).to_string()).await;
                    match reply {
                        Some(bytes) => {
                            let _ = sock.write_all(bytes).await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        (url, rx)
    }

    fn http(status: &str, body: &str) -> &'static [u8] {
        Box::leak(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
            .into_boxed_slice(),
        )
    }

    #[tokio::test]
    async fn sends_one_tagged_command_with_the_base64_key() {
        let (url, mut rx) = canned(Some(http(
            "200 OK",
            r#"[["doveadmResponse",{"userList":["a@acme.test","b@acme.test"]},"w1"]]"#,
        )))
        .await;
        let d = Doveadm::new(&url, "testkey", Duration::from_secs(5)).unwrap();
        let users = d.users("*@acme.test").await.unwrap();
        assert_eq!(users, ["a@acme.test", "b@acme.test"]);
        let req = rx.recv().await.unwrap();
        assert!(req.starts_with("POST /doveadm/v1 HTTP/1.1\r\n"), "{req}");
        assert!(
            req.to_lowercase()
                .contains("authorization: x-dovecot-api dgvzdgtleq=="),
            "{req}"
        );
        let body = &req[req.find("\r\n\r\n").unwrap() + 4..];
        let sent: Value = serde_json::from_str(body).unwrap();
        assert_eq!(sent, json!([["user", {"userMask": ["*@acme.test"]}, "w1"]]));
    }

    #[tokio::test]
    async fn http_and_transport_failures_are_told_apart() {
        let (url, _rx) = canned(Some(http("401 Authentication required", ""))).await;
        let d = Doveadm::new(&url, "k", Duration::from_secs(5)).unwrap();
        assert_eq!(d.users("*").await.unwrap_err(), DoveError::Auth);

        let (url, _rx) = canned(Some(http("400 Bad Request", "JSON parse error"))).await;
        let d = Doveadm::new(&url, "k", Duration::from_secs(5)).unwrap();
        assert_eq!(d.users("*").await.unwrap_err(), DoveError::Http(400));

        let (url, _rx) = canned(Some(http("200 OK", "[[\"doveadmResponse\",[],\"w1\"]]"))).await;
        let d = Doveadm::new(&url, "k", Duration::from_secs(5)).unwrap();
        assert!(matches!(
            d.mailbox_status("a@x", "INBOX").await,
            Err(DoveError::Malformed(_))
        ));
        assert!(matches!(d.users("*").await, Err(DoveError::Malformed(_))));

        let (url, _rx) = canned(Some(b"")).await;
        let d = Doveadm::new(&url, "k", Duration::from_secs(5)).unwrap();
        assert_eq!(
            d.force_resync("a@x", "*").await.unwrap_err(),
            DoveError::ConnectionClosed
        );

        let (url, _rx) = canned(None).await;
        let d = Doveadm::new(&url, "k", Duration::from_millis(300)).unwrap();
        assert_eq!(d.index("a@x", "*").await.unwrap_err(), DoveError::Timeout);

        // A port nothing listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let d = Doveadm::new(
            &format!("http://127.0.0.1:{port}"),
            "k",
            Duration::from_secs(5),
        )
        .unwrap();
        let err = d.users("*").await.unwrap_err();
        assert!(matches!(err, DoveError::Unreachable(_)), "{err:?}");
        assert!(err.is_outage());
    }

    #[tokio::test]
    async fn folder_status_reads_every_row_as_dovecot_sends_it() {
        let (url, mut rx) = canned(Some(http(
            "200 OK",
            r#"[["doveadmResponse",[
                {"mailbox":"Archive.2024","messages":"3","uidnext":"4","uidvalidity":"1796483994","highestmodseq":"4"},
                {"mailbox":"INBOX","messages":5,"uidnext":"6","uidvalidity":" 1796483993 ","highestmodseq":"6"}
            ],"w1"]]"#,
        )))
        .await;
        let d = Doveadm::new(&url, "k", Duration::from_secs(5)).unwrap();
        let folders = d.folder_status("a@x", "*").await.unwrap();
        assert_eq!(
            folders,
            [
                FolderStatus {
                    name: "Archive.2024".into(),
                    messages: 3,
                    uidnext: 4,
                    uidvalidity: 1796483994,
                    highestmodseq: 4
                },
                FolderStatus {
                    name: "INBOX".into(),
                    messages: 5,
                    uidnext: 6,
                    uidvalidity: 1796483993,
                    highestmodseq: 6
                }
            ]
        );
        let req = rx.recv().await.unwrap();
        let body = &req[req.find("\r\n\r\n").unwrap() + 4..];
        let sent: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            sent,
            json!([["mailboxStatus", {
                "user": "a@x",
                "field": ["messages", "uidnext", "uidvalidity", "highestmodseq"],
                "mailboxMask": ["*"]
            }, "w1"]])
        );

        for rows in [
            r#"{"mailbox":"INBOX"}"#,
            r#"[{"messages":"1","uidnext":"2","uidvalidity":"3","highestmodseq":"4"}]"#,
            r#"[{"mailbox":"","messages":"1","uidnext":"2","uidvalidity":"3","highestmodseq":"4"}]"#,
            r#"[{"mailbox":"INBOX","messages":"1","uidnext":"2","uidvalidity":"3"}]"#,
            r#"[{"mailbox":"INBOX","messages":"1","uidnext":"-2","uidvalidity":"3","highestmodseq":"4"}]"#,
        ] {
            let reply = format!(r#"[["doveadmResponse",{rows},"w1"]]"#);
            let (url, _rx) = canned(Some(http("200 OK", &reply))).await;
            let d = Doveadm::new(&url, "k", Duration::from_secs(5)).unwrap();
            assert!(
                matches!(
                    d.folder_status("a@x", "*").await,
                    Err(DoveError::Malformed(_))
                ),
                "{rows}"
            );
        }
    }

    #[tokio::test]
    async fn force_resync_sends_fsck_only_when_asked() {
        for fsck in [true, false] {
            let (url, mut rx) =
                canned(Some(http("200 OK", r#"[["doveadmResponse",[],"w1"]]"#))).await;
            let d = Doveadm::new(&url, "k", Duration::from_secs(5)).unwrap();
            d.force_resync_with("a@x", "*", fsck).await.unwrap();
            let req = rx.recv().await.unwrap();
            let body = &req[req.find("\r\n\r\n").unwrap() + 4..];
            let sent: Value = serde_json::from_str(body).unwrap();
            let mut params = json!({"user": "a@x", "mailboxMask": "*"});
            if fsck {
                params["fsck"] = json!(true);
            }
            assert_eq!(sent, json!([["forceResync", params, "w1"]]));
        }
    }

    #[tokio::test]
    async fn wildcards_are_refused_where_one_user_is_needed() {
        let d = Doveadm::new("http://127.0.0.1:9", "k", Duration::from_secs(1)).unwrap();
        for user in ["", "*@acme.test", "a?@x"] {
            assert!(matches!(
                d.mailbox_status(user, "INBOX").await,
                Err(DoveError::Invalid(_))
            ));
            assert!(matches!(
                d.force_resync(user, "*").await,
                Err(DoveError::Invalid(_))
            ));
            assert!(matches!(
                d.folder_status(user, "*").await,
                Err(DoveError::Invalid(_))
            ));
        }
        assert!(matches!(
            d.folder_status("a@x", "").await,
            Err(DoveError::Invalid(_))
        ));
        assert!(matches!(
            d.mailbox_status("a@x", "*").await,
            Err(DoveError::Invalid(_))
        ));
    }
}
