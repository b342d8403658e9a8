//! The built-in public status page, served by the gateway over HTTP: the
//! update history as HTML (`/`), JSON (`/index.json`) and an Atom feed
//! (`/feed.atom`). Everything shown is escaped: a title is text, never
//! markup.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;

use super::hub::Hub;
use crate::channels::Update;

/// `&`, `<`, `>`, `"`, `'` as entities: safe in HTML text, attributes and XML.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Line ends and tabs are text; other control characters (ESC...)
            // have no place in a page or a feed.
            '\n' | '\r' | '\t' => out.push(c),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The published updates, without their deliveries (the page shows none).
fn updates(hub: &Hub) -> Result<Vec<Update>, String> {
    hub.record
        .store()
        .status_updates()
        .map_err(|e| e.to_string())
}

fn title(hub: &Hub) -> String {
    title_of(&hub.view().source().overview())
}

fn title_of(o: &crate::domain::Overview) -> String {
    if o.incident.title.is_empty() {
        "Service status".into()
    } else {
        o.incident.title.clone()
    }
}

/// The page as HTML: newest update first.
pub(crate) fn html(title: &str, updates: &[Update], simulated: bool) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"60\">\
         <link rel=\"alternate\" type=\"application/atom+xml\" href=\"feed.atom\">",
    );
    out.push_str(&format!("<title>{}</title>", escape(title)));
    out.push_str(
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#111}\
         .state{font-weight:700;text-transform:uppercase;letter-spacing:.04em}\
         .investigating,.identified{color:#b45309}.monitoring{color:#1d4ed8}.resolved{color:#15803d}\
         article{border-top:1px solid #ddd;padding:1rem 0}.meta{color:#555;font-size:.9rem}\
         .drill{background:#fde68a;padding:.5rem 1rem;font-weight:700}pre{white-space:pre-wrap;font:inherit}</style>\
         </head><body>",
    );
    if simulated {
        out.push_str("<p class=\"drill\">SIMULATED — a drill, not production.</p>");
    }
    out.push_str(&format!("<h1>{}</h1>", escape(title)));
    match updates.last() {
        None => out.push_str("<p>No incident updates have been posted.</p>"),
        Some(latest) => {
            out.push_str(&format!(
                "<p>Current status: <span class=\"state {s}\">{s}</span>",
                s = latest.state.as_str()
            ));
            if let Some(next) = latest.next_update {
                out.push_str(&format!(
                    " · next update by <time datetime=\"{}\">{} UTC</time>",
                    next.to_rfc3339(),
                    next.format("%Y-%m-%d %H:%M")
                ));
            }
            out.push_str("</p>");
        }
    }
    for u in updates.iter().rev() {
        out.push_str(&format!(
            "<article id=\"{id}\"><h2><span class=\"state {s}\">{s}</span> — {t}</h2>\
             <p class=\"meta\">Posted <time datetime=\"{at}\">{atf} UTC</time></p><pre>{b}</pre>",
            id = escape(&u.id),
            s = u.state.as_str(),
            t = escape(&u.title),
            at = u.published_at.to_rfc3339(),
            atf = u.published_at.format("%Y-%m-%d %H:%M"),
            b = escape(&u.body),
        ));
        if !u.components.is_empty() {
            out.push_str("<ul>");
            for (id, status) in &u.components {
                out.push_str(&format!(
                    "<li>{}: {}</li>",
                    escape(id),
                    escape(&status.replace('_', " "))
                ));
            }
            out.push_str("</ul>");
        }
        out.push_str("</article>");
    }
    out.push_str("</body></html>\n");
    out
}

/// The history as JSON, newest first.
pub(crate) fn json_doc(title: &str, updates: &[Update]) -> serde_json::Value {
    json!({
        "title": title,
        "status": updates.last().map(|u| u.state.as_str()),
        "next_update_at": updates.last().and_then(|u| u.next_update).map(|t| t.to_rfc3339()),
        "updates": updates.iter().rev().map(|u| json!({
            "id": u.id,
            "state": u.state.as_str(),
            "title": u.title,
            "body": u.body,
            "components": u.components.iter().map(|(id, s)| json!({"id": id, "status": s})).collect::<Vec<_>>(),
            "next_update_at": u.next_update.map(|t| t.to_rfc3339()),
            "published_at": u.published_at.to_rfc3339(),
            "simulated": u.simulated,
        })).collect::<Vec<_>>(),
    })
}

/// The history as an Atom feed, newest first.
pub(crate) fn atom(title: &str, base: &str, updates: &[Update]) -> String {
    let updated = updates.last().map_or_else(
        || "1970-01-01T00:00:00Z".to_string(),
        |u| u.published_at.to_rfc3339(),
    );
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
         <title>{}</title><id>{}</id><updated>{updated}</updated><link href=\"{}\"/>",
        escape(title),
        escape(base),
        escape(base)
    );
    for u in updates.iter().rev() {
        out.push_str(&format!(
            "<entry><id>{base}#{id}</id><title>{s}: {t}</title><updated>{at}</updated>\
             <author><name>{who}</name></author><content type=\"text\">{b}</content></entry>",
            base = escape(base),
            id = escape(&u.id),
            s = u.state.as_str(),
            t = escape(&u.title),
            at = u.published_at.to_rfc3339(),
            who = escape(&u.published_by),
            b = escape(&u.body),
        ));
    }
    out.push_str("</feed>\n");
    out
}

/// Builds a body off the async runtime (the store and the source are
/// behind blocking locks); a failure is a 503 that says so, not a panic.
async fn respond(
    hub: Arc<Hub>,
    content_type: &'static str,
    body: impl FnOnce(&Hub) -> Result<String, String> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || body(&hub)).await {
        Ok(Ok(body)) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Ok(Err(e)) => {
            tracing::error!("status page: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "status history unavailable\n",
            )
                .into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn page(State(hub): State<Arc<Hub>>) -> Response {
    respond(hub, "text/html; charset=utf-8", |h| {
        let o = h.view().source().overview();
        Ok(html(&title_of(&o), &updates(h)?, o.simulated()))
    })
    .await
}

async fn json_page(State(hub): State<Arc<Hub>>) -> Response {
    respond(hub, "application/json", |h| {
        Ok(json_doc(&title(h), &updates(h)?).to_string())
    })
    .await
}

async fn feed(State(hub): State<Arc<Hub>>) -> Response {
    respond(hub, "application/atom+xml; charset=utf-8", |h| {
        let base = h.record.publishing().page_url.clone();
        Ok(atom(&title(h), &base, &updates(h)?))
    })
    .await
}

/// This machine's name, when it is a plain host name.
pub(crate) fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
}

/// The page's address as consoles (and the channels' messages) show it,
/// and what to warn about, for a page listening on `addr`. `configured` is
/// `[server] page_url`; `host` this machine's name. A page on 0.0.0.0 was
/// shown as `http://0.0.0.0:18090/`, which no reader can open.
pub(crate) fn public_url(
    addr: SocketAddr,
    configured: Option<&str>,
    host: Option<&str>,
) -> (String, Option<String>) {
    let beyond = !addr.ip().is_loopback();
    let url = match configured {
        Some(u) => u.to_string(),
        None if addr.ip().is_unspecified() => {
            let host = host.map(str::to_string).unwrap_or_else(|| match addr {
                SocketAddr::V4(_) => "127.0.0.1".into(),
                SocketAddr::V6(_) => "[::1]".into(),
            });
            format!("http://{host}:{}/", addr.port())
        }
        None => format!("http://{addr}/"),
    };
    let warning = beyond.then(|| {
        let mut w = format!(
            "the status page listens beyond loopback on {addr}: anyone who can reach it reads every published update"
        );
        if configured.is_none() && addr.ip().is_unspecified() {
            w.push_str(&format!(
                "; consoles are shown {url}: set [server] page_url to the address its readers use"
            ));
        }
        w
    });
    (url, warning)
}

/// Serves the page on `listener` until the task is aborted, within the
/// connection caps of `tracker`: HTTP/1.1 only, and a request whose headers
/// are not complete within `page_request_timeout` is closed.
pub(crate) fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    tracker: Arc<super::conn::Tracker>,
) -> tokio::task::JoinHandle<()> {
    let app = Router::new()
        .route("/", get(page))
        .route("/index.json", get(json_page))
        .route("/feed.atom", get(feed))
        .with_state(hub);
    let timeout = tracker.limits().page_request_timeout;
    tokio::spawn(async move {
        let mut incoming = super::conn::incoming(listener, tracker, None);
        while let Some(conn) = incoming.recv().await {
            let Ok(conn) = conn else { continue };
            let svc = hyper_util::service::TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(timeout)
                    .serve_connection(hyper_util::rt::TokioIo::new(conn), svc)
                    .await;
                if let Err(e) = served {
                    tracing::debug!("status page connection: {e}");
                }
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_titles_and_bodies_is_text() {
        let u = Update {
            id: "su-000001".into(),
            seq: 1,
            operation_id: "op".into(),
            state: crate::domain::IncidentState::Identified,
            title: "<script>alert(1)</script>".into(),
            body: "a & b \"quoted\" \x1b[2J".into(),
            components: vec![("imap".into(), "major_outage".into())],
            next_update: None,
            published_by: "ana".into(),
            published_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            simulated: true,
        };
        let page = html("Status <b>", std::slice::from_ref(&u), true);
        assert!(!page.contains("<script>") && page.contains("&lt;script&gt;"));
        assert!(page.contains("a &amp; b &quot;quoted&quot;") && !page.contains('\x1b'));
        assert!(page.contains("SIMULATED") && page.contains("major outage"));
        let feed = atom("Status", "http://127.0.0.1:8080/", &[u]);
        assert!(feed.contains("<title>identified: &lt;script&gt;alert(1)&lt;/script&gt;</title>"));
    }

    #[test]
    fn a_page_on_every_address_is_shown_under_a_usable_name_and_warned_about() {
        let any: SocketAddr = "0.0.0.0:18090".parse().unwrap();
        let (url, warning) = public_url(any, None, Some("noc-gw1"));
        assert_eq!(url, "http://noc-gw1:18090/");
        let w = warning.expect("a warning");
        assert!(w.contains("beyond loopback on 0.0.0.0:18090"), "{w}");
        assert!(
            w.contains("consoles are shown http://noc-gw1:18090/"),
            "{w}"
        );
        assert!(w.contains("[server] page_url"), "{w}");
        // No name to give: loopback, which works on this machine at least.
        assert_eq!(public_url(any, None, None).0, "http://127.0.0.1:18090/");
        let any6: SocketAddr = "[::]:18090".parse().unwrap();
        assert_eq!(public_url(any6, None, None).0, "http://[::1]:18090/");
        // The configured address wins; listening beyond loopback is still said.
        let (url, warning) = public_url(any, Some("https://status.example.net/"), Some("noc-gw1"));
        assert_eq!(url, "https://status.example.net/");
        assert!(!warning.unwrap().contains("page_url"));
        let lan: SocketAddr = "10.1.2.3:8080".parse().unwrap();
        let (url, warning) = public_url(lan, None, Some("noc-gw1"));
        assert_eq!(url, "http://10.1.2.3:8080/");
        assert!(warning.is_some());
        // Loopback: as it listens, and nothing to warn about.
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            public_url(lo, None, Some("noc-gw1")),
            ("http://127.0.0.1:8080/".into(), None)
        );
    }
}
