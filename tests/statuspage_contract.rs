//! Contract of the Statuspage channel against a local stand-in for the
//! Statuspage manage API (v1). The stand-in checks every request the way the
//! real API would (method, path with the page id, `Authorization: OAuth
//! <key>`, the incident's JSON schema and limits) and answers like it: 201
//! and the incident for a create, 200 for an update, the unresolved
//! incidents for a lookup. Each test can script what the next requests meet
//! (a 500, a 429 with Retry-After, an answer that comes too late, garbage).
//!
//! The tests drive the channel the way the gateway's outbox worker does: the
//! same `Delivery` again and again, `attempts` counted up and the last
//! outcome's text and `maybe_applied` handed back, with a durable `Memory`.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri, header};
use serde_json::{Map, Value, json};

use warroom::channels::statuspage::{Statuspage, StatuspageConfig};
use warroom::channels::{
    Channel, Context, Delivery, Facts, Memory, MemoryError, Outcome, TenantNotice, Update,
};
use warroom::domain::{IncidentState, MailboxRow};

const PAGE: &str = "kctbh9vrtdwd";
const KEY: &str = "3f6c1a0e-test-key-9b7d";
/// The page's components on the stand-in.
const PAGE_COMPONENTS: [&str; 3] = ["cmp-imap", "cmp-smtp", "cmp-webmail"];
const INCIDENT_STATUSES: [&str; 4] = ["investigating", "identified", "monitoring", "resolved"];
const COMPONENT_STATUSES: [&str; 5] = [
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
];
const INCIDENT_FIELDS: [&str; 7] = [
    "name",
    "status",
    "body",
    "component_ids",
    "components",
    "deliver_notifications",
    "metadata",
];

// ---------------------------------------------------------------------------
// The stand-in API.

/// What the next request with a given method meets instead of the normal
/// answer (each is used once, in order).
#[derive(Debug, Clone)]
enum Action {
    /// 500, nothing stored.
    ServerError,
    /// 429 with `Retry-After: <seconds>`, nothing stored.
    RateLimited(u64),
    /// This status and `{"message": ..}`, nothing stored.
    Reject(u16, &'static str),
    /// Stores the change, then answers only after this long.
    AcceptLate(Duration),
    /// Stores the change, then answers 2xx with this body instead.
    AcceptGarbage(&'static str),
    /// Stores nothing and answers 500 only after this long.
    Hang(Duration),
}

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    body: String,
}

#[derive(Default)]
struct Book {
    /// In creation order.
    incidents: Vec<Value>,
    seen: Vec<Seen>,
    /// Requests the real API would have refused as malformed.
    violations: Vec<String>,
    script: VecDeque<(Method, Action)>,
    next_id: u32,
}

struct Reply {
    status: StatusCode,
    body: String,
    retry_after: Option<u64>,
    delay: Option<Duration>,
}

impl Reply {
    fn json(status: StatusCode, v: Value) -> Reply {
        Reply {
            status,
            body: v.to_string(),
            retry_after: None,
            delay: None,
        }
    }
    fn message(status: StatusCode, m: &str) -> Reply {
        Reply::json(status, json!({ "message": m }))
    }
}

type Shared = Arc<Mutex<Book>>;

async fn handle(
    State(book): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    // Decided under the lock, answered (perhaps late) outside it.
    let reply = answer(&mut book.lock().unwrap(), &method, &uri, &headers, &body);
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    let mut r = Response::builder()
        .status(reply.status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8");
    if let Some(s) = reply.retry_after {
        r = r.header(header::RETRY_AFTER, s.to_string());
    }
    r.body(Body::from(reply.body)).unwrap()
}

fn answer(book: &mut Book, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(body).into_owned();
    book.seen.push(Seen {
        method: method.clone(),
        path: uri.path().to_string(),
        body: text.clone(),
    });

    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(format!("OAuth {KEY}").as_str())
    {
        return Reply::message(StatusCode::UNAUTHORIZED, "Could not authenticate");
    }
    let Some(rest) = uri.path().strip_prefix("/v1/pages/") else {
        book.violations
            .push(format!("{method} {}: not an API path", uri.path()));
        return Reply::message(StatusCode::NOT_FOUND, "Not found");
    };
    let parts: Vec<&str> = rest.split('/').collect();
    if parts[0] != PAGE {
        return Reply::message(StatusCode::NOT_FOUND, "Page not found");
    }
    let route = (method.clone(), &parts[1..]);
    let writing = match route {
        (Method::GET, ["incidents"]) | (Method::GET, ["incidents", "unresolved"]) => false,
        (Method::POST, ["incidents"]) | (Method::PATCH, ["incidents", _]) => true,
        _ => {
            book.violations
                .push(format!("{method} {}: no such endpoint", uri.path()));
            return Reply::message(StatusCode::NOT_FOUND, "Not found");
        }
    };

    let mut request = None;
    if writing {
        let json_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let checked = if json_type {
            serde_json::from_str::<Value>(&text)
                .map_err(|e| format!("body is not JSON: {e}"))
                .and_then(|v| check_incident_request(&v).map(|()| v))
        } else {
            Err("Content-Type is not application/json".into())
        };
        match checked {
            Ok(v) => request = Some(v["incident"].as_object().unwrap().clone()),
            Err(e) => {
                book.violations
                    .push(format!("{method} {}: {e}", uri.path()));
                return Reply::message(StatusCode::UNPROCESSABLE_ENTITY, &e);
            }
        }
    }

    let action = book
        .script
        .iter()
        .position(|(m, _)| m == method)
        .and_then(|i| book.script.remove(i))
        .map(|(_, a)| a);
    let mut delay = None;
    let mut garbage = None;
    match action {
        None => {}
        Some(Action::ServerError) => {
            return Reply::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
        }
        Some(Action::RateLimited(secs)) => {
            let mut r = Reply::message(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
            r.retry_after = Some(secs);
            return r;
        }
        Some(Action::Reject(code, m)) => {
            return Reply::message(StatusCode::from_u16(code).unwrap(), m);
        }
        Some(Action::Hang(d)) => {
            let mut r = Reply::message(StatusCode::INTERNAL_SERVER_ERROR, "Too slow");
            r.delay = Some(d);
            return r;
        }
        Some(Action::AcceptLate(d)) => delay = Some(d),
        Some(Action::AcceptGarbage(b)) => garbage = Some(b),
    }

    let (status, v) = match (method.clone(), &parts[1..], request) {
        (Method::GET, ["incidents"], _) => (
            StatusCode::OK,
            Value::Array(book.incidents.iter().rev().cloned().collect()),
        ),
        (Method::GET, _, _) => (
            StatusCode::OK,
            Value::Array(
                book.incidents
                    .iter()
                    .rev()
                    .filter(|i| i["status"] != "resolved")
                    .cloned()
                    .collect(),
            ),
        ),
        (Method::POST, _, Some(req)) => {
            book.next_id += 1;
            let id = format!("inc{:09}", book.next_id);
            let mut incident = json!({
                "id": id,
                "page_id": PAGE,
                "impact": "minor",
                "shortlink": format!("https://stspg.io/{id}"),
                "created_at": now(),
                "incident_updates": [],
                "metadata": {},
            });
            apply(&mut incident, &req, book.next_id);
            book.incidents.push(incident.clone());
            (StatusCode::CREATED, incident)
        }
        (Method::PATCH, [_, id], Some(req)) => {
            let n = book.next_id + 1;
            let Some(incident) = book.incidents.iter_mut().find(|i| i["id"] == *id) else {
                return Reply::message(StatusCode::NOT_FOUND, "Incident not found");
            };
            book.next_id = n;
            apply(incident, &req, n);
            (StatusCode::OK, incident.clone())
        }
        _ => unreachable!("routes are checked above"),
    };
    Reply {
        status,
        body: garbage.map(str::to_string).unwrap_or_else(|| v.to_string()),
        retry_after: None,
        delay,
    }
}

/// A create or update applied to the stored incident, with an
/// incident_update (newest first, as Statuspage lists them).
fn apply(incident: &mut Value, req: &Map<String, Value>, n: u32) {
    let i = incident.as_object_mut().unwrap();
    for field in ["name", "status"] {
        i.insert(field.into(), req[field].clone());
    }
    let status = req["status"].as_str().unwrap();
    i.insert("updated_at".into(), json!(now()));
    i.insert(
        "resolved_at".into(),
        if status == "resolved" {
            json!(now())
        } else {
            Value::Null
        },
    );
    let affected: Vec<Value> = req["component_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| json!({ "code": c, "new_status": req["components"][c.as_str().unwrap()] }))
        .collect();
    i.insert("components".into(), Value::Array(affected.clone()));
    let metadata = i["metadata"].as_object_mut().unwrap();
    for (k, v) in req["metadata"].as_object().unwrap() {
        metadata.insert(k.clone(), v.clone());
    }
    let update = json!({
        "id": format!("upd{n:09}"),
        "incident_id": i["id"],
        "status": status,
        "body": req["body"],
        "created_at": now(),
        "display_at": now(),
        "affected_components": affected,
        "deliver_notifications": req["deliver_notifications"],
    });
    i.get_mut("incident_updates")
        .unwrap()
        .as_array_mut()
        .unwrap()
        .insert(0, update);
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

/// The request schema of POST and PATCH /pages/{page_id}/incidents.
fn check_incident_request(v: &Value) -> Result<(), String> {
    let top = v.as_object().ok_or("body is not an object")?;
    if top.len() != 1 {
        return Err(format!(
            "body has fields besides incident: {:?}",
            top.keys()
        ));
    }
    let i = top
        .get("incident")
        .and_then(Value::as_object)
        .ok_or("body has no incident object")?;
    if let Some(k) = i.keys().find(|k| !INCIDENT_FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown incident field {k}"));
    }
    let name = i
        .get("name")
        .and_then(Value::as_str)
        .ok_or("name missing")?;
    let n = name.chars().count();
    if n == 0 || n > 255 {
        return Err(format!("Name is {n} characters (1..255)"));
    }
    let status = i
        .get("status")
        .and_then(Value::as_str)
        .ok_or("status missing")?;
    if !INCIDENT_STATUSES.contains(&status) {
        return Err(format!("status {status:?} is not an incident status"));
    }
    let body = i
        .get("body")
        .and_then(Value::as_str)
        .ok_or("body missing")?;
    if body.chars().count() > 25_000 {
        return Err(format!(
            "Body is {} characters (max 25000)",
            body.chars().count()
        ));
    }
    let ids = i
        .get("component_ids")
        .and_then(Value::as_array)
        .ok_or("component_ids missing")?;
    let components = i
        .get("components")
        .and_then(Value::as_object)
        .ok_or("components missing")?;
    let mut listed = Vec::new();
    for id in ids {
        let id = id.as_str().ok_or("component_ids holds a non-string")?;
        if !PAGE_COMPONENTS.contains(&id) {
            return Err(format!("component {id} is not on the page"));
        }
        if listed.contains(&id) {
            return Err(format!("component {id} listed twice"));
        }
        if !components.contains_key(id) {
            return Err(format!("component {id} has no status"));
        }
        listed.push(id);
    }
    for (id, s) in components {
        if !listed.contains(&id.as_str()) {
            return Err(format!(
                "components has {id}, which is not in component_ids"
            ));
        }
        let s = s.as_str().ok_or("a component status is not a string")?;
        if !COMPONENT_STATUSES.contains(&s) {
            return Err(format!("component status {s:?} is not allowed"));
        }
    }
    if !i
        .get("deliver_notifications")
        .is_some_and(Value::is_boolean)
    {
        return Err("deliver_notifications is not a boolean".into());
    }
    let metadata = i
        .get("metadata")
        .and_then(Value::as_object)
        .ok_or("metadata missing")?;
    if !metadata.values().all(Value::is_object) {
        return Err("metadata values must be objects".into());
    }
    match metadata.get("warroom").and_then(|w| w.get("operation_id")) {
        Some(Value::String(op)) if !op.is_empty() => Ok(()),
        _ => Err("metadata.warroom.operation_id missing".into()),
    }
}

struct Fixture {
    base_url: String,
    book: Shared,
}

impl Fixture {
    async fn start() -> Fixture {
        let book = Shared::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(book.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fixture {
            base_url: format!("http://{addr}/v1"),
            book,
        }
    }

    fn config(&self, api_key: &str, timeout: Duration) -> StatuspageConfig {
        StatuspageConfig {
            base_url: self.base_url.clone(),
            page_id: PAGE.into(),
            api_key: api_key.into(),
            components: BTreeMap::from([
                ("imap".into(), "cmp-imap".into()),
                ("smtp-in".into(), "cmp-smtp".into()),
            ]),
            timeout,
        }
    }

    /// The channel as the gateway builds it, minus the 1 s spacing.
    fn channel_with(&self, api_key: &str, timeout: Duration) -> Statuspage {
        Statuspage::new(self.config(api_key, timeout))
            .unwrap()
            .with_min_interval(Duration::from_millis(10))
    }

    fn channel(&self) -> Statuspage {
        self.channel_with(KEY, Duration::from_secs(5))
    }

    fn script(&self, method: Method, action: Action) {
        self.book.lock().unwrap().script.push_back((method, action));
    }

    fn seen(&self) -> Vec<Seen> {
        self.book.lock().unwrap().seen.clone()
    }

    /// "POST /v1/pages/…/incidents", …
    fn requests(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }

    fn incidents(&self) -> Vec<Value> {
        self.book.lock().unwrap().incidents.clone()
    }

    /// No request the real API would have refused as malformed.
    fn assert_no_violations(&self) {
        let v = self.book.lock().unwrap().violations.clone();
        assert!(v.is_empty(), "requests the API would refuse: {v:#?}");
    }
}

fn incidents_path() -> String {
    format!("/v1/pages/{PAGE}/incidents")
}

// ---------------------------------------------------------------------------
// The gateway's side: memory, facts, the outbox worker's bookkeeping.

#[derive(Default)]
struct MapMemory(Mutex<HashMap<String, String>>);

impl Memory for MapMemory {
    fn get(&self, key: &str) -> Option<String> {
        self.0.lock().unwrap().get(key).cloned()
    }
    fn put(&self, key: &str, value: &str) -> Result<(), MemoryError> {
        self.0.lock().unwrap().insert(key.into(), value.into());
        Ok(())
    }
}

impl MapMemory {
    fn incident_id(&self) -> String {
        self.get("incident_id").unwrap_or_default()
    }
}

struct NoFacts;

impl Facts for NoFacts {
    fn affected_tenants(&self) -> Vec<TenantNotice> {
        Vec::new()
    }
    fn affected_mailboxes(&self, _: &str) -> Vec<MailboxRow> {
        Vec::new()
    }
}

fn update(seq: u64, state: IncidentState, title: &str) -> Update {
    Update {
        id: format!("su-{seq:06}"),
        seq,
        operation_id: format!("op-{seq}"),
        state,
        title: title.into(),
        body: format!("Update {seq}: IMAP logins fail on cluster eu-2; no mail is lost."),
        components: vec![
            ("imap".into(), "major_outage".into()),
            ("smtp-in".into(), "degraded_performance".into()),
            ("pop3".into(), "partial_outage".into()),
        ],
        next_update: None,
        published_by: "alice".into(),
        published_at: chrono::Utc::now(),
        simulated: false,
    }
}

fn delivery(u: &Update) -> Delivery {
    Delivery {
        id: u.seq,
        update_id: u.id.clone(),
        channel: "statuspage".into(),
        target: String::new(),
        attempts: 0,
        last_detail: String::new(),
        maybe_applied: false,
    }
}

/// One attempt, then the bookkeeping the outbox worker does.
async fn attempt(ch: &Statuspage, memory: &MapMemory, u: &Update, d: &mut Delivery) -> Outcome {
    let ctx = Context {
        facts: &NoFacts,
        memory,
    };
    let out = ch.deliver(u, d, &ctx).await;
    d.attempts += 1;
    // What the outbox stores: the text, and the flag (the channel reads the
    // flag, never the text).
    (d.last_detail, d.maybe_applied) = match &out {
        Outcome::Sent(s) | Outcome::Failed(s) => (s.clone(), false),
        Outcome::Retry {
            reason,
            maybe_applied,
            ..
        } => (reason.clone(), *maybe_applied),
    };
    out
}

/// A fresh delivery of `u` that must be sent on its first attempt.
async fn send(ch: &Statuspage, memory: &MapMemory, u: &Update) -> String {
    match attempt(ch, memory, u, &mut delivery(u)).await {
        Outcome::Sent(s) => s,
        other => panic!("{} not sent: {other:?}", u.id),
    }
}

fn text(o: &Outcome) -> &str {
    match o {
        Outcome::Sent(s) | Outcome::Failed(s) => s,
        Outcome::Retry { reason, .. } => reason,
    }
}

// ---------------------------------------------------------------------------
// The contract.

/// The first update opens the incident with a POST, the second PATCHes that
/// same incident: one incident with two incident_updates. What is sent is
/// exactly what the preview showed; the unmapped component is left out.
#[tokio::test]
async fn first_update_posts_and_the_next_patches_the_same_incident() {
    let fx = Fixture::start().await;
    let ch = fx.channel();
    let memory = MapMemory::default();
    assert_eq!(ch.name(), "statuspage");
    let u1 = update(
        1,
        IncidentState::Investigating,
        "IMAP logins failing on eu-2",
    );
    assert_eq!(ch.targets(&u1, &NoFacts), vec![String::new()]);
    let preview = ch.preview(&u1, &NoFacts);

    let sent = send(&ch, &memory, &u1).await;
    let incidents = fx.incidents();
    assert_eq!(incidents.len(), 1);
    let id = incidents[0]["id"].as_str().unwrap().to_string();
    assert!(sent.contains(&id), "{sent}");
    assert_eq!(memory.incident_id(), id, "the incident id is remembered");
    assert_eq!(fx.requests(), [format!("POST {}", incidents_path())]);

    // The preview is the body as sent, byte for byte.
    assert_eq!(preview[0].content_type, "application/json");
    assert_eq!(preview[0].content, fx.seen()[0].body);
    assert!(
        preview[1]
            .content
            .starts_with(&format!("POST {}", fx.base_url))
    );
    assert!(
        preview[1].content.contains("pop3"),
        "{}",
        preview[1].content
    );
    assert_eq!(
        incidents[0]["components"],
        json!([
            {"code": "cmp-imap", "new_status": "major_outage"},
            {"code": "cmp-smtp", "new_status": "degraded_performance"},
        ])
    );

    let u2 = update(2, IncidentState::Identified, "IMAP logins failing on eu-2");
    let preview2 = ch.preview(&u2, &NoFacts);
    send(&ch, &memory, &u2).await;
    assert_eq!(fx.requests()[1], format!("PATCH {}/{id}", incidents_path()));
    assert_eq!(preview2[0].content, fx.seen()[1].body);
    let incidents = fx.incidents();
    assert_eq!(incidents.len(), 1, "one incident");
    let updates = incidents[0]["incident_updates"].as_array().unwrap();
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0]["status"], "identified");
    assert_eq!(updates[1]["status"], "investigating");
    assert_eq!(
        incidents[0]["metadata"]["warroom"]["operation_id"],
        "su-000002"
    );
    assert_eq!(memory.incident_id(), id);

    // The worker hands update 2 over again (say the gateway restarted before
    // it recorded the outcome): reported sent, nothing sent again.
    let again = send(&ch, &memory, &u2).await;
    assert!(again.contains("not sent again"), "{again}");
    assert_eq!(fx.seen().len(), 2);
    fx.assert_no_violations();
}

/// A resolved update PATCHes the incident to resolved and forgets it; the
/// next update opens a new incident.
#[tokio::test]
async fn resolved_closes_the_incident_and_a_later_update_opens_a_new_one() {
    let fx = Fixture::start().await;
    let ch = fx.channel();
    let memory = MapMemory::default();
    send(
        &ch,
        &memory,
        &update(1, IncidentState::Investigating, "IMAP down"),
    )
    .await;
    let first = memory.incident_id();
    send(
        &ch,
        &memory,
        &update(2, IncidentState::Resolved, "IMAP down"),
    )
    .await;
    assert_eq!(
        fx.requests()[1],
        format!("PATCH {}/{first}", incidents_path())
    );
    assert_eq!(memory.incident_id(), "", "forgotten once resolved");

    send(
        &ch,
        &memory,
        &update(3, IncidentState::Investigating, "IMAP down again"),
    )
    .await;
    assert_eq!(fx.requests()[2], format!("POST {}", incidents_path()));
    let incidents = fx.incidents();
    assert_eq!(incidents.len(), 2);
    assert_eq!(incidents[0]["status"], "resolved");
    assert_eq!(incidents[1]["status"], "investigating");
    assert_ne!(memory.incident_id(), first);
    assert_eq!(memory.incident_id(), incidents[1]["id"].as_str().unwrap());
    fx.assert_no_violations();
}

/// 500, then 429 with Retry-After: 1, then an accepted create whose answer
/// comes after the client's time-out: the retry finds the operation id among
/// the unresolved incidents and reports it sent. One incident, not three.
#[tokio::test]
async fn errors_and_a_late_answer_still_make_exactly_one_incident() {
    let fx = Fixture::start().await;
    let ch = fx.channel_with(KEY, Duration::from_millis(400));
    let memory = MapMemory::default();
    fx.script(Method::POST, Action::ServerError);
    fx.script(Method::POST, Action::RateLimited(1));
    fx.script(Method::POST, Action::AcceptLate(Duration::from_secs(2)));
    let u1 = update(
        1,
        IncidentState::Investigating,
        "IMAP logins failing on eu-2",
    );
    let mut d = delivery(&u1);

    let o = attempt(&ch, &memory, &u1, &mut d).await;
    assert!(
        matches!(&o, Outcome::Retry { reason, after: None, maybe_applied: true } if reason.starts_with("server error")),
        "{o:?}"
    );
    let o = attempt(&ch, &memory, &u1, &mut d).await;
    assert!(
        matches!(&o, Outcome::Retry { after: Some(a), .. } if *a == Duration::from_secs(1)),
        "{o:?}"
    );
    let o = attempt(&ch, &memory, &u1, &mut d).await;
    assert!(
        matches!(&o, Outcome::Retry { reason, after: None, maybe_applied: true } if reason.starts_with("timed out")),
        "{o:?}"
    );
    assert_eq!(fx.incidents().len(), 1, "the late create was stored");
    let o = attempt(&ch, &memory, &u1, &mut d).await;
    let Outcome::Sent(sent) = &o else {
        panic!("{o:?}")
    };

    let incidents = fx.incidents();
    assert_eq!(incidents.len(), 1, "exactly one incident");
    let id = incidents[0]["id"].as_str().unwrap();
    assert!(sent.contains(id), "{sent}");
    assert_eq!(
        incidents[0]["incident_updates"].as_array().unwrap().len(),
        1
    );
    assert_eq!(memory.incident_id(), id, "remembered from the lookup");
    let create = format!("POST {}", incidents_path());
    let lookup = format!("GET {}/unresolved", incidents_path());
    assert_eq!(
        fx.requests(),
        [
            create.clone(),
            lookup.clone(), // after the 500: was it stored anyway? no
            create.clone(), // 429
            create,         // stored, answered too late
            lookup,         // found: not sent again
        ]
    );

    // And the next update changes that incident.
    send(
        &ch,
        &memory,
        &update(2, IncidentState::Identified, "IMAP logins failing"),
    )
    .await;
    assert_eq!(fx.requests()[5], format!("PATCH {}/{id}", incidents_path()));
    assert_eq!(fx.incidents().len(), 1);
    fx.assert_no_violations();
}

/// The worker may hand update 2 over while update 1 waits for its retry
/// after a time-out. Update 1's create did reach Statuspage: update 2 finds
/// it and PATCHes that incident instead of opening a second one, and update
/// 1's retry sends nothing.
#[tokio::test]
async fn a_newer_update_joins_the_incident_of_an_unconfirmed_older_one() {
    let fx = Fixture::start().await;
    let ch = fx.channel_with(KEY, Duration::from_millis(400));
    let memory = MapMemory::default();
    fx.script(Method::POST, Action::AcceptLate(Duration::from_secs(2)));
    let u1 = update(1, IncidentState::Investigating, "IMAP down");
    let mut d1 = delivery(&u1);
    let o = attempt(&ch, &memory, &u1, &mut d1).await;
    assert!(text(&o).starts_with("timed out"), "{o:?}");

    send(
        &ch,
        &memory,
        &update(2, IncidentState::Identified, "IMAP down"),
    )
    .await;
    let incidents = fx.incidents();
    assert_eq!(incidents.len(), 1);
    let id = incidents[0]["id"].as_str().unwrap();
    assert_eq!(memory.incident_id(), id);
    assert_eq!(
        incidents[0]["incident_updates"].as_array().unwrap().len(),
        2
    );

    let o = attempt(&ch, &memory, &u1, &mut d1).await;
    assert!(matches!(&o, Outcome::Sent(s) if s.contains("#2")), "{o:?}");
    assert_eq!(
        fx.requests(),
        [
            format!("POST {}", incidents_path()),
            format!("GET {}/unresolved", incidents_path()),
            format!("PATCH {}/{id}", incidents_path()),
        ]
    );
    assert_eq!(fx.incidents()[0]["status"], "identified", "never goes back");
    fx.assert_no_violations();
}

/// Update 1 got a 500 and was not stored; update 2, handed over first, opens
/// the incident; update 1's retry then sends nothing (it would set an older
/// status).
#[tokio::test]
async fn an_older_update_after_a_newer_one_sends_nothing() {
    let fx = Fixture::start().await;
    let ch = fx.channel();
    let memory = MapMemory::default();
    fx.script(Method::POST, Action::ServerError);
    let u1 = update(1, IncidentState::Investigating, "IMAP down");
    let mut d1 = delivery(&u1);
    let o = attempt(&ch, &memory, &u1, &mut d1).await;
    assert!(text(&o).starts_with("server error"), "{o:?}");
    send(
        &ch,
        &memory,
        &update(2, IncidentState::Identified, "IMAP down"),
    )
    .await;
    let o = attempt(&ch, &memory, &u1, &mut d1).await;
    assert!(
        matches!(&o, Outcome::Sent(s) if s.contains("not sent")),
        "{o:?}"
    );
    let incidents = fx.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["status"], "identified");
    assert_eq!(
        fx.seen().len(),
        3,
        "POST (500), GET, POST; nothing for the retry"
    );
    fx.assert_no_violations();
}

/// A request that hangs and is never stored: the retry's lookup does not
/// find it and sends again, once.
#[tokio::test]
async fn a_lost_request_is_sent_again_after_the_lookup() {
    let fx = Fixture::start().await;
    let ch = fx.channel_with(KEY, Duration::from_millis(400));
    let memory = MapMemory::default();
    fx.script(Method::POST, Action::Hang(Duration::from_secs(2)));
    let u1 = update(1, IncidentState::Investigating, "IMAP down");
    let mut d = delivery(&u1);
    let o = attempt(&ch, &memory, &u1, &mut d).await;
    assert!(text(&o).starts_with("timed out"), "{o:?}");
    let o = attempt(&ch, &memory, &u1, &mut d).await;
    assert!(matches!(o, Outcome::Sent(_)), "{o:?}");
    assert_eq!(fx.incidents().len(), 1);
    assert_eq!(
        fx.requests()[1..],
        [
            format!("GET {}/unresolved", incidents_path()),
            format!("POST {}", incidents_path()),
        ]
    );
    fx.assert_no_violations();
}

/// An accepted create answered with garbage or without an id: a retry, never
/// a panic; the next attempt finds the incident instead of making another.
/// A garbage lookup answer is a retry as well.
#[tokio::test]
async fn unreadable_answers_are_retried_without_duplicates() {
    for garbage in ["{not json", r#"{"name": "IMAP down"}"#, r#"{"id": null}"#] {
        let fx = Fixture::start().await;
        let ch = fx.channel();
        let memory = MapMemory::default();
        fx.script(Method::POST, Action::AcceptGarbage(garbage));
        fx.script(
            Method::GET,
            Action::AcceptGarbage("<html>maintenance</html>"),
        );
        let u1 = update(1, IncidentState::Investigating, "IMAP down");
        let mut d = delivery(&u1);
        let o = attempt(&ch, &memory, &u1, &mut d).await;
        assert!(
            matches!(&o, Outcome::Retry { reason, .. } if reason.starts_with("unreadable response")),
            "{garbage}: {o:?}"
        );
        let o = attempt(&ch, &memory, &u1, &mut d).await;
        assert!(
            matches!(&o, Outcome::Retry { reason, .. } if reason.starts_with("unconfirmed")),
            "{garbage}: {o:?}"
        );
        let o = attempt(&ch, &memory, &u1, &mut d).await;
        assert!(matches!(o, Outcome::Sent(_)), "{garbage}: {o:?}");
        let incidents = fx.incidents();
        assert_eq!(incidents.len(), 1, "{garbage}");
        assert_eq!(memory.incident_id(), incidents[0]["id"].as_str().unwrap());
        assert_eq!(fx.seen().len(), 3, "POST, GET (garbage), GET (found)");
        fx.assert_no_violations();
    }
}

/// A refused key fails for good and the outcome never shows the key; a 422
/// fails for good with the API's message; nothing is stored.
#[tokio::test]
async fn refused_key_and_rejected_request_fail_for_good() {
    let fx = Fixture::start().await;
    let wrong = "wrong-key-5e2a77c1d0";
    let ch = fx.channel_with(wrong, Duration::from_secs(5));
    assert!(!format!("{:?}", fx.config(wrong, Duration::from_secs(5))).contains(wrong));
    assert!(!format!("{ch:?}").contains(wrong));
    let memory = MapMemory::default();
    let u1 = update(1, IncidentState::Investigating, "IMAP down");
    let o = attempt(&ch, &memory, &u1, &mut delivery(&u1)).await;
    let Outcome::Failed(why) = &o else {
        panic!("{o:?}")
    };
    assert!(why.contains("API key"), "{why}");
    assert!(!why.contains(wrong) && !why.contains(KEY), "{why}");
    assert!(
        ch.preview(&u1, &NoFacts)
            .iter()
            .all(|p| !p.content.contains(wrong))
    );

    let ch = fx.channel();
    fx.script(
        Method::POST,
        Action::Reject(422, "Component ids are not valid for this page"),
    );
    let o = attempt(&ch, &memory, &u1, &mut delivery(&u1)).await;
    assert!(
        matches!(&o, Outcome::Failed(why) if why.contains("Component ids are not valid for this page")),
        "{o:?}"
    );
    assert!(fx.incidents().is_empty());
    assert_eq!(memory.incident_id(), "");
    fx.assert_no_violations();
}

/// An incident deleted on Statuspage: the PATCH's 404 fails the update, and
/// the next update opens a new incident.
#[tokio::test]
async fn a_deleted_incident_fails_the_update_and_is_forgotten() {
    let fx = Fixture::start().await;
    let ch = fx.channel();
    let memory = MapMemory::default();
    send(
        &ch,
        &memory,
        &update(1, IncidentState::Investigating, "IMAP down"),
    )
    .await;
    fx.book.lock().unwrap().incidents.clear();
    let u2 = update(2, IncidentState::Identified, "IMAP down");
    let o = attempt(&ch, &memory, &u2, &mut delivery(&u2)).await;
    assert!(
        matches!(&o, Outcome::Failed(why) if why.contains("Incident not found")),
        "{o:?}"
    );
    assert_eq!(memory.incident_id(), "");
    send(
        &ch,
        &memory,
        &update(3, IncidentState::Identified, "IMAP down"),
    )
    .await;
    assert_eq!(fx.requests()[2], format!("POST {}", incidents_path()));
    assert_eq!(fx.incidents().len(), 1);
    fx.assert_no_violations();
}

/// Limits are checked before sending: a 256-character title or a
/// 25,001-character body fails without any request; the limits themselves
/// are accepted by the API.
#[tokio::test]
async fn limits_fail_before_any_request() {
    let fx = Fixture::start().await;
    let ch = fx.channel();
    let memory = MapMemory::default();
    let long_title = update(1, IncidentState::Investigating, &"T".repeat(256));
    let o = attempt(&ch, &memory, &long_title, &mut delivery(&long_title)).await;
    assert!(
        matches!(&o, Outcome::Failed(why) if why.contains("255") && why.contains("256")),
        "{o:?}"
    );
    let mut long_body = update(1, IncidentState::Investigating, "IMAP down");
    long_body.body = "b".repeat(25_001);
    let o = attempt(&ch, &memory, &long_body, &mut delivery(&long_body)).await;
    assert!(
        matches!(&o, Outcome::Failed(why) if why.contains("25000")),
        "{o:?}"
    );
    assert!(fx.seen().is_empty(), "no request reached the API");

    let mut at_limits = update(1, IncidentState::Investigating, &"ü".repeat(255));
    at_limits.body = "ü".repeat(25_000);
    send(&ch, &memory, &at_limits).await;
    assert_eq!(fx.incidents().len(), 1);
    fx.assert_no_violations();
}
