//! The gateway over real gRPC on loopback: Watch, paging, health, reflection.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

mod common;

use std::time::Duration;

use futures::StreamExt;
use tokio::time::timeout;
use warroom::api::pb;

const WAIT: Duration = Duration::from_secs(20);

async fn next(s: &mut tonic::Streaming<pb::WatchUpdate>) -> pb::WatchUpdate {
    timeout(WAIT, s.message())
        .await
        .expect("an update in time")
        .expect("stream ok")
        .expect("stream open")
}

#[tokio::test]
async fn watch_gives_a_snapshot_then_versioned_changes_to_every_watcher() {
    let gw = common::gateway(common::small()).await;
    gw.hub.tick();
    let mut a = common::client(&gw)
        .await
        .watch(pb::WatchRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut b = common::client(&gw)
        .await
        .watch(pb::WatchRequest {})
        .await
        .unwrap()
        .into_inner();
    let (sa, sb) = (next(&mut a).await, next(&mut b).await);
    assert!(sa.snapshot && sb.snapshot);
    assert_eq!(sa.version, 1);
    assert_eq!(sa.tenants.len(), 200, "a snapshot carries every tenant");
    assert_eq!(sa, sb);
    for _ in 0..5 {
        gw.hub.tick();
    }
    let mut va = Vec::new();
    let mut vb = Vec::new();
    for _ in 0..5 {
        let (ua, ub) = (next(&mut a).await, next(&mut b).await);
        assert!(!ua.snapshot);
        assert!(
            ua.tenants.len() < 200,
            "a change carries only changed tenants"
        );
        va.push(ua.version);
        vb.push(ub.version);
        assert_eq!(ua, ub, "both watchers see the same change");
    }
    assert_eq!(va, vec![2, 3, 4, 5, 6]);
    assert_eq!(va, vb);
    let incident = sa.incident.unwrap();
    assert!(incident.title.contains("Cluster A"));
    assert!(sa.sources[0].simulated);
    let a = &sa.clusters[0];
    assert_eq!(a.services.len(), 7, "every service role");
    assert!(a.queue.is_some() && a.reindex.is_some());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_watchers_cost_one_advance_per_tick() {
    let gw = common::gateway(common::small()).await;
    // 125 connections × 8 streams each (the default cap per connection):
    // 1,000 concurrent watchers.
    let mut streams = Vec::new();
    for _ in 0..125 {
        let c = common::client(&gw).await;
        for _ in 0..8 {
            let mut c = c.clone();
            streams.push(tokio::spawn(async move {
                c.watch(pb::WatchRequest {}).await.unwrap().into_inner()
            }));
        }
    }
    let mut watchers = Vec::new();
    for s in streams {
        watchers.push(s.await.unwrap());
    }
    // Every watcher holds its snapshot before the ticks start.
    for w in &mut watchers {
        assert!(next(w).await.snapshot);
    }
    let ticks = 3;
    for _ in 0..ticks {
        gw.hub.tick();
    }
    let results = futures::stream::iter(watchers.into_iter().map(|mut w| async move {
        let mut versions = Vec::new();
        while versions.last() != Some(&ticks) {
            versions.push(next(&mut w).await.version);
        }
        versions
    }))
    .buffer_unordered(1000)
    .collect::<Vec<_>>()
    .await;
    assert_eq!(results.len(), 1000);
    assert!(
        results.iter().all(|v| v == &results[0]),
        "same versions for all"
    );
    let advances = gw.hub.view().source().advances();
    assert_eq!(
        advances, ticks,
        "the source advanced once per tick, not per watcher"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_slow_watcher_is_resynchronised_with_a_snapshot() {
    let gw = common::gateway(common::small()).await;
    let mut w = common::client(&gw)
        .await
        .watch(pb::WatchRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(next(&mut w).await.snapshot);
    let ticks = 200u64;
    for _ in 0..ticks {
        gw.hub.tick();
    }
    let mut got = 0;
    let mut resynced = false;
    loop {
        let u = next(&mut w).await;
        got += 1;
        resynced |= u.snapshot;
        if u.version == ticks {
            break;
        }
    }
    assert!(
        resynced,
        "the watcher that fell behind got a fresh snapshot"
    );
    assert!(got < ticks, "and not the whole backlog ({got} messages)");
    gw.stop().await;
}

#[tokio::test]
async fn list_tenants_pages_through_every_tenant_in_order() {
    let gw = common::gateway(common::small()).await;
    gw.hub.tick();
    let mut c = common::client(&gw).await;
    let mut token = String::new();
    let mut ids = Vec::new();
    let mut affected = Vec::new();
    loop {
        let r = c
            .list_tenants(pb::ListTenantsRequest {
                page_size: 33,
                page_token: token.clone(),
                sort: pb::TenantSort::Affected as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.total_size, 200);
        ids.extend(r.tenants.iter().map(|t| t.id.clone()));
        affected.extend(r.tenants.iter().map(|t| t.affected));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 200, "every tenant exactly once");
    assert!(
        affected.windows(2).all(|w| w[0] >= w[1]),
        "most affected first"
    );

    let r = c
        .list_tenants(pb::ListTenantsRequest {
            filter: "ACME-TITLE".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.tenants[0].primary_domain, "acme-title.com");

    let e = c
        .list_tenants(pb::ListTenantsRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let e = c
        .list_tenants(pb::ListTenantsRequest {
            filter: "x".repeat(10_000),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("limit"), "{}", e.message());
    gw.stop().await;
}

#[tokio::test]
async fn list_mailboxes_pages_through_a_tenant() {
    let gw = common::gateway(common::small()).await;
    for _ in 0..300 {
        gw.hub.tick(); // five simulated hours: scan done, reindex running
    }
    let mut c = common::client(&gw).await;
    let acme = c
        .lookup(pb::LookupRequest {
            query: "acme-title.com".into(),
            limit: 1,
        })
        .await
        .unwrap()
        .into_inner()
        .matches[0]
        .tenant
        .clone()
        .unwrap();
    let mut token = String::new();
    let mut addresses = Vec::new();
    loop {
        let r = c
            .list_mailboxes(pb::ListMailboxesRequest {
                tenant_id: acme.id.clone(),
                page_size: 7,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        addresses.extend(r.mailboxes.iter().map(|m| m.address.clone()));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    let states = acme.states.unwrap();
    assert_eq!(addresses.len() as u64, acme.mailboxes - states.ok);
    let mut sorted = addresses.clone();
    sorted.sort();
    assert_eq!(addresses, sorted, "address order by default");

    let pending = c
        .list_mailboxes(pb::ListMailboxesRequest {
            tenant_id: acme.id.clone(),
            states: vec![pb::MailboxState::ReindexPending as i32],
            sort: pb::MailboxSort::Eta as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let positions: Vec<u64> = pending
        .mailboxes
        .iter()
        .map(|m| m.reindex_position)
        .collect();
    assert!(!positions.is_empty());
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "reindex order: {positions:?}"
    );

    let e = c
        .list_mailboxes(pb::ListMailboxesRequest {
            tenant_id: "t99999".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    gw.stop().await;
}

/// Issue #15: how each match matched and how many matched in all travel
/// on the wire (new fields: a client from before reads the same matches).
#[tokio::test]
async fn lookup_says_how_each_match_matched_and_how_many_matched() {
    let gw = common::gateway(common::small()).await;
    let mut c = common::client(&gw).await;
    let mut ask = async |q: &str, limit: u32| {
        c.lookup(pb::LookupRequest {
            query: q.into(),
            limit,
        })
        .await
        .unwrap()
        .into_inner()
    };
    let quality = |r: &pb::LookupResponse| -> Vec<pb::MatchQuality> {
        r.matches.iter().map(|m| m.quality()).collect()
    };

    let exact = ask("acme-title.com", 0).await;
    assert_eq!(quality(&exact), [pb::MatchQuality::Exact]);
    assert_eq!((exact.total, exact.total_is_lower_bound), (Some(1), false));

    let typo = ask("acme-titel.com", 0).await;
    assert_eq!(typo.matches[0].domain, "acme-title.com");
    assert!(!typo.matches.is_empty());
    assert!(
        quality(&typo)
            .iter()
            .all(|q| *q == pb::MatchQuality::Approximate)
    );
    assert_eq!(typo.total, Some(typo.matches.len() as u64));

    // A prefix with more matches than asked for: the total counts them all.
    let all = ask("a", 100).await;
    let two = ask("a", 2).await;
    assert_eq!(two.matches.len(), 2);
    assert!(quality(&two).iter().all(|q| *q == pb::MatchQuality::Prefix));
    assert_eq!(
        (two.total, two.total_is_lower_bound),
        (all.total, all.total_is_lower_bound)
    );
    assert!(
        two.total.unwrap() > 100 || two.total_is_lower_bound,
        "{:?}",
        two.total
    );
    assert_eq!(
        two.matches[..],
        all.matches[..2],
        "the limit cuts the ranked list"
    );

    let none = ask("nobody@nowhere.example", 0).await;
    assert!(none.matches.is_empty());
    assert_eq!((none.total, none.total_is_lower_bound), (Some(0), false));
    gw.stop().await;
}

#[tokio::test]
async fn lookup_rejects_bad_queries_and_an_open_gateway_changes_nothing() {
    let gw = common::gateway(common::small()).await;
    let mut c = common::client(&gw).await;
    for q in ["", "   ", "a\u{1b}[2J"] {
        let e = c
            .lookup(pb::LookupRequest {
                query: q.into(),
                limit: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{q:?}");
    }
    // A gateway without tokens lets anyone read and nobody change anything.
    let e = c
        .set_tenant_priority(pb::SetTenantPriorityRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    gw.stop().await;
}

/// Sends `msg`, whatever its type, as the request of `method`: what a
/// client with a stale or wrong .proto (or a broken one) would send.
async fn send_as<M: prost::Message + Default + Send + 'static>(
    gw: &warroom::gateway::Gateway,
    method: &'static str,
    msg: M,
) -> tonic::Status {
    let channel = tonic::transport::Endpoint::new(gw.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(msg),
        tonic::codegen::http::uri::PathAndQuery::from_static(method),
        tonic_prost::ProstCodec::<M, pb::LookupResponse>::default(),
    )
    .await
    .expect_err("the gateway refuses it")
}

/// docs/api.md: a request over 1 MiB is RESOURCE_EXHAUSTED (tonic alone
/// says OUT_OF_RANGE), and the gateway goes on answering.
#[tokio::test]
async fn a_request_over_one_mib_is_resource_exhausted_and_says_the_limit() {
    let gw = common::gateway(common::small()).await;
    let mut c = common::client(&gw).await;
    let e = c
        .lookup(pb::LookupRequest {
            query: "a".repeat(2 * 1024 * 1024),
            limit: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("1 MiB"), "{}", e.message());
    let ok = c
        .lookup(pb::LookupRequest {
            query: "acme".into(),
            limit: 1,
        })
        .await;
    assert!(ok.is_ok(), "the next request is answered: {ok:?}");
    gw.stop().await;
}

/// A request that is not the message the method takes (a string field
/// that is not UTF-8, a field of the wrong wire type) is the caller's
/// mistake: INVALID_ARGUMENT, not INTERNAL.
#[tokio::test]
async fn a_request_that_is_not_valid_protobuf_is_invalid_argument() {
    let gw = common::gateway(common::small()).await;
    // LookupRequest.query (field 1, a string) as bytes that are not UTF-8.
    let e = send_as(
        &gw,
        "/warroom.v1.WarRoom/Lookup",
        // prost encodes a Vec<u8> as google.protobuf.BytesValue: field 1.
        vec![b'a', 0xff, 0xfe],
    )
    .await;
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("UTF-8"), "{}", e.message());
    // Field 1 as a number where a string is expected.
    let e = send_as(&gw, "/warroom.v1.WarRoom/Lookup", 7u64).await;
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("not a valid warroom.v1 message"),
        "{}",
        e.message()
    );
    gw.stop().await;
}

#[tokio::test]
async fn health_and_reflection_answer_stock_clients() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let gw = common::gateway(common::small()).await;
    let channel = tonic::transport::Endpoint::from_shared(gw.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut h = HealthClient::new(channel.clone());
    let r = h
        .check(HealthCheckRequest {
            service: "warroom.v1.WarRoom".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status, ServingStatus::Serving as i32);

    let mut refl = ServerReflectionClient::new(channel);
    let reqs = futures::stream::iter(vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "warroom.v1.WarRoom".into(),
            )),
        },
    ]);
    let mut answers = refl
        .server_reflection_info(reqs)
        .await
        .unwrap()
        .into_inner();
    let first = answers.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("expected a service list");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"warroom.v1.WarRoom"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    let second = answers.next().await.unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(fds)) = second.message_response else {
        panic!("expected descriptors");
    };
    use prost::Message;
    let files: Vec<prost_types::FileDescriptorProto> = fds
        .file_descriptor_proto
        .iter()
        .map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).unwrap())
        .collect();
    let svc = files
        .iter()
        .flat_map(|f| f.service.iter())
        .find(|s| s.name() == "WarRoom")
        .expect("WarRoom service descriptor");
    let methods: Vec<_> = svc.method.iter().map(|m| m.name()).collect();
    for m in [
        "Watch",
        "ListTenants",
        "ListMailboxes",
        "Lookup",
        "SetTenantPriority",
    ] {
        assert!(methods.contains(&m), "{m} in {methods:?}");
    }
    gw.stop().await;
}

/// The status board rides in every snapshot but in a change only when it
/// changed: a long status update is not resent every second to every
/// console.
#[tokio::test]
async fn the_status_board_is_sent_only_when_it_changes() {
    let gw = common::gateway(common::small()).await;
    let mut c = common::client(&gw).await;
    let mut w = c.watch(pb::WatchRequest {}).await.unwrap().into_inner();
    let snap = w.message().await.unwrap().unwrap();
    let board = snap.status.expect("a snapshot carries the board");
    assert_eq!(board.components.len(), 5, "the default components");
    gw.hub.tick();
    gw.hub.tick();
    let first = w.message().await.unwrap().unwrap();
    let second = w.message().await.unwrap().unwrap();
    // The first change after start may carry it (nothing was sent before);
    // an unchanged board is not repeated.
    assert!(first.status.is_none() || first.status.as_ref() == Some(&board));
    assert!(second.status.is_none(), "unchanged board resent");
    gw.stop().await;
}

/// A batch answers every query in order, refusing a bad one alone; a
/// message over the batch limit ends the call with a clear reason.
#[tokio::test]
async fn lookup_many_answers_each_query_in_order_and_refuses_an_oversized_batch() {
    let gw = common::gateway(common::small()).await;
    let mut c = common::client(&gw).await;
    let batch = pb::LookupManyRequest {
        queries: vec![
            "t00001".into(),
            "   ".into(),
            "t00000".into(),
            "x\u{7}y".into(),
        ],
        limit: 0,
    };
    let mut answers = c
        .lookup_many(tokio_stream::iter(vec![batch]))
        .await
        .unwrap()
        .into_inner();
    let r = answers
        .message()
        .await
        .unwrap()
        .expect("one answer per batch");
    let ids: Vec<String> = r
        .results
        .iter()
        .map(|x| {
            x.answer
                .as_ref()
                .and_then(|a| a.matches.first())
                .and_then(|m| m.tenant.as_ref())
                .map_or_else(|| format!("error: {}", x.error), |t| t.id.clone())
        })
        .collect();
    assert_eq!(
        ids,
        [
            "t00001",
            "error: query is empty",
            "t00000",
            "error: query contains control characters"
        ]
    );
    assert!(
        answers.message().await.unwrap().is_none(),
        "ends with the input"
    );

    let huge = pb::LookupManyRequest {
        queries: vec!["t00001".into(); 1_001],
        limit: 1,
    };
    let mut answers = c
        .lookup_many(tokio_stream::iter(vec![huge]))
        .await
        .unwrap()
        .into_inner();
    let e = answers.message().await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message()
            .contains("1001 queries in one message; at most 1000"),
        "{e:?}"
    );
    gw.stop().await;
}

/// The gateway answers two batches of a bulk lookup at once: the answers
/// still come in the order the batches were sent, each with its own
/// queries' results, and a refused batch ends the call only after every
/// batch before it was answered.
#[tokio::test]
async fn lookup_many_answers_batches_in_the_order_sent_while_answering_two_at_once() {
    let gw = common::gateway(common::small()).await;
    let mut c = common::client(&gw).await;
    let ids: Vec<String> = (0..200).map(|t| format!("t{t:05}")).collect();
    // Forty batches of different sizes; the 31st is over the limit.
    let mut batches: Vec<pb::LookupManyRequest> = (0..40)
        .map(|b| pb::LookupManyRequest {
            queries: (0..1 + b % 7)
                .map(|i| ids[(b * 5 + i) % ids.len()].clone())
                .collect(),
            limit: 1,
        })
        .collect();
    batches[30].queries = vec!["t00001".into(); 1_001];
    let mut answers = c
        .lookup_many(tokio_stream::iter(batches.clone()))
        .await
        .unwrap()
        .into_inner();
    for (b, batch) in batches.iter().take(30).enumerate() {
        let r = answers
            .message()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("an answer to batch {b}"));
        let found: Vec<&str> = r
            .results
            .iter()
            .map(|x| {
                x.answer.as_ref().unwrap().matches[0]
                    .tenant
                    .as_ref()
                    .unwrap()
                    .id
                    .as_str()
            })
            .collect();
        assert_eq!(found, batch.queries, "batch {b}");
    }
    let e = answers.message().await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    gw.stop().await;
}

/// Issue #15 item 9: the trends come from the gateway, which recorded them
/// from the incident's start (a drill's skip included), one point per
/// minute of its clock; a tenant's series lines up with the points.
#[tokio::test]
async fn get_trends_gives_the_incident_from_its_start_and_one_tenants_series() {
    let hub = common::hub(common::small());
    let start = hub.now();
    // A drill started two hours in, as `--skip 2` does.
    hub.fast_forward(120, 60.0);
    for _ in 0..3 {
        hub.tick();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = warroom::gateway::Gateway::serve(listener, hub, None)
        .await
        .unwrap();
    let mut c = common::client(&gw).await;
    let all = c
        .get_trends(pb::GetTrendsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let h = warroom::api::trends_from_pb(&all);
    assert!(h.points.len() > 120, "a point a minute: {}", h.points.len());
    assert_eq!(h.points[0].at, start, "from the start, not the skip");
    assert_eq!(h.step, chrono::Duration::minutes(1));
    assert!(h.tenant.is_empty() && h.tenant_id.is_empty());
    let peak = h.points.iter().filter_map(|p| p.affected).max().unwrap();
    assert!(peak > 0, "mailboxes went without service in the drill");

    let snap = gw.hub.snapshot();
    let t = snap
        .tenants
        .iter()
        .max_by_key(|t| t.affected)
        .expect("a tenant");
    let one = c
        .get_trends(pb::GetTrendsRequest {
            tenant_id: t.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let h = warroom::api::trends_from_pb(&one);
    assert_eq!(h.tenant_id, t.id);
    assert_eq!(h.tenant.len(), h.points.len());
    assert_eq!(
        h.tenant.last().copied().flatten(),
        Some(t.affected),
        "its latest point is what the table shows"
    );

    let missing = c
        .get_trends(pb::GetTrendsRequest {
            tenant_id: "no-such-tenant".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    let bad = c
        .get_trends(pb::GetTrendsRequest {
            tenant_id: "a\u{1b}[31m".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
}
