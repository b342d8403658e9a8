//! Status updates over real gRPC and HTTP: who may publish, what a bad draft
//! gets, what the preview shows, publishing once per operation id (and what
//! a retry gets), going backwards, the built-in page (HTML, JSON, Atom) and
//! what it does with whitespace, delivery across a gateway restart and
//! through a brief webhook outage, and what the page looks like in a real
//! browser (headless Chromium; the screenshot is kept in /tmp/wr).

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

mod common;

use common::hook::Hook;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tonic::Code;
use warroom::api::{self, pb};
use warroom::channels::Page;
use warroom::channels::webhook::Webhook;
use warroom::client::Client;
use warroom::domain::format::thousands;
use warroom::domain::priority::Role;
use warroom::gateway::publish::{Publishing, default_components};
use warroom::gateway::{Access, Gateway};
use warroom::store::Location;

const COMMS: &str = "comms-cy-0123456789abcdef";
const OPERATOR: &str = "operator-ana-0123456789abcdef";

fn access() -> Access {
    Access::new(
        vec![
            (COMMS.into(), "cy".into(), Role::Comms),
            (OPERATOR.into(), "ana".into(), Role::Operator),
        ],
        true,
    )
    .unwrap()
}

// ------------------------------------------------------------- gateway

/// A gateway on loopback with the built-in page (and a webhook to `hook`,
/// when given), its state in `state` (or in memory). Returns it and the
/// page's URL.
async fn gateway(state: Option<&Location>, hook: Option<&str>) -> (Gateway, String) {
    let hub = match state {
        Some(at) => common::hub_with_store(common::small(), at),
        None => common::hub_with_state(common::small(), None),
    };
    let mut channels: Vec<Arc<dyn warroom::channels::Channel>> = vec![Arc::new(Page)];
    if let Some(url) = hook {
        channels.push(Arc::new(
            Webhook::new(url, Duration::from_secs(5)).expect("webhook url"),
        ));
    }
    hub.set_publishing(Publishing {
        channels,
        components: default_components(),
        page_url: String::new(),
    });
    let mut gw = common::serve(hub, access()).await;
    let page = gw
        .serve_page(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .unwrap();
    (gw, page)
}

/// Mid-reindex in the simulated incident: every figure is non-trivial.
fn advance_to_mid_reindex(gw: &Gateway) {
    for _ in 0..(7 * 60) {
        gw.hub.tick();
    }
}

/// A draft whose next update is 90 minutes ahead on the incident's clock
/// (the simulated one: this is a drill).
fn draft(gw: &Gateway, state: pb::IncidentState, title: &str, body: &str) -> pb::StatusUpdateDraft {
    pb::StatusUpdateDraft {
        state: state as i32,
        title: title.into(),
        body: body.into(),
        components: vec![pb::ComponentStatus {
            component_id: "imap".into(),
            status: "major_outage".into(),
        }],
        next_update_at: (state != pb::IncidentState::Resolved)
            .then(|| api::ts(gw.hub.now() + chrono::Duration::minutes(90))),
        ..Default::default()
    }
}

fn publish_req(
    d: pb::StatusUpdateDraft,
    op: &str,
    confirm: bool,
) -> pb::PublishStatusUpdateRequest {
    pb::PublishStatusUpdateRequest {
        draft: Some(d),
        operation_id: op.into(),
        confirm_warnings: confirm,
    }
}

/// Publishes, confirming warnings: these tests are about what goes out,
/// and a state the simulated incident does not show yet (an `identified`
/// update at T+0) is a warning to confirm. The warnings themselves are
/// tested where they are the point.
async fn publish(c: &mut Client, d: pb::StatusUpdateDraft, op: &str) -> pb::StatusUpdate {
    c.publish_status_update(publish_req(d, op, true))
        .await
        .unwrap_or_else(|e| panic!("publish {op}: {e:?}"))
        .into_inner()
        .update
        .expect("the published update")
}

async fn updates(c: &mut Client) -> Vec<pb::StatusUpdate> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_status_updates(pb::ListStatusUpdatesRequest {
                page_size: 100,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.updates);
        token = page.next_page_token;
        if token.is_empty() {
            return all;
        }
    }
}

fn delivery<'a>(u: &'a pb::StatusUpdate, channel: &str) -> &'a pb::Delivery {
    u.deliveries
        .iter()
        .find(|d| d.channel == channel)
        .unwrap_or_else(|| panic!("{} has no {channel} delivery: {:?}", u.id, u.deliveries))
}

/// Polls ListStatusUpdates (up to 10 s) until `done` holds for update `id`;
/// returns that update.
async fn wait_for(
    c: &mut Client,
    id: &str,
    what: &str,
    done: impl Fn(&pb::StatusUpdate) -> bool,
) -> pb::StatusUpdate {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let all = updates(c).await;
        let u = all.iter().find(|u| u.id == id).cloned();
        if let Some(u) = u.as_ref().filter(|u| done(u)) {
            return u.clone();
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{id}: not {what} within 10 s: {u:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn all_sent(u: &pb::StatusUpdate) -> bool {
    !u.deliveries.is_empty() && u.deliveries.iter().all(|d| d.state == "sent")
}

async fn get(url: &str) -> (String, String) {
    let r = reqwest::get(url).await.unwrap();
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (ct, r.text().await.unwrap())
}

// ------------------------------------------------------------- tests

#[tokio::test]
async fn only_the_comms_role_may_publish() {
    let (gw, _) = gateway(None, None).await;
    let d = draft(
        &gw,
        pb::IncidentState::Identified,
        "Mailbox access on Cluster A",
        "We know what is wrong.",
    );

    let e = common::client_with(&gw, None)
        .publish_status_update(publish_req(d.clone(), "op-1", false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = common::client_with(&gw, None)
        .preview_status_update(pb::PreviewStatusUpdateRequest {
            draft: Some(d.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    let e = common::client_with(&gw, Some(OPERATOR))
        .publish_status_update(publish_req(d.clone(), "op-1", false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message().contains("ana") && e.message().contains("comms role"),
        "{}",
        e.message()
    );
    let e = common::client_with(&gw, Some(OPERATOR))
        .preview_status_update(pb::PreviewStatusUpdateRequest {
            draft: Some(d.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // Nothing refused reached the page or the record.
    let mut reader = common::client_with(&gw, None);
    assert!(updates(&mut reader).await.is_empty());
    assert!(common::audit(&mut reader).await.is_empty());

    // Comms may; anyone may read what was published.
    let u = publish(&mut common::client_with(&gw, Some(COMMS)), d, "op-1").await;
    assert_eq!(
        (u.id.as_str(), u.published_by.as_str()),
        ("su-000001", "cy")
    );
    let listed = updates(&mut reader).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, "su-000001");
}

#[tokio::test]
async fn a_bad_draft_is_invalid_argument_naming_each_problem_and_publishes_nothing() {
    let hook = Hook::start(200).await;
    let (gw, _) = gateway(None, Some(&hook.url)).await;
    let mut c = common::client_with(&gw, Some(COMMS));
    let past = api::ts(gw.hub.now() - chrono::Duration::minutes(5));
    let good = draft(
        &gw,
        pb::IncidentState::Identified,
        "Mailbox access on Cluster A",
        "We know what is wrong.",
    );

    // Each problem alone, then all at once.
    let cases: Vec<(pb::StatusUpdateDraft, Vec<(&str, &str)>)> = vec![
        (
            pb::StatusUpdateDraft {
                next_update_at: Some(past),
                ..good.clone()
            },
            vec![("next_update", "is in the past")],
        ),
        (
            pb::StatusUpdateDraft {
                body: "x".repeat(25_001),
                ..good.clone()
            },
            vec![("body", "body is 25001 characters; the limit is 25000")],
        ),
        (
            pb::StatusUpdateDraft {
                body: "Expected back by {eta}.".into(),
                ..good.clone()
            },
            vec![("body", "unknown placeholder {eta}")],
        ),
        (
            pb::StatusUpdateDraft {
                components: vec![pb::ComponentStatus {
                    component_id: "pop3s".into(),
                    status: "major_outage".into(),
                }],
                ..good.clone()
            },
            vec![("components", "unknown component \"pop3s\"")],
        ),
        (
            pb::StatusUpdateDraft {
                body: "   ".into(),
                ..good.clone()
            },
            vec![("body", "body is empty")],
        ),
        // Control characters would reach the webhook's JSON and every
        // e-mail as written: refused with where they are (line ends and
        // tabs in the body are text).
        (
            pb::StatusUpdateDraft {
                title: "Cluster A\x1b]0;owned\x07".into(),
                ..good.clone()
            },
            vec![(
                "title",
                "title contains the control character U+001B at character 10",
            )],
        ),
        (
            pb::StatusUpdateDraft {
                body: "Logins fail.\r\nCluster\tA\u{9b}2J and\0".into(),
                ..good.clone()
            },
            vec![(
                "body",
                "body contains the control character U+009B at line 2, column 10",
            )],
        ),
        (
            pb::StatusUpdateDraft {
                next_update_at: Some(past),
                body: format!("{} {{eta}}", "x".repeat(25_001)),
                components: vec![pb::ComponentStatus {
                    component_id: "pop3s".into(),
                    status: "major_outage".into(),
                }],
                ..good.clone()
            },
            vec![
                ("next_update", "is in the past"),
                ("body", "body is 25007 characters; the limit is 25000"),
                ("body", "unknown placeholder {eta}"),
                ("components", "unknown component \"pop3s\""),
            ],
        ),
    ];
    for (i, (d, wants)) in cases.into_iter().enumerate() {
        let e = c
            .publish_status_update(publish_req(d.clone(), &format!("bad-{i}"), true))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "case {i}: {e:?}");
        let details: pb::PreviewStatusUpdateResponse = prost::Message::decode(e.details())
            .unwrap_or_else(|err| panic!("case {i}: details are not findings: {err}"));
        // The message is a summary: how many, and the first.
        let n = wants.len();
        let counted = if n == 1 {
            "refused: 1 error: ".to_string()
        } else {
            format!("refused: {n} errors; first: ")
        };
        let first = &details.findings[0];
        assert_eq!(
            e.message(),
            format!("{counted}{}: {}", first.field, first.message),
            "case {i}"
        );
        for (field, want) in &wants {
            assert!(
                details
                    .findings
                    .iter()
                    .any(|f| f.error && f.field == *field && f.message.contains(want)),
                "case {i}: no {field} finding with {want:?} in {:?}",
                details.findings
            );
        }
        // Errors exactly these (a state the sources contradict may add a
        // warning).
        assert_eq!(
            details.findings.iter().filter(|f| f.error).count(),
            wants.len(),
            "case {i}: {details:?}"
        );
        assert!(details.previews.is_empty());

        // The preview finds the same problems (and publishes nothing either).
        let p = c
            .preview_status_update(pb::PreviewStatusUpdateRequest { draft: Some(d) })
            .await
            .unwrap()
            .into_inner();
        let errors =
            |f: &[pb::LintFinding]| f.iter().filter(|f| f.error).cloned().collect::<Vec<_>>();
        assert_eq!(errors(&p.findings), errors(&details.findings), "case {i}");
    }

    // A next update time beyond what a timestamp can be says so (it used
    // to read "next update time is required").
    for seconds in [i64::MAX, i64::MIN] {
        let d = pb::StatusUpdateDraft {
            next_update_at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
            ..good.clone()
        };
        let e = c
            .publish_status_update(publish_req(d.clone(), "bad-time", true))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(
            e.message().contains("next_update_at") && e.message().contains("out of range"),
            "{}",
            e.message()
        );
        let e = c
            .preview_status_update(pb::PreviewStatusUpdateRequest { draft: Some(d) })
            .await
            .unwrap_err();
        assert!(e.message().contains("out of range"), "{}", e.message());
    }

    let mut reader = common::client_with(&gw, None);
    assert!(updates(&mut reader).await.is_empty());
    assert!(
        !common::audit(&mut reader)
            .await
            .iter()
            .any(|e| e.action == "publish"),
        "a refused draft is on the record"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hook.posts().is_empty(), "{:?}", hook.posts());
}

#[tokio::test]
async fn the_preview_fills_placeholders_with_the_figures_every_console_shows_and_publishes_nothing()
{
    let hook = Hook::start(200).await;
    let (gw, page_url) = gateway(None, Some(&hook.url)).await;
    advance_to_mid_reindex(&gw);

    let snap = common::client_with(&gw, None)
        .watch(pb::WatchRequest {})
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .expect("a snapshot");
    let t = snap.totals.unwrap();
    assert!(
        t.affected_mailboxes > 0 && t.restored_mailboxes > 0 && t.queued_messages > Some(999),
        "mid-reindex, every figure is there: {t:?}"
    );
    let restored =
        100.0 * t.restored_mailboxes as f64 / (t.restored_mailboxes + t.affected_mailboxes) as f64;
    let body = "{affected_mailboxes} mailboxes at {affected_tenants} tenants are without service; \
                {restored_pct} restored so far; {queue_depth} messages queued, none lost.";
    let want = format!(
        "{} mailboxes at {} tenants are without service; {:.0}% restored so far; {} messages queued, none lost.",
        thousands(t.affected_mailboxes),
        thousands(t.affected_tenants),
        restored,
        thousands(t.queued_messages.unwrap_or_default()),
    );
    assert!(want.contains(','), "thousands separators: {want}");

    let p = common::client_with(&gw, Some(COMMS))
        .preview_status_update(pb::PreviewStatusUpdateRequest {
            draft: Some(draft(
                &gw,
                pb::IncidentState::Identified,
                "Mailbox access on Cluster A",
                body,
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(p.findings.is_empty(), "{:?}", p.findings);
    let channels: Vec<&str> = p.previews.iter().map(|p| p.channel.as_str()).collect();
    assert_eq!(channels, ["page", "webhook"]);

    let page = &p.previews[0];
    assert_eq!(page.content_type, "text/plain");
    assert!(
        page.content.contains(&want),
        "page preview lacks {want:?}:\n{}",
        page.content
    );
    assert!(page.content.contains("Mailbox access on Cluster A"));

    let hook_preview = &p.previews[1];
    assert_eq!(hook_preview.content_type, "application/json");
    let json: serde_json::Value = serde_json::from_str(&hook_preview.content).unwrap();
    assert_eq!(json["body"], want.as_str());
    assert!(json["text"].as_str().unwrap().contains(&want), "{json}");
    assert_eq!(json["id"], "su-000001", "the id it would get");

    // Nothing went anywhere.
    let mut reader = common::client_with(&gw, None);
    assert!(updates(&mut reader).await.is_empty());
    assert!(common::audit(&mut reader).await.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hook.posts().is_empty(), "{:?}", hook.posts());
    let (_, page_json) = get(&format!("{page_url}index.json")).await;
    let page_json: serde_json::Value = serde_json::from_str(&page_json).unwrap();
    assert_eq!(page_json["updates"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn the_same_operation_id_twice_publishes_once_and_the_webhook_gets_it_once() {
    let hook = Hook::start(200).await;
    let (gw, page_url) = gateway(None, Some(&hook.url)).await;
    advance_to_mid_reindex(&gw);
    let mut watch = common::client_with(&gw, None)
        .watch(pb::WatchRequest {})
        .await
        .unwrap()
        .into_inner();
    let snap = watch.message().await.unwrap().unwrap();
    let board = snap
        .status
        .clone()
        .expect("the snapshot has a status board");
    assert!(board.latest.is_none(), "nothing published yet: {board:?}");
    assert_eq!(board.page_url, page_url);
    let affected = thousands(snap.totals.as_ref().unwrap().affected_mailboxes);

    let d = draft(
        &gw,
        pb::IncidentState::Identified,
        "Mailbox access on Cluster A",
        "{affected_mailboxes} mailboxes are without service.",
    );
    let mut comms = common::client_with(&gw, Some(COMMS));
    let first = publish(&mut comms, d.clone(), "op-identified-1").await;
    let again = publish(&mut comms, d, "op-identified-1").await;
    assert_eq!(first.id, "su-000001");
    assert_eq!(again.id, first.id, "a retry returns the same update");
    assert_eq!(
        first.rendered_body,
        format!("{affected} mailboxes are without service.")
    );
    let channels: Vec<&str> = first
        .deliveries
        .iter()
        .map(|d| d.channel.as_str())
        .collect();
    assert_eq!(channels, ["page", "webhook"]);

    let mut reader = common::client_with(&gw, None);
    let delivered = wait_for(&mut reader, "su-000001", "delivered", all_sent).await;
    assert_eq!(delivery(&delivered, "webhook").detail, "HTTP 200");
    assert_eq!(updates(&mut reader).await.len(), 1);
    let published: Vec<pb::AuditEvent> = common::audit(&mut reader)
        .await
        .into_iter()
        .filter(|e| e.action == "publish")
        .collect();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(
        (published[0].actor.as_str(), published[0].target.as_str()),
        ("cy", "su-000001")
    );

    // One POST, with a Slack-compatible text and the update's id.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posts = hook.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0]["id"], "su-000001");
    let text = posts[0]["text"].as_str().expect("a text field");
    assert!(
        text.contains(&format!("{affected} mailboxes are without service.")),
        "{text}"
    );
    assert!(
        text.contains("IDENTIFIED — Mailbox access on Cluster A"),
        "{text}"
    );

    // The next Watch update shows it on every console's header.
    gw.hub.tick();
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("a Watch update")
        .unwrap()
        .unwrap();
    let board = next.status.expect("every update has a status board");
    let latest = board.latest.expect("the latest update");
    assert_eq!(latest.id, "su-000001");
    assert_eq!(latest.published_by, "cy");
    assert_eq!(board.page_url, page_url);
    let webhook = board
        .channels
        .iter()
        .find(|c| c.channel == "webhook")
        .expect("webhook counted");
    assert_eq!((webhook.pending, webhook.sent, webhook.failed), (0, 1, 0));
}

/// A refusal must reach the client: 50 findings in the message and the
/// details took the trailers over HTTP/2's 16 KiB, and the client got
/// "h2 protocol error" instead. Now the message is a summary and the
/// details are bounded: what does not fit is counted.
#[tokio::test]
async fn a_refusal_with_hundreds_of_findings_reaches_the_client_summarised_and_counted() {
    let (gw, _) = gateway(None, None).await;
    let mut c = common::client_with(&gw, Some(COMMS));
    let body: String = (0..400)
        .map(|i| format!("{{a_placeholder_nobody_knows_{i:03}}} "))
        .collect();
    let e = c
        .publish_status_update(publish_req(
            draft(&gw, pb::IncidentState::Investigating, "Mail access", &body),
            "op-400",
            true,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().starts_with(
            "refused: 400 errors; first: body: unknown placeholder {a_placeholder_nobody_knows_000}"
        ),
        "{}",
        e.message()
    );
    assert!(e.message().len() < 400, "{}", e.message());
    let details: pb::PreviewStatusUpdateResponse = prost::Message::decode(e.details()).unwrap();
    let shown = details.findings.len();
    assert!(shown >= 60, "only {shown} findings shown");
    assert_eq!(shown + details.findings_left_out as usize, 400);
    for (i, f) in details.findings.iter().enumerate() {
        assert!(
            f.message.starts_with(&format!(
                "unknown placeholder {{a_placeholder_nobody_knows_{i:03}}}"
            )),
            "finding {i} is {:?}",
            f.message
        );
    }
    // The preview, an ordinary answer, lists every one whole.
    let p = c
        .preview_status_update(pb::PreviewStatusUpdateRequest {
            draft: Some(draft(
                &gw,
                pb::IncidentState::Investigating,
                "Mail access",
                &body,
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.findings.iter().filter(|f| f.error).count(), 400);
}

#[tokio::test]
async fn going_back_to_investigating_after_resolved_needs_confirming() {
    let (gw, _) = gateway(None, None).await;
    let mut c = common::client_with(&gw, Some(COMMS));
    publish(
        &mut c,
        draft(
            &gw,
            pb::IncidentState::Resolved,
            "Mailbox access restored",
            "Every mailbox is back.",
        ),
        "op-resolved",
    )
    .await;
    let back = draft(
        &gw,
        pb::IncidentState::Investigating,
        "Mailbox access failing again",
        "Logins are failing again on Cluster A.",
    );
    let e = c
        .publish_status_update(publish_req(back.clone(), "op-again", false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("from resolved to investigating"),
        "{}",
        e.message()
    );
    let details: pb::PreviewStatusUpdateResponse = prost::Message::decode(e.details()).unwrap();
    assert!(
        details.findings.iter().all(|f| !f.error) && details.findings.len() == 1,
        "one warning: {:?}",
        details.findings
    );
    assert_eq!(updates(&mut c).await.len(), 1, "nothing published");

    let u = c
        .publish_status_update(publish_req(back, "op-again", true))
        .await
        .unwrap()
        .into_inner()
        .update
        .unwrap();
    assert_eq!(u.id, "su-000002");
    let all = updates(&mut c).await;
    let states: Vec<i32> = all
        .iter()
        .map(|u| u.draft.as_ref().unwrap().state)
        .collect();
    assert_eq!(
        states,
        [
            pb::IncidentState::Resolved as i32,
            pb::IncidentState::Investigating as i32
        ]
    );
}

#[tokio::test]
async fn the_built_in_page_shows_every_update_newest_first_as_html_json_and_atom() {
    let (gw, page_url) = gateway(None, None).await;
    advance_to_mid_reindex(&gw);
    let affected = thousands(gw.hub.snapshot().totals.unwrap().affected_mailboxes);
    let mut c = common::client_with(&gw, Some(COMMS));
    publish(
        &mut c,
        draft(
            &gw,
            pb::IncidentState::Identified,
            "<script>alert(1)</script> Mailbox access",
            "{affected_mailboxes} mailboxes are without service; IMAP & POP are affected.",
        ),
        "op-1",
    )
    .await;
    publish(
        &mut c,
        draft(
            &gw,
            pb::IncidentState::Monitoring,
            "Reindex running",
            "Mailboxes are coming back.",
        ),
        "op-2",
    )
    .await;

    let (ct, html) = get(&page_url).await;
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(
        html.contains("Cluster A: mailbox access failures (storage/NFS fault)"),
        "the incident's title: {html}"
    );
    assert!(
        !html.contains("<script>"),
        "markup from a title ran: {html}"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; Mailbox access"));
    assert!(
        html.contains(&format!(
            "{affected} mailboxes are without service; IMAP &amp; POP are affected."
        )),
        "the filled body, escaped: {html}"
    );
    assert!(!html.contains("{affected_mailboxes}"));
    let (newer, older) = (
        html.find("id=\"su-000002\"").expect("su-000002 shown"),
        html.find("id=\"su-000001\"").expect("su-000001 shown"),
    );
    assert!(newer < older, "newest first");
    assert!(html.contains("Current status: <span class=\"state monitoring\">"));

    let (ct, json) = get(&format!("{page_url}index.json")).await;
    assert!(ct.starts_with("application/json"), "{ct}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["status"], "monitoring");
    let list = json["updates"].as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["su-000002", "su-000001"]);
    assert_eq!(list[1]["title"], "<script>alert(1)</script> Mailbox access");
    assert_eq!(
        list[1]["body"],
        format!("{affected} mailboxes are without service; IMAP & POP are affected.")
    );
    assert_eq!(list[1]["components"][0]["id"], "imap");

    let (ct, feed) = get(&format!("{page_url}feed.atom")).await;
    assert!(ct.starts_with("application/atom+xml"), "{ct}");
    assert!(feed.starts_with("<?xml"));
    assert!(feed.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\">"));
    assert_eq!(feed.matches("<entry>").count(), 2, "{feed}");
    assert_eq!(feed.matches("</entry>").count(), 2, "{feed}");
    let (newer, older) = (
        feed.find(&format!("<id>{page_url}#su-000002</id>"))
            .expect("entry su-000002"),
        feed.find(&format!("<id>{page_url}#su-000001</id>"))
            .expect("entry su-000001"),
    );
    assert!(newer < older, "newest first: {feed}");
    assert!(feed.contains(
        "<title>identified: &lt;script&gt;alert(1)&lt;/script&gt; Mailbox access</title>"
    ));
    assert!(!feed.contains("<script>"));
    assert!(feed.contains(&format!(
        "{affected} mailboxes are without service; IMAP &amp; POP"
    )));
}

/// One timeline in a drill: the update is posted at the simulated time its
/// figures and ETAs are from, not at today's wall clock beside them.
#[tokio::test]
async fn in_a_drill_an_update_is_posted_on_the_incidents_clock() {
    let (gw, page_url) = gateway(None, None).await;
    advance_to_mid_reindex(&gw);
    let sim_now = gw.hub.now();
    assert!(
        (Utc::now() - sim_now).num_days() > 365,
        "the drill's clock is its own"
    );
    let mut c = common::client_with(&gw, Some(COMMS));
    let u = publish(
        &mut c,
        draft(
            &gw,
            pb::IncidentState::Identified,
            "Mailbox access",
            "Known cause.",
        ),
        "op-1",
    )
    .await;
    let posted = api::from_ts(u.published_at.as_ref()).unwrap();
    assert_eq!(posted, sim_now, "posted at the drill's now");
    let (_, html) = get(&page_url).await;
    let shown = format!("Posted <time datetime=\"{}", posted.to_rfc3339());
    assert!(html.contains(&shown), "{shown} on the page: {html}");
    assert!(
        !html.contains(&Utc::now().format("%Y-%m-%d").to_string()),
        "no wall-clock date on the drill's page: {html}"
    );
}

#[tokio::test]
async fn a_pending_delivery_survives_a_restart_and_is_delivered_exactly_once() {
    let state = Location::File(common::state_file("restart"));
    a_pending_delivery_survives_a_restart(&state).await;
}

/// The same, on a PostgreSQL store.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[tokio::test]
async fn a_pending_delivery_survives_a_restart_and_is_delivered_exactly_once_on_postgresql() {
    let pg = common::postgres::PgCluster::start("su-restart");
    let state = Location::Postgres(pg.create_db("warroom"));
    a_pending_delivery_survives_a_restart(&state).await;
}

async fn a_pending_delivery_survives_a_restart(state: &Location) {
    let flaky = Hook::start(200).await;
    let (gw, _) = gateway(Some(state), Some(&flaky.url)).await;
    let mut c = common::client_with(&gw, Some(COMMS));

    // Delivered before the restart.
    publish(
        &mut c,
        draft(&gw, pb::IncidentState::Identified, "First", "Known cause."),
        "op-first",
    )
    .await;
    wait_for(&mut c, "su-000001", "delivered", all_sent).await;
    assert_eq!(flaky.ids(), ["su-000001"]);

    // The webhook breaks: the next update waits, saying why.
    flaky.answer(500);
    publish(
        &mut c,
        draft(
            &gw,
            pb::IncidentState::Monitoring,
            "Second",
            "Reindex running.",
        ),
        "op-second",
    )
    .await;
    let stuck = wait_for(&mut c, "su-000002", "retried after HTTP 500", |u| {
        delivery(u, "webhook").detail == "HTTP 500"
    })
    .await;
    assert_eq!(delivery(&stuck, "webhook").state, "pending");
    assert_eq!(delivery(&stuck, "page").state, "sent");
    let on_page = &delivery(&stuck, "page").detail;
    assert!(on_page.starts_with("on http://127.0.0.1:"), "{on_page}");
    gw.stop().await;
    let tried = flaky.ids();
    assert!(
        tried.len() >= 2
            && tried[0] == "su-000001"
            && tried[1..].iter().all(|id| id == "su-000002"),
        "{tried:?}"
    );

    // A new gateway on the same state file, with a webhook that works.
    let good = Hook::start(200).await;
    let (gw, _) = gateway(Some(state), Some(&good.url)).await;
    let mut c = common::client_with(&gw, None);
    let before = updates(&mut c).await;
    assert_eq!(before.len(), 2, "both updates survived");
    assert_eq!(delivery(&before[1], "webhook").state, "pending");
    assert_eq!(delivery(&before[1], "webhook").detail, "HTTP 500");
    let done = wait_for(&mut c, "su-000002", "delivered after the restart", all_sent).await;
    assert_eq!(delivery(&done, "webhook").detail, "HTTP 200");
    // Let a repeat, if there were one, arrive.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        good.ids(),
        ["su-000002"],
        "the pending update exactly once, nothing already sent again"
    );
    assert_eq!(
        flaky.posts().len(),
        tried.len(),
        "the old webhook is left alone"
    );
    let all = updates(&mut c).await;
    assert!(all.iter().all(all_sent), "{all:?}");
    let published = common::audit(&mut c)
        .await
        .into_iter()
        .filter(|e| e.action == "publish")
        .count();
    assert_eq!(published, 2);
    gw.stop().await;
}

/// Two gateways on one PostgreSQL database, 50 updates published on both
/// at once: the webhook gets each exactly once, whichever outbox claimed it.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_updates_published_on_two_gateways_sharing_a_database_reach_the_webhook_once_each() {
    let pg = common::postgres::PgCluster::start("su-replicas");
    let state = Location::Postgres(pg.create_db("warroom"));
    let hook = Hook::start(200).await;
    let (a, _) = gateway(Some(&state), Some(&hook.url)).await;
    let (b, _) = gateway(Some(&state), Some(&hook.url)).await;
    let publish_25 = |gw: &Gateway, name: &'static str| {
        let mut c = common::client_with(gw, Some(COMMS));
        let d = draft(
            gw,
            pb::IncidentState::Identified,
            "Cluster A",
            "Reindexing.",
        );
        async move {
            for i in 0..25 {
                publish(&mut c, d.clone(), &format!("op-{name}-{i}")).await;
            }
        }
    };
    tokio::join!(publish_25(&a, "a"), publish_25(&b, "b"));
    let mut reader = common::client_with(&a, None);
    wait_for(&mut reader, "su-000050", "published", |_| true).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !updates(&mut reader).await.iter().all(all_sent) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all delivered in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let a repeat, if there were one, arrive.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let mut ids = hook.ids();
    ids.sort();
    let want: Vec<String> = (1..=50).map(|n| format!("su-{n:06}")).collect();
    assert_eq!(ids, want, "each update once");
    let stored = warroom::store::open_at(&state)
        .unwrap()
        .deliveries(None)
        .unwrap();
    assert_eq!(stored.len(), 100);
    assert!(
        stored.iter().all(|d| d.state == "sent" && d.attempts == 1),
        "one attempt each: {stored:?}"
    );
    a.stop().await;
    b.stop().await;
}

/// Replicas on one database elect a leader, and only the leader's outbox
/// delivers (tenant notices are written from the live figures, which only
/// the leader's source has): ten updates whose deliveries appear in the
/// database one by one (as another replica's publishes would) all reach
/// the leader's webhook, and the follower's, configured to another
/// receiver, gets nothing.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leaders_outbox_delivers() {
    let pg = common::postgres::PgCluster::start("su-follower");
    let url = pg.create_db("warroom");
    let state = Location::Postgres(url.clone());
    let (hook, other) = (Hook::start(200).await, Hook::start(200).await);
    let mut gws = Vec::new();
    for _ in 0..2 {
        let hub = common::hub_with_store(common::small(), &state);
        hub.set_leadership(warroom::store::Leadership::campaign(&url).unwrap());
        gws.push(common::serve(hub, access()).await);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (leader, follower) = loop {
        match (gws[0].hub.runs_sources(), gws[1].hub.runs_sources()) {
            (true, false) => break (&gws[0], &gws[1]),
            (false, true) => break (&gws[1], &gws[0]),
            _ => {}
        }
        assert!(tokio::time::Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (gw, to) in [(leader, &hook), (follower, &other)] {
        gw.hub.set_publishing(Publishing {
            channels: vec![Arc::new(
                Webhook::new(&to.url, Duration::from_secs(5)).unwrap(),
            )],
            components: default_components(),
            page_url: String::new(),
        });
    }
    let mut store = warroom::store::open_at(&state).unwrap();
    for i in 0..10 {
        let u = warroom::domain::update::Update {
            id: String::new(),
            seq: 0,
            operation_id: format!("op-{i}"),
            state: warroom::domain::IncidentState::Identified,
            title: "Cluster A".into(),
            body: "Reindexing.".into(),
            components: vec![("imap".into(), "major_outage".into())],
            next_update: None,
            published_by: "cy".into(),
            published_at: Utc::now(),
            simulated: true,
        };
        store
            .publish(&u, &[("webhook".into(), String::new())], "")
            .unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !store
        .deliveries(None)
        .unwrap()
        .iter()
        .all(|d| d.state == "sent")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all delivered: {:?}",
            store.deliveries(None).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(other.ids(), Vec::<String>::new(), "the follower delivered");
    let mut ids = hook.ids();
    ids.sort();
    let want: Vec<String> = (1..=10).map(|n| format!("su-{n:06}")).collect();
    assert_eq!(ids, want, "each once, by the leader");
    for g in gws {
        g.stop().await;
    }
}

/// A gateway claims a delivery and stalls (here: a store that claims and
/// never attempts): another gateway on the database delivers it once its
/// lease has expired, and the stalled one's late attempt is refused.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_claimed_by_a_stalled_gateway_is_delivered_once_by_another_after_its_lease() {
    let pg = common::postgres::PgCluster::start("su-stalled");
    let location = Location::Postgres(pg.create_db("warroom"));
    let hook = Hook::start(200).await;
    let mut stalled = warroom::store::open_at(&location).unwrap();
    let (u, _) = stalled
        .publish(
            &warroom::domain::update::Update {
                id: String::new(),
                seq: 0,
                operation_id: "op-stalled".into(),
                state: warroom::domain::IncidentState::Identified,
                title: "Mail access".into(),
                body: "Logins fail on cluster A.".into(),
                components: Vec::new(),
                next_update: None,
                published_by: "cy".into(),
                published_at: Utc::now(),
                simulated: true,
            },
            &[("webhook".into(), String::new())],
            "",
        )
        .unwrap();
    let lease = Duration::from_secs(2);
    let claimed = stalled
        .claim_due("stalled-gw", Utc::now(), lease, 10)
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let claimed_at = std::time::Instant::now();

    let (gw, _) = gateway(Some(&location), Some(&hook.url)).await;
    let mut c = common::client_with(&gw, None);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(hook.ids().is_empty(), "taken while the claim lived");
    let done = wait_for(&mut c, &u.id, "delivered by the other gateway", all_sent).await;
    assert!(claimed_at.elapsed() >= lease, "not before the lease ended");
    assert_eq!(delivery(&done, "webhook").detail, "HTTP 200");
    assert_eq!(hook.ids(), std::slice::from_ref(&u.id));

    // The stalled gateway wakes up: its attempt is not counted.
    assert!(
        !stalled
            .record_attempt(
                claimed[0].id,
                "stalled-gw",
                "failed",
                "late",
                Utc::now(),
                false
            )
            .unwrap()
    );
    let d = stalled.deliveries(None).unwrap();
    assert_eq!(
        (d[0].state.as_str(), d[0].attempts, d[0].detail.as_str()),
        ("sent", 1, "HTTP 200")
    );
    gw.stop().await;
}

/// Publishing is once per operation id, and a retry is answered with what
/// was published, even when the war room has moved on since (here: someone
/// else resolved the incident in between). A client whose first answer was
/// lost must learn that its update is out, not be told to confirm going
/// backwards.
#[tokio::test]
async fn a_retried_publish_gets_the_published_update_even_after_another_one() {
    let (gw, _) = gateway(None, None).await;
    let mut cy = common::client_with(&gw, Some(COMMS));
    let identified = draft(
        &gw,
        pb::IncidentState::Identified,
        "Mailbox access on Cluster A",
        "We know what is wrong.",
    );
    let first = publish(&mut cy, identified.clone(), "op-identified").await;
    publish(
        &mut cy,
        draft(
            &gw,
            pb::IncidentState::Resolved,
            "Mailbox access restored",
            "Every mailbox is back.",
        ),
        "op-resolved",
    )
    .await;

    // The first publisher's client retries (its first answer was lost).
    let retry = cy
        .publish_status_update(publish_req(identified, "op-identified", false))
        .await;
    let listed = updates(&mut cy).await;
    assert_eq!(listed.len(), 2, "the retry published nothing new");
    match retry {
        Ok(r) => assert_eq!(r.into_inner().update.unwrap().id, first.id),
        Err(e) => panic!(
            "a retry of operation op-identified (already published as {}) was refused: {:?} {}",
            first.id,
            e.code(),
            e.message()
        ),
    }
}

/// A webhook that answers 503 with `Retry-After: 0` for a moment (a
/// receiver restarting) still gets the update once it is back.
#[tokio::test]
async fn a_webhook_down_for_a_moment_with_retry_after_zero_still_gets_the_update() {
    let hook = Hook::start(503).await;
    hook.retry_after("0");
    let (gw, _) = gateway(None, Some(&hook.url)).await;
    let mut c = common::client_with(&gw, Some(COMMS));
    publish(
        &mut c,
        draft(
            &gw,
            pb::IncidentState::Identified,
            "Mailbox access",
            "Known cause.",
        ),
        "op-1",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let during_outage = hook.posts().len();
    hook.answer(200);
    let u = wait_for(&mut c, "su-000001", "settled", |u| {
        delivery(u, "webhook").state != "pending"
    })
    .await;
    let d = delivery(&u, "webhook");
    assert_eq!(
        d.state, "sent",
        "the webhook was back 1.5 s later, yet the delivery ended {:?} ({:?}); it had been \
         tried {during_outage} times during those 1.5 s",
        d.state, d.detail
    );
    assert_eq!(
        (d.state.as_str(), hook.posts().len()),
        ("sent", during_outage + 1),
        "the webhook was back 1.5 s later, yet the delivery ended {:?} ({:?}) after {} \
         attempts in those 1.5 s",
        d.state,
        d.detail,
        during_outage
    );
}

/// Line ends and tabs from a client (CRLF from a Windows tool, a pasted
/// table) are whitespace, and read as such on the page and in the feed
/// (other control characters are refused at publish).
#[tokio::test]
async fn a_body_with_crlf_line_ends_and_tabs_reads_cleanly_on_the_page() {
    let (gw, page_url) = gateway(None, None).await;
    publish(
        &mut common::client_with(&gw, Some(COMMS)),
        draft(
            &gw,
            pb::IncidentState::Identified,
            "Mailbox access on Cluster A",
            "Logins fail on Cluster A.\r\nCluster\tState\r\nA\tdegraded",
        ),
        "op-crlf",
    )
    .await;
    let (_, html) = get(&page_url).await;
    let (_, feed) = get(&format!("{page_url}feed.atom")).await;
    for (what, doc) in [("page", &html), ("feed", &feed)] {
        assert!(
            !doc.contains('\x1b'),
            "{what}: an escape sequence got through"
        );
        let at = doc.find("Logins fail").expect("the body is shown");
        let shown: String = doc[at..].chars().take(60).collect();
        let replaced = doc.matches('\u{fffd}').count();
        assert_eq!(
            replaced, 0,
            "{what}: {replaced} U+FFFD where the body had 2 CR and 2 tabs: {shown:?}"
        );
    }
}

/// What a reader sees: the page in headless Chromium. The PNG is kept at
/// /tmp/wr/status-page.png.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Chromium: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_renders_in_a_real_browser() {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "/usr/bin/chromium is missing: install the `chromium` package (apt-get install -y chromium)"
    );
    let (gw, page_url) = gateway(None, None).await;
    advance_to_mid_reindex(&gw);
    let mut c = common::client_with(&gw, Some(COMMS));
    publish(
        &mut c,
        draft(
            &gw,
            pb::IncidentState::Identified,
            "Mailbox access failing on Cluster A",
            "{affected_mailboxes} mailboxes at {affected_tenants} tenants cannot be opened. \
             Mail is queued, none is lost ({queue_depth} messages waiting).",
        ),
        "op-1",
    )
    .await;
    publish(
        &mut c,
        draft(
            &gw,
            pb::IncidentState::Monitoring,
            "Reindex under way",
            "{restored_pct} of the affected mailboxes are back. Reindex ETA {reindex_eta}.",
        ),
        "op-2",
    )
    .await;

    let tmp = std::env::temp_dir().join(format!("wr-status-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let png = tmp.join("page.png");
    let (dir, shot, url) = (tmp.clone(), png.clone(), page_url.clone());
    let status = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new("/usr/bin/chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                &format!("--user-data-dir={}", dir.join("profile").display()),
                &format!("--screenshot={}", shot.display()),
                "--window-size=1000,800",
                &url,
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromium starts");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return Some(s);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    let status = status.expect("chromium finished within 60 s");
    assert!(status.success(), "chromium: {status}");
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        bytes.len() > 5 * 1024,
        "the screenshot is {} bytes: an empty page?",
        bytes.len()
    );
    std::fs::create_dir_all("/tmp/wr").unwrap();
    std::fs::copy(&png, "/tmp/wr/status-page.png").unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
}
