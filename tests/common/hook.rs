//! A local webhook receiver for the tests: records every POST body (JSON)
//! and answers with whatever status it is set to.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;

pub struct Hook {
    pub url: String,
    posts: Arc<Mutex<Vec<serde_json::Value>>>,
    /// The `id` of each POST answered with a success.
    accepted: Arc<Mutex<Vec<String>>>,
    status: Arc<AtomicU16>,
    retry_after: Arc<Mutex<Option<String>>>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct HookState {
    posts: Arc<Mutex<Vec<serde_json::Value>>>,
    accepted: Arc<Mutex<Vec<String>>>,
    status: Arc<AtomicU16>,
    retry_after: Arc<Mutex<Option<String>>>,
}

async fn receive(
    State(h): State<HookState>,
    body: axum::body::Bytes,
) -> (StatusCode, axum::http::HeaderMap) {
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::json!({ "unparsable": String::from_utf8_lossy(&body) }));
    let status = StatusCode::from_u16(h.status.load(Ordering::SeqCst)).unwrap();
    if status.is_success() {
        let id = v["id"].as_str().unwrap_or("?").to_string();
        h.accepted.lock().unwrap().push(id);
    }
    h.posts.lock().unwrap().push(v);
    let mut headers = axum::http::HeaderMap::new();
    if let Some(after) = h
        .retry_after
        .lock()
        .unwrap()
        .as_ref()
        .filter(|_| !status.is_success())
    {
        headers.insert("retry-after", after.parse().unwrap());
    }
    (status, headers)
}

impl Hook {
    pub async fn start(status: u16) -> Hook {
        let state = HookState {
            posts: Arc::new(Mutex::new(Vec::new())),
            accepted: Arc::new(Mutex::new(Vec::new())),
            status: Arc::new(AtomicU16::new(status)),
            retry_after: Arc::new(Mutex::new(None)),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Hook {
            url,
            posts: state.posts,
            accepted: state.accepted,
            status: state.status,
            retry_after: state.retry_after,
            server,
        }
    }

    /// Sends `Retry-After: VALUE` with every answer that is not a success.
    pub fn retry_after(&self, value: &str) {
        *self.retry_after.lock().unwrap() = Some(value.to_string());
    }

    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn posts(&self) -> Vec<serde_json::Value> {
        self.posts.lock().unwrap().clone()
    }

    /// The `id` of every POST answered with a success, in order.
    pub fn accepted_ids(&self) -> Vec<String> {
        self.accepted.lock().unwrap().clone()
    }

    /// The `id` of every POST received, in order.
    pub fn ids(&self) -> Vec<String> {
        self.posts()
            .iter()
            .map(|p| p["id"].as_str().unwrap_or("?").to_string())
            .collect()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.server.abort();
    }
}
