//! A load test of the gateway, loopback only, bounded in count and time:
//! W watchers + L lookups in flight + I idle connections at once against a
//! demo gateway (the default simulated incident, one tick a second) in a
//! child process. Reports whether every watcher got every version, the
//! first snapshot's and the lookups' latency percentiles, and the gateway's
//! memory (VmRSS, VmHWM) and CPU from /proc. Figures: docs/performance.md.
//!
//!     cargo run --release --example gateway_load -- \
//!         [--watchers 1000] [--lookups 200] [--idle 5000] [--seconds 20]
//!
//! Connections come from several loopback addresses (watchers and lookups
//! from 127.0.0.1, idle ones from 127.0.0.2 on, at most 2,000 from each) so
//! they stay within the gateway's default per-peer cap. Exit 1 when a
//! watcher missed a version. Both processes raise their open-file limit to
//! the hard limit (`ulimit -Hn`; 5,000 idle connections need over 6,100).

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

use std::io::{BufRead, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tonic::transport::{Channel, Endpoint};
use warroom::api::pb;
use warroom::api::pb::war_room_client::WarRoomClient;

struct Opts {
    watchers: usize,
    lookups: usize,
    idle: usize,
    seconds: u64,
}

fn opts() -> Result<Opts, String> {
    let mut o = Opts {
        watchers: 1_000,
        lookups: 200,
        idle: 5_000,
        seconds: 20,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = || -> Result<u64, String> {
            args.get(i + 1)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{} needs a number", args[i]))
        };
        match args[i].as_str() {
            "--watchers" => o.watchers = (value()? as usize).min(10_000),
            "--lookups" => o.lookups = (value()? as usize).min(2_000),
            "--idle" => o.idle = (value()? as usize).min(15_000),
            "--seconds" => o.seconds = value()?.clamp(1, 600),
            other => return Err(format!("unknown argument {other:?}")),
        }
        i += 2;
    }
    Ok(o)
}

/// The gateway side: a demo gateway on 127.0.0.1, its address on stdout,
/// until stdin closes.
fn serve() -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (before, after) = warroom::gateway::conn::raise_nofile_limit()?;
        eprintln!("[gateway] open-file limit {before} -> {after}");
        let sim = warroom::sources::simulator::Simulator::new(Default::default())
            .map_err(anyhow::Error::msg)?;
        let hub = warroom::gateway::Hub::new(Box::new(sim), 60.0, 60.0);
        hub.tick();
        let snap = prost::Message::encoded_len(&hub.snapshot());
        eprintln!("[gateway] a snapshot is {snap} bytes");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let gw = warroom::gateway::Gateway::serve_limited(
            listener,
            hub,
            Some(Duration::from_secs(1)),
            warroom::gateway::Access::open_read_only(),
            warroom::gateway::Limits::default(),
        )
        .await?;
        println!("{}", gw.addr);
        std::io::stdout().flush()?;
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin()
                .read_line(&mut sink)
                .map(|n| n > 0)
                .unwrap_or(false)
            {}
        })
        .await?;
        eprintln!(
            "[gateway] refused {} connections at the caps, closed {} silent ones",
            gw.connections.refused(),
            gw.connections.timed_out()
        );
        gw.stop().await;
        Ok(())
    })
}

/// VmRSS and VmHWM of `pid`, in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User + system CPU seconds of `pid`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces), 1-based from
    // field 3: utime is field 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / ticks
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

async fn channel(addr: SocketAddr, from: IpAddr) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .local_address(Some(from))
        .connect_timeout(Duration::from_secs(30))
        .connect()
        .await
}

/// The two fields of a `WatchUpdate` the load test checks; prost skips the
/// rest without building it, so the test's own decoding (1,000 snapshots
/// on the same machine) does not stand in for the gateway's latency.
#[derive(Clone, PartialEq, prost::Message)]
struct VersionOnly {
    #[prost(uint64, tag = "1")]
    version: u64,
    #[prost(bool, tag = "2")]
    snapshot: bool,
}

async fn watch_versions(channel: Channel) -> Result<tonic::Streaming<VersionOnly>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(usize::MAX);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<pb::WatchRequest, VersionOnly>::default();
    let path = http::uri::PathAndQuery::from_static("/warroom.v1.WarRoom/Watch");
    Ok(grpc
        .server_streaming(tonic::Request::new(pb::WatchRequest {}), path, codec)
        .await?
        .into_inner())
}

/// What one watcher saw.
#[derive(Default, Debug)]
struct Seen {
    first_snapshot: Option<Duration>,
    first: u64,
    last: u64,
    updates: u64,
    gaps: u64,
    resyncs: u64,
    error: Option<String>,
}

async fn drive(o: Opts) -> anyhow::Result<bool> {
    let (before, after) = warroom::gateway::conn::raise_nofile_limit()?;
    eprintln!("[load] open-file limit {before} -> {after}");
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
    let addr: SocketAddr = line.trim().parse()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_start, _) = memory(pid);
    println!("gateway pid {pid} on {addr}: VmRSS {rss_start:.0} MiB at start");

    let local: IpAddr = "127.0.0.1".parse()?;
    // Idle connections: HTTP/2 handshake done, then nothing (keep-alive
    // pings answered by the client library).
    let t = Instant::now();
    let idle: Vec<Channel> = futures::stream::iter(0..o.idle)
        .map(|i| {
            let from: IpAddr = format!("127.0.0.{}", 2 + i / 2_000).parse().unwrap();
            async move { channel(addr, from).await }
        })
        .buffer_unordered(200)
        .filter_map(|c| async move { c.ok() })
        .collect()
        .await;
    let (rss_idle, _) = memory(pid);
    println!(
        "{} of {} idle connections open in {:.1} s: VmRSS {rss_idle:.0} MiB",
        idle.len(),
        o.idle,
        t.elapsed().as_secs_f64()
    );

    // Watchers: one connection each, as consoles, connected first; then
    // every Watch call starts at once.
    let watcher_channels: Vec<Result<Channel, String>> = futures::stream::iter(0..o.watchers)
        .map(|_| async move {
            channel(addr, local)
                .await
                .map_err(|e| format!("connect: {e}"))
        })
        .buffered(200)
        .collect()
        .await;
    let cpu0 = cpu_seconds(pid);
    let wall0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let target = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let go = Arc::new(tokio::sync::Barrier::new(o.watchers + 1));
    let mut watchers = Vec::new();
    for c in watcher_channels {
        let (target, go) = (target.clone(), go.clone());
        watchers.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            go.wait().await;
            let started = Instant::now();
            let mut stream = match c {
                Err(e) => {
                    seen.error = Some(e);
                    return seen;
                }
                Ok(c) => match watch_versions(c).await {
                    Ok(s) => s,
                    Err(e) => {
                        seen.error = Some(format!("watch: {e}"));
                        return seen;
                    }
                },
            };
            loop {
                let next = tokio::time::timeout(Duration::from_secs(60), stream.message()).await;
                let u = match next {
                    Ok(Ok(Some(u))) => u,
                    Ok(Ok(None)) => {
                        seen.error = Some("stream ended".into());
                        return seen;
                    }
                    Ok(Err(e)) => {
                        seen.error = Some(format!("stream: {e}"));
                        return seen;
                    }
                    Err(_) => {
                        seen.error = Some("no update for 60 s".into());
                        return seen;
                    }
                };
                if seen.first_snapshot.is_none() {
                    seen.first_snapshot = Some(started.elapsed());
                    seen.first = u.version;
                } else if u.snapshot {
                    seen.resyncs += 1;
                } else if u.version != seen.last + 1 {
                    seen.gaps += 1;
                }
                seen.last = u.version;
                seen.updates += 1;
                if u.version >= target.load(Ordering::Relaxed) {
                    return seen;
                }
            }
        }));
    }

    go.wait().await;
    // Lookups: L in flight at once over L/10 connections, each query a
    // domain of the incident.
    let lookup_channels: Vec<Channel> = futures::stream::iter(0..o.lookups.div_ceil(10).max(1))
        .then(|_| async move { channel(addr, local).await.unwrap() })
        .collect()
        .await;
    let domains: Vec<String> = WarRoomClient::new(lookup_channels[0].clone())
        .max_decoding_message_size(usize::MAX)
        .list_tenants(pb::ListTenantsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await?
        .into_inner()
        .tenants
        .into_iter()
        .map(|t| t.primary_domain)
        .filter(|d| !d.is_empty())
        .collect();
    let domains = Arc::new(domains);
    let mut lookers = Vec::new();
    for i in 0..o.lookups {
        let mut c = WarRoomClient::new(lookup_channels[i % lookup_channels.len()].clone())
            .max_decoding_message_size(usize::MAX);
        let (stop, domains) = (stop.clone(), domains.clone());
        lookers.push(tokio::spawn(async move {
            let mut took = Vec::new();
            let mut errors = 0u64;
            let mut n = i;
            while !stop.load(Ordering::Relaxed) {
                let q = domains[n % domains.len()].clone();
                n += 7;
                let t = Instant::now();
                match c
                    .lookup(pb::LookupRequest {
                        query: q,
                        limit: 20,
                    })
                    .await
                {
                    Ok(_) => took.push(t.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (took, errors)
        }));
    }
    let (mut rss_peak_run, mut cpu_samples) = (0f64, Vec::new());
    let run = Instant::now();
    let mut last = (cpu_seconds(pid), Instant::now());
    while run.elapsed() < Duration::from_secs(o.seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (rss, _) = memory(pid);
        rss_peak_run = rss_peak_run.max(rss);
        let now = (cpu_seconds(pid), Instant::now());
        cpu_samples.push((now.0 - last.0) / now.1.duration_since(last.1).as_secs_f64());
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    let mut lookup_took = Vec::new();
    let mut lookup_errors = 0;
    for l in lookers {
        let (t, e) = l.await?;
        lookup_took.extend(t);
        lookup_errors += e;
    }
    // Every watcher must reach the version the gateway is at now.
    let now_version = WarRoomClient::new(lookup_channels[0].clone())
        .lookup(pb::LookupRequest {
            query: domains[0].clone(),
            limit: 1,
        })
        .await?
        .into_inner()
        .version;
    target.store(now_version, Ordering::Relaxed);
    let mut seen = Vec::new();
    for w in watchers {
        seen.push(tokio::time::timeout(Duration::from_secs(90), w).await??);
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(pid) - cpu0) / wall;
    let (rss_end, hwm) = memory(pid);
    drop(idle);
    drop(child.stdin.take());
    let _ = child.wait();

    let complete = seen
        .iter()
        .filter(|s| s.error.is_none() && s.gaps == 0 && s.resyncs == 0 && s.last >= now_version)
        .count();
    let mut firsts: Vec<Duration> = seen.iter().filter_map(|s| s.first_snapshot).collect();
    firsts.sort();
    lookup_took.sort();
    let errors: Vec<&String> = seen.iter().filter_map(|s| s.error.as_ref()).collect();
    let versions: u64 = seen.iter().map(|s| s.updates).sum();
    println!(
        "watchers: {complete} of {} got every version up to {now_version} ({versions} updates; {} gaps, {} resyncs, {} errors{})",
        o.watchers,
        seen.iter().map(|s| s.gaps).sum::<u64>(),
        seen.iter().map(|s| s.resyncs).sum::<u64>(),
        errors.len(),
        errors
            .first()
            .map_or(String::new(), |e| format!(", first: {e}"))
    );
    println!(
        "first snapshot (all {} Watch calls at once, connected before): p50 {}  p99 {}  max {}",
        firsts.len(),
        ms(percentile(&firsts, 0.50)),
        ms(percentile(&firsts, 0.99)),
        ms(percentile(&firsts, 1.0))
    );
    println!(
        "lookups ({} in flight): {} done in {} s ({:.0}/s), {lookup_errors} failed; p50 {}  p99 {}  max {}",
        o.lookups,
        lookup_took.len(),
        o.seconds,
        lookup_took.len() as f64 / o.seconds as f64,
        ms(percentile(&lookup_took, 0.50)),
        ms(percentile(&lookup_took, 0.99)),
        ms(percentile(&lookup_took, 1.0))
    );
    cpu_samples.sort_by(f64::total_cmp);
    println!(
        "gateway: VmRSS {rss_start:.0} MiB at start, {rss_idle:.0} with the idle connections, peak {rss_peak_run:.0} under load, {rss_end:.0} at the end; VmHWM {hwm:.0} MiB; CPU {:.0}% on average over {wall:.0} s (busiest second {:.0}%)",
        cpu * 100.0,
        cpu_samples.last().unwrap_or(&0.0) * 100.0
    );
    Ok(complete == o.watchers)
}

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--serve") {
        return serve();
    }
    let o = opts().map_err(anyhow::Error::msg)?;
    let rt = tokio::runtime::Runtime::new()?;
    let ok = rt.block_on(drive(o))?;
    std::process::exit(if ok { 0 } else { 1 });
}
