//! Every console screen drawn from a fixture model at the four sizes people
//! use (60x16, 80x24, 120x40, 200x60), on ratatui's TestBackend, as insta
//! snapshots. No gateway: the fixture is a Watch snapshot, a mailbox page,
//! a lookup answer and an audit log written by hand to hold what makes
//! screens hard — long tenant names and domains, addresses that differ
//! only after 28 characters, an ETA whose p90 falls after midnight, 15
//! pages of mailboxes, reasons longer than any column. Review the
//! snapshots by eye: that is where truncation shows.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed run
#![allow(unused_must_use)] // it drives the console by hand

use chrono::{DateTime, Duration, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use warroom::api::{pb, ts};
use warroom::client::{ClientEvent, Update};
use warroom::console::app::{App, Command, Me, View};
use warroom::console::theme::Theme;
use warroom::console::ui;
use warroom::domain::forecast::EtaRange;
use warroom::domain::priority::{AuditEvent, Role};
use warroom::domain::{MailboxRow, MailboxState};

const SIZES: [(u16, u16); 4] = [(60, 16), (80, 24), (120, 40), (200, 60)];

fn at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2008, 10, day, h, m, 0)
        .single()
        .unwrap()
}

/// The simulated clock of the fixture: late evening, so ETAs cross midnight.
fn now() -> DateTime<Utc> {
    at(7, 22, 40)
}

fn eta(p50: DateTime<Utc>, p90: DateTime<Utc>) -> Option<pb::EtaRange> {
    Some(pb::EtaRange {
        p50: Some(ts(p50)),
        p90: Some(ts(p90)),
        ..Default::default()
    })
}

/// The tenant whose drill-down the fixture opens.
const DERBY: &str = "t01654";
const DERBY_DOMAINS: [&str; 3] = [
    "derby-yellowstone-law-partners.de",
    "derby-yellowstone-law-partners.example",
    "dyl-mail.example",
];

fn tenants() -> Vec<pb::TenantSummary> {
    let names = [
        (
            DERBY,
            "Derby Yellowstone Law Partners GmbH",
            DERBY_DOMAINS[0],
        ),
        (
            "t00412",
            "Graz Union Design & Architecture Inc",
            "graz-union-design-architecture.at",
        ),
        (
            "t00077",
            "Bath Acme Design Group",
            "bath-acme-design-group.co.uk",
        ),
        (
            "t01203",
            "Porto Crescent Print & Copy Lda",
            "porto-crescent-print.pt",
        ),
        (
            "t00934",
            "Denver Prairie Partners",
            "denver-prairie-partners.com",
        ),
        (
            "t00588",
            "Lyon Nova Motors Group",
            "lyon-nova-motors-group.fr",
        ),
        ("t00001", "Acme Title & Escrow", "acme-title.com"),
        (
            "t01777",
            "Tampa Highland Hosting",
            "tampa-highland-hosting-services.com",
        ),
        (
            "t00250",
            "Salem Falcon Logistics",
            "salem-falcon-logistics.com",
        ),
        ("t01999", "Prairie Motors LLC", "prairie-motors.de"),
    ];
    let mut out = Vec::new();
    for (i, (id, name, domain)) in names.iter().enumerate() {
        let i = i as u64;
        let mailboxes = 3_348 / (i + 1) + 40;
        let affected = (2_882 / (i + 1)).min(mailboxes - 20);
        let restored = 37 + i;
        let (p50, p90) = match i {
            // The p90 past midnight, two days out.
            0 => (at(8, 4, 40), at(9, 1, 10)),
            1 => (at(7, 23, 55), at(8, 3, 35)),
            _ => (
                now() + Duration::minutes(20 * i as i64),
                now() + Duration::minutes(45 * i as i64),
            ),
        };
        out.push(pb::TenantSummary {
            id: id.to_string(),
            name: name.to_string(),
            primary_domain: domain.to_string(),
            domain_count: if i == 0 { 3 } else { 1 },
            tier: "gold".into(),
            cluster_id: "a".into(),
            mailboxes,
            states: Some(pb::MailboxStateCounts {
                ok: mailboxes - affected - restored,
                locked_out: affected / 2,
                reindex_pending: affected - affected / 2 - 3,
                reindexing: 2,
                failed: 1,
                restored,
                resync_needed: 0,
            }),
            affected,
            queued_messages: Some(affected * 9),
            priority: if i == 6 {
                pb::Priority::P0
            } else {
                pb::Priority::P2
            } as i32,
            reindex_rank: 5_128 / (i + 1),
            eta: eta(p50, p90),
            priority_set: (i == 6).then(|| pb::TenantPriority {
                tenant_id: id.to_string(),
                priority: pb::Priority::P0 as i32,
                rank: 0,
                version: 2,
                set_by: "ana".into(),
                set_at: Some(ts(at(7, 21, 5))),
                reason: "title company closing sales today; their escrow desk cannot reach clients"
                    .into(),
            }),
            eta_slip: (i == 1).then(|| pb::EtaSlip {
                basis: pb::SlipBasis::FirstShown as i32,
                since: Some(ts(at(7, 19, 0))),
                baseline_p90: Some(ts(at(8, 1, 30))),
                later_by_seconds: 2 * 3600 + 5 * 60,
                withdrawn: false,
            }),
        });
    }
    // Healthy tenants behind them, with long names too.
    let towns = [
        "Quebec",
        "Nantes",
        "Bremen",
        "Lille",
        "Essen",
        "Brno",
        "Tidewater",
        "Granite",
    ];
    let trades = [
        "Maple Academy",
        "Crescent Accounting",
        "Blue Farms & Co",
        "Evergreen Telecommunications",
        "Juniper Builders",
        "Juniper Travel",
        "Pharmacy Group",
        "Title",
    ];
    for (i, (town, trade)) in towns
        .iter()
        .flat_map(|t| trades.iter().map(move |x| (t, x)))
        .enumerate()
    {
        let domain = format!(
            "{}-{}.example",
            town.to_lowercase(),
            trade
                .to_lowercase()
                .replace([' ', '&'], "-")
                .replace("--", "-")
        );
        out.push(pb::TenantSummary {
            id: format!("t02{i:03}"),
            name: format!("{town} {trade} GmbH"),
            primary_domain: domain,
            domain_count: 1,
            tier: "silver".into(),
            cluster_id: if i % 2 == 0 { "a" } else { "b" }.into(),
            mailboxes: 50 + i as u64,
            states: Some(pb::MailboxStateCounts {
                ok: 50 + i as u64,
                ..Default::default()
            }),
            queued_messages: Some(0),
            priority: pb::Priority::P2 as i32,
            ..Default::default()
        });
    }
    out
}

fn services(degraded: bool) -> Vec<pb::ServiceHealth> {
    use pb::ServiceRole::*;
    [Imap, Pop, Webmail, SmtpIn, SmtpOut, Storage, Index]
        .into_iter()
        .map(|role| {
            let bad = degraded && role != SmtpOut;
            let login = matches!(role, Imap | Pop | Webmail);
            pb::ServiceHealth {
                role: role as i32,
                status: if bad {
                    pb::HealthStatus::Degraded
                } else {
                    pb::HealthStatus::Ok
                } as i32,
                login_success_rate: login.then_some(if bad { 0.836 } else { 1.0 }),
                latency_ms: Some(if bad { 94.0 } else { 39.0 }),
                detail: if bad && login {
                    "5,173 mailboxes cannot log in".into()
                } else {
                    String::new()
                },
            }
        })
        .collect()
}

fn snapshot() -> pb::WatchUpdate {
    let tenants = tenants();
    let affected: u64 = tenants.iter().map(|t| t.affected).sum();
    let queued: u64 = tenants.iter().filter_map(|t| t.queued_messages).sum();
    pb::WatchUpdate {
        version: 7,
        snapshot: true,
        incident: Some(pb::Incident {
            title: "Cluster A: mailbox access failures (storage/NFS fault, then a reindex)".into(),
            started_at: Some(ts(at(6, 17, 30))),
            state: pb::IncidentState::Identified as i32,
            now: Some(ts(now())),
            speed: 60.0,
        }),
        sources: vec![pb::SourceStatus {
            name: "simulator".into(),
            simulated: true,
            health: pb::HealthStatus::Ok as i32,
            message: "cluster-a-2008, seed 2008, 2,000 tenants".into(),
            last_success: Some(ts(now())),
        }],
        clusters: vec![
            pb::Cluster {
                id: "a".into(),
                name: "Cluster A".into(),
                health: pb::HealthStatus::Degraded as i32,
                services: services(true),
                queue: Some(pb::Queue {
                    active: Some(0),
                    deferred: Some(queued),
                    hold: Some(37),
                    arrival_per_min: Some(332.0),
                    delivery_per_min: Some(383.0),
                    drain_eta: eta(at(8, 4, 25), at(9, 1, 55)),
                    depth_history: (0..120).map(|i| 60_000 - i * 100).collect(),
                    history_step_seconds: 300,
                    lost: Some(0),
                    unmapped: Some(412),
                    ..Default::default()
                }),
                reindex: Some(pb::Reindex {
                    unit: pb::ScopeUnit::Files as i32,
                    scope: 55_249,
                    done: 27_090,
                    failed: 31,
                    in_progress: 54,
                    rate_per_min: Some(65.0),
                    eta: eta(at(8, 4, 40), at(9, 1, 10)),
                    revisions: [(17, 30, 25_000), (19, 10, 41_000), (21, 45, 52_000), (22, 30, 55_249)]
                        .iter()
                        .enumerate()
                        .map(|(i, (h, m, scope))| pb::ScopeRevision {
                            at: Some(ts(at(if i == 0 { 6 } else { 7 }, *h, *m))),
                            previous: 0,
                            scope: *scope,
                            reason: "scan complete: 55,249 files on 10,101 damaged mailboxes, far more than the first estimate of about 25,000 files".into(),
                        })
                        .collect(),
                    mailboxes_pending: affected,
                    mailboxes_restored: 4_928,
                    ..Default::default()
                }),
                mailboxes: 412_000,
                affected_mailboxes: affected,
                sweep: None,
            },
            pb::Cluster {
                id: "b".into(),
                name: "Cluster B".into(),
                health: pb::HealthStatus::Ok as i32,
                services: services(false),
                queue: Some(pb::Queue {
                    active: Some(3),
                    deferred: Some(0),
                    hold: Some(0),
                    arrival_per_min: Some(120.0),
                    delivery_per_min: Some(120.0),
                    drain_eta: Some(pb::EtaRange::default()),
                    lost: Some(0),
                    ..Default::default()
                }),
                reindex: Some(pb::Reindex::default()),
                mailboxes: 398_000,
                ..Default::default()
            },
        ],
        totals: Some(pb::Totals {
            tenants: tenants.len() as u64,
            affected_tenants: 10,
            mailboxes: 810_000,
            affected_mailboxes: affected,
            restored_mailboxes: 4_928,
            queued_messages: Some(queued),
        }),
        tenants,
        status: Some(pb::StatusBoard {
            latest: None,
            page_url: "http://127.0.0.1:8080/status".into(),
            channels: vec![pb::ChannelSummary {
                channel: "page".into(),
                sent: 3,
                ..Default::default()
            }],
            components: vec![pb::Component {
                id: "imap".into(),
                name: "IMAP".into(),
            }],
        }),
        run: Some(pb::GatewayRun {
            id: "fixture".into(),
            started_at: Some(ts(at(6, 17, 30))),
            took_over_at: None,
        }),
    }
}

/// The first page (200 of 2,919 not ok) of the drill-down's mailboxes.
fn mailboxes() -> Vec<MailboxRow> {
    let people = [
        "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar",
    ];
    let mut out = Vec::new();
    let mut n = 0u64;
    'all: for p in people {
        for (k, d) in DERBY_DOMAINS.iter().enumerate() {
            for suffix in ["", "2", "3", "4", "5", "6", "7", "8", "9", "10"] {
                n += 1;
                if n > 200 {
                    break 'all;
                }
                let start = at(8, 3, 34) + Duration::minutes(n as i64 * 7);
                out.push(MailboxRow {
                    address: format!("{p}.smith{suffix}@{d}"),
                    tenant_id: DERBY.into(),
                    cluster_id: "a".into(),
                    volume: format!("vol{:02}", 3 + k),
                    state: Some(if n.is_multiple_of(17) {
                        MailboxState::Failed
                    } else if n < 4 {
                        MailboxState::Reindexing
                    } else {
                        MailboxState::ReindexPending
                    }),
                    reindex_position: n * 17,
                    eta: EtaRange {
                        p50: Some(start),
                        p90: Some(start + Duration::minutes(40 + n as i64 * 3)),
                        ..EtaRange::default()
                    },
                    queued_messages: Some(5 + n % 11),
                    last_error: if n.is_multiple_of(17) {
                        "index rebuild failed: dovecot.index.log corrupted (file size 0 at offset 8192); will retry after the storage fix".into()
                    } else {
                        String::new()
                    },
                });
            }
        }
    }
    out
}

fn lookup_answer() -> pb::LookupResponse {
    let tenants = tenants();
    let derby = tenants[0].clone();
    let mut matches: Vec<pb::LookupMatch> = mailboxes()
        .into_iter()
        .filter(|m| m.address.starts_with("grace.smith@") || m.address.starts_with("grace.smith2@"))
        .map(|m| pb::LookupMatch {
            kind: pb::MatchKind::Mailbox as i32,
            mailbox: Some(pb::Mailbox {
                address: m.address,
                tenant_id: m.tenant_id,
                cluster_id: m.cluster_id,
                volume: m.volume,
                state: pb::MailboxState::ReindexPending as i32,
                reindex_position: m.reindex_position,
                eta: eta(m.eta.p50.unwrap(), m.eta.p90.unwrap()),
                queued_messages: m.queued_messages,
                last_error: String::new(),
            }),
            tenant: Some(derby.clone()),
            domain: String::new(),
            quality: pb::MatchQuality::Prefix as i32,
        })
        .collect();
    matches.push(pb::LookupMatch {
        kind: pb::MatchKind::Domain as i32,
        mailbox: None,
        tenant: Some(tenants[1].clone()),
        domain: tenants[1].primary_domain.clone(),
        quality: pb::MatchQuality::Prefix as i32,
    });
    pb::LookupResponse {
        total: Some(matches.len() as u64 + 40),
        matches,
        version: 7,
        total_is_lower_bound: false,
    }
}

fn audit() -> Vec<AuditEvent> {
    vec![
        AuditEvent {
            id: 1,
            at: at(7, 21, 5),
            actor: "ana".into(),
            action: "set_priority".into(),
            target: "t00001".into(),
            reason: "title company closing sales today; their escrow desk cannot reach clients and has three closings before noon".into(),
            detail: "P2 → P0".into(),
        },
        AuditEvent {
            id: 2,
            at: at(7, 21, 40),
            actor: "cy.comms-lead".into(),
            action: "publish".into(),
            target: "su-0003".into(),
            reason: "hourly update: reindex scope grew to 55,249 files; next update promised for 23:00 UTC".into(),
            detail: "identified".into(),
        },
        AuditEvent {
            id: 3,
            at: at(7, 22, 10),
            actor: "ana".into(),
            action: "set_priority".into(),
            target: DERBY.into(),
            reason: "law firm with court filings due tomorrow morning; managing partner called the NOC twice".into(),
            detail: "P2 → P1 #1".into(),
        },
    ]
}

fn wall_clock() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
        .single()
        .unwrap()
}

/// An App holding the fixture, for a comms lead (so every key is offered).
fn app() -> App {
    let mut app = App::new("http://127.0.0.1:1".into(), Theme::mono());
    app.on_client(ClientEvent::Update(Box::new(Update::from_pb(&snapshot()))));
    app.me = Some(Me {
        name: "cy".into(),
        role: Role::Admin,
        authenticated: true,
    });
    app.clock = wall_clock();
    app.last_update = Some(wall_clock());
    app
}

fn key(app: &mut App, code: KeyCode) -> Command {
    app.on_key(KeyEvent::from(code))
}

fn screen(app: &mut App, w: u16, h: u16) -> String {
    app.prepare();
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| ui::render(f, app)).unwrap();
    warroom::console::snapshot::buffer_text(t.backend().buffer())
}

/// The fixture's Derby drill-down, first page loaded.
fn drill_down() -> App {
    let mut app = app();
    app.prepare();
    while app.model.ordered_at(app.selected).map(|t| t.id.to_string()) != Some(DERBY.into()) {
        key(&mut app, KeyCode::Down);
    }
    let Command::FetchMailboxes(req) = key(&mut app, KeyCode::Enter) else {
        panic!("enter fetches the mailboxes");
    };
    app.on_client(ClientEvent::Mailboxes {
        serial: req.serial,
        result: Ok((mailboxes(), "page-2".into(), 2_919)),
    });
    app
}

fn lookup() -> App {
    let mut app = app();
    key(&mut app, KeyCode::Char('L'));
    let mut serial = 0;
    for c in "grace.smith".chars() {
        if let Command::Lookup { serial: s, .. } = key(&mut app, KeyCode::Char(c)) {
            serial = s;
        }
    }
    app.on_client(ClientEvent::Lookup {
        serial,
        result: Ok(warroom::client::lookup::matches_from_pb(&lookup_answer())),
    });
    app
}

fn timeline() -> App {
    let mut app = app();
    let Command::FetchAudit { serial, after_id } = key(&mut app, KeyCode::Char('T')) else {
        panic!("T fetches the audit log");
    };
    app.on_client(ClientEvent::Audit {
        serial,
        after_id,
        result: Ok(audit()),
    });
    app
}

/// The gateway's trends for the fixture: a point every 15 minutes from
/// the incident's start (Oct 06 17:30) to now, mailboxes without service
/// rising to 9,500 in two hours then falling to the snapshot's 8,438, the
/// queue growing to its 75,942 with an hour not measured (Postfix down);
/// Derby's series when asked for.
fn trend_points(tenant: bool) -> pb::GetTrendsResponse {
    let start = at(6, 17, 30);
    let n = (now() - start).num_minutes() / 15 + 1;
    let last = (n - 1) as f64;
    let points = (0..n)
        .map(|i| {
            let f = i as f64;
            let affected = if i <= 8 {
                9_500.0 * f / 8.0
            } else {
                9_500.0 - 1_062.0 * (f - 8.0) / (last - 8.0)
            } as u64;
            pb::TrendPoint {
                at: Some(ts(start + Duration::minutes(15 * i))),
                queue_depth: (!(60..64).contains(&i)).then_some((75_942.0 * f / last) as u64),
                affected_mailboxes: Some(affected),
                restored_mailboxes: 9_500 - affected.min(9_500),
                tenant_affected: tenant.then_some(affected * 2_882 / 9_500),
            }
        })
        .collect();
    pb::GetTrendsResponse {
        points,
        step_seconds: 900,
        tenant_id: if tenant { DERBY.into() } else { String::new() },
    }
}

/// Every tenant's trends, as `C` opens them.
fn trends() -> App {
    let mut app = app();
    let Command::FetchTrends { serial, tenant_id } = key(&mut app, KeyCode::Char('C')) else {
        panic!("C fetches the trends");
    };
    assert_eq!(tenant_id, "", "every tenant first");
    app.on_client(ClientEvent::Trends {
        serial,
        result: Ok(warroom::api::trends_from_pb(&trend_points(false))),
    });
    app
}

/// Derby's trends: `C` from its drill-down.
fn tenant_trends() -> App {
    let mut app = drill_down();
    let Command::FetchTrends { serial, tenant_id } = key(&mut app, KeyCode::Char('C')) else {
        panic!("C fetches the trends");
    };
    assert_eq!(tenant_id, DERBY, "the drill-down's tenant");
    app.on_client(ClientEvent::Trends {
        serial,
        result: Ok(warroom::api::trends_from_pb(&trend_points(true))),
    });
    app
}

fn help() -> App {
    let mut app = app();
    key(&mut app, KeyCode::Char('?'));
    app
}

fn composer() -> App {
    let mut app = app();
    key(&mut app, KeyCode::Char('U'));
    assert!(app.composer.is_some(), "U opens the composer for comms");
    app
}

/// The priority form over the overview, for the first tenant, a reason
/// typed.
fn prio_form() -> App {
    let mut app = app();
    app.prepare();
    key(&mut app, KeyCode::Char('p'));
    key(&mut app, KeyCode::Left);
    for c in "contract: law firm, court filing deadline tomorrow 09:00".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    assert!(app.prio.is_some(), "p opens the priority form");
    app
}

/// The same, asking to confirm.
fn prio_confirm() -> App {
    let mut app = prio_form();
    key(&mut app, KeyCode::Enter);
    assert!(
        app.prio.as_ref().unwrap().confirming,
        "enter asks to confirm"
    );
    app
}

/// The composer with a draft, showing the gateway's preview (a warning
/// and two channels).
fn composer_preview() -> App {
    let mut app = composer();
    for c in "Mail access restored for most customers".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Tab);
    for c in "{restored_mailboxes} of {affected_mailboxes} mailboxes are back.".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let Command::PreviewStatus { serial, .. } = app.on_key(KeyEvent::new(
        KeyCode::Char('p'),
        ratatui::crossterm::event::KeyModifiers::CONTROL,
    )) else {
        panic!(
            "ctrl-p asks for a preview: {:?}",
            app.composer.as_ref().map(|c| &c.error)
        );
    };
    app.on_client(ClientEvent::StatusPreview {
        serial,
        result: Ok((
            vec![warroom::client::draft::Finding {
                error: false,
                field: "next".into(),
                message: "no next update time: say when the next update comes".into(),
            }],
            vec![
                (
                    "page".into(),
                    "text/plain".into(),
                    "Mail access restored for most customers\n\n1,663 of 10,101 mailboxes are back."
                        .into(),
                ),
                (
                    "webhook".into(),
                    "application/json".into(),
                    "{\"state\":\"identified\",\"title\":\"Mail access restored for most customers\"}"
                        .into(),
                ),
            ],
        )),
    });
    app
}

/// The preview, asking to confirm the publish.
fn composer_confirm() -> App {
    let mut app = composer_preview();
    key(&mut app, KeyCode::Enter);
    app
}

/// The command palette, a command half typed.
fn palette() -> App {
    let mut app = app();
    key(&mut app, KeyCode::Char(':'));
    for c in "prio t01654 P0 court".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    app
}

/// The timeline with its first event open in full.
fn timeline_event() -> App {
    let mut app = timeline();
    key(&mut app, KeyCode::Enter);
    app
}

fn snap_all(name: &str, make: fn() -> App) {
    for (w, h) in SIZES {
        let mut app = make();
        let s = screen(&mut app, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), s);
    }
}

#[test]
fn overview_screens() {
    snap_all("overview", app);
}

#[test]
fn drill_down_screens() {
    snap_all("drill_down", drill_down);
}

#[test]
fn lookup_screens() {
    snap_all("lookup", lookup);
}

#[test]
fn timeline_screens() {
    snap_all("timeline", timeline);
}

#[test]
fn trends_screens() {
    snap_all("trends", trends);
    snap_all("tenant_trends", tenant_trends);
}

/// Issue #15 item 9: what the charts say can be read without colour: each
/// line has its own mark, the key says which, and a stretch the gateway did
/// not measure is a gap, not a fall to zero.
#[test]
fn the_trends_read_without_colour_at_80x24() {
    let mut app = trends();
    let s = screen(&mut app, 80, 24);
    assert!(
        s.contains("• p50") && s.contains("▄ p90") && s.contains("█ scope revised"),
        "{s}"
    );
    assert!(s.contains("now 22:40"), "now, on the drill's clock:\n{s}");
    for mark in ['•', '▄', '█'] {
        let drawn = s.lines().skip(3).filter(|l| l.contains(mark)).count();
        assert!(drawn > 0, "{mark} drawn:\n{s}");
    }
    assert!(
        s.contains("mailboxes without service") && s.contains("inbound queue"),
        "{s}"
    );
    let mut app = tenant_trends();
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("Derby Yellowstone"), "{s}");
    assert!(s.contains("mailboxes without service, this tenant"), "{s}");
    assert!(s.contains("inbound queue, every tenant"), "{s}");
}

#[test]
fn help_screens() {
    snap_all("help", help);
}

#[test]
fn composer_screens() {
    snap_all("composer", composer);
    snap_all("composer_preview", composer_preview);
    snap_all("composer_confirm", composer_confirm);
}

#[test]
fn form_screens() {
    snap_all("prio_form", prio_form);
    snap_all("prio_confirm", prio_confirm);
    snap_all("palette", palette);
    snap_all("timeline_event", timeline_event);
}

#[test]
fn the_fixture_drill_down_is_fifteen_pages_of_one_tenant() {
    let app = drill_down();
    let View::Tenant(tv) = &app.view else {
        panic!("in the drill-down");
    };
    assert_eq!(tv.total, 2_919);
    assert_eq!(tv.rows.len(), 200);
}

/// The line of `screen` holding `needle`, for messages.
fn line_with<'a>(screen: &'a str, needle: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(needle))
}

/// Issue #15 item 3: addresses were cut at 36 columns even at 200 while
/// "last error" had ~100 empty columns, and at 80x24 rows of one tenant
/// read alike.
#[test]
fn the_drill_down_shows_whole_addresses_when_there_is_room_and_tells_rows_apart_when_not() {
    let mut app = drill_down();
    let s = screen(&mut app, 200, 60);
    for a in [
        "frank.smith@derby-yellowstone-law-partners.example",
        "frank.smith10@derby-yellowstone-law-partners.de",
    ] {
        assert!(s.contains(a), "{a} whole at 200 columns:\n{s}");
    }
    let s = screen(&mut app, 80, 24);
    let rows: Vec<&str> = s
        .lines()
        .filter(|l| l.contains("smith"))
        .map(|l| {
            l.trim_start_matches(['│', '▶', ' '])
                .split_whitespace()
                .next()
                .unwrap()
        })
        .collect();
    assert!(rows.len() >= 10, "{s}");
    let mut distinct = rows.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        rows.len(),
        "every row told apart: {rows:?}\n{s}"
    );
    assert!(
        rows.iter().all(|a| a.contains('@')),
        "the local part whole: {rows:?}"
    );
}

/// Issue #15 item 3: `Oct 08 04:40–Oct 0`.
#[test]
fn an_eta_whose_p90_crosses_midnight_keeps_its_p90_at_every_size() {
    for (w, h) in SIZES {
        let mut app = app();
        let s = screen(&mut app, w, h);
        let row = line_with(&s, "Derby").unwrap_or_else(|| panic!("{w}x{h}:\n{s}"));
        assert!(
            row.contains("Oct 09 01:10") || row.contains("01:10+2d"),
            "{w}x{h}: {row}"
        );
        assert!(!row.contains("–Oct 0 "), "{w}x{h}: {row}");
    }
}

/// Rates from successive queue listings (a platform without Postfix's log
/// counters) count only the mail that stays queued: the panel says so from
/// 80 columns on (at 60 the rates line itself is cut), never a bare "in
/// 0/min" that reads as no mail arriving; a rate under one a minute keeps
/// its decimal.
#[test]
fn rates_that_count_only_part_of_the_mail_say_so() {
    for (w, h) in SIZES.into_iter().filter(|(w, _)| *w >= 80) {
        let mut update = snapshot();
        let q = update.clusters[0].queue.as_mut().unwrap();
        q.arrival_per_min = Some(0.6);
        q.rates_cover = "mail queued for a poll or more".into();
        let mut app = app();
        app.on_client(ClientEvent::Update(Box::new(Update::from_pb(&update))));
        let s = screen(&mut app, w, h);
        let rates =
            line_with(&s, "in 0.6/min · out 383/min").unwrap_or_else(|| panic!("{w}x{h}:\n{s}"));
        assert!(
            rates.contains("(partial)")
                || s.contains("counting only mail queued for a poll or more"),
            "{w}x{h}:\n{s}"
        );
    }
    let mut app = app();
    let s = screen(&mut app, 120, 40);
    let rates = line_with(&s, "in 332/min · out 383/min").unwrap_or_else(|| panic!("{s}"));
    assert!(
        !rates.contains("partial") && !s.contains("counting only"),
        "{s}"
    );
}

/// Issue #15 item 3: the domain column stayed 20 wide at 200 columns
/// while the name took 112; the drain ETA line was cut at 200.
#[test]
fn at_200_columns_domains_and_the_drain_eta_are_whole() {
    let mut app = app();
    let s = screen(&mut app, 200, 60);
    assert!(s.contains("graz-union-design-architecture.at"), "{s}");
    assert!(s.contains("tampa-highland-hosting-services.com"), "{s}");
    assert!(
        s.contains("drain ETA Oct 08 04:25–Oct 09 01:55 UTC (in 5h 45m–1d 03h)"),
        "{s}"
    );
}

/// Issue #15 item 3: `page 1/15` showed as `page 1/1` at 60x16.
#[test]
fn the_page_count_is_whole_at_60x16() {
    let mut app = drill_down();
    let s = screen(&mut app, 60, 16);
    assert!(s.contains("page 1/15 "), "{s}");
}

/// Issue #15 item 3: the lookup list cut addresses at 26 at 80 columns.
#[test]
fn the_lookup_list_shows_whole_addresses_at_80_columns() {
    let mut app = lookup();
    let s = screen(&mut app, 120, 40);
    let listed = |s: &str| {
        s.lines()
            .filter(|l| l.contains("mailbox grace"))
            .map(|l| {
                l.split_whitespace()
                    .skip_while(|w| !w.ends_with("mailbox"))
                    .nth(1)
                    .unwrap_or("")
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert!(
        listed(&s).contains(&"grace.smith@derby-yellowstone-law-partners.de".to_string()),
        "{s}"
    );
    // At 80 the domains give way in their middle; the rows stay apart.
    let s = screen(&mut app, 80, 24);
    let rows = listed(&s);
    assert_eq!(rows.len(), 6, "{s}");
    let mut distinct = rows.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 6, "{rows:?}");
    assert!(
        rows.iter()
            .all(|a| a.starts_with("grace.smith") && (!a.contains('…') || a.chars().count() >= 36)),
        "{rows:?}"
    );
}

/// Issue #15 item 7: descriptions were cut at 120 columns and the
/// overview's `p` was missing at 80x24.
#[test]
fn the_help_shows_every_key_whole_and_scrolls_when_it_does_not_fit() {
    let mut app = help();
    let s = screen(&mut app, 120, 40);
    assert!(
        s.contains(":  commands :open :lookup :prio :trends :timeline :sort :filter :quit"),
        "{s}"
    );
    assert!(
        s.contains("set the tenant's reindex priority (a priority, a rank, a reason)"),
        "{s}"
    );
    let s = screen(&mut app, 80, 24);
    assert!(
        line_with(&s, "set the tenant's reindex").is_some_and(|l| l.contains(" p ")),
        "p in the overview's help at 80x24:\n{s}"
    );
    // At 60x16 it does not fit: it says so, and ↓ brings the rest.
    let s = screen(&mut app, 60, 16);
    assert!(s.contains("scroll"), "{s}");
    assert!(!s.contains("set the tenant's reindex"), "{s}");
    for _ in 0..40 {
        key(&mut app, KeyCode::Down);
        screen(&mut app, 60, 16);
    }
    assert!(app.help, "scrolling keeps the help open");
    let s = screen(&mut app, 60, 16);
    assert!(s.contains("set the tenant's"), "{s}");
    key(&mut app, KeyCode::Char('x'));
    assert!(!app.help, "another key closes it");
}

/// Issue #15 item 7: the timeline cut tenant and reason, had no detail
/// view, and said "1 events".
#[test]
fn the_timeline_names_tenants_whole_and_enter_shows_the_whole_event() {
    let mut wide = timeline();
    let s = screen(&mut wide, 200, 60);
    assert!(s.contains("3 events"), "{s}");
    assert!(
        s.contains("Derby Yellowstone Law Partners GmbH (t01654)"),
        "{s}"
    );
    let mut small = timeline();
    let s = screen(&mut small, 80, 24);
    assert!(!s.contains("managing partner called the NOC twice"), "{s}");
    key(&mut small, KeyCode::Enter);
    let s = screen(&mut small, 80, 24);
    assert!(s.contains("Event 3"), "{s}");
    // Wrapped, every word of it on screen.
    let shown: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(shown.contains("twice"), "{s}");
    assert!(shown.contains("managing partner"), "{s}");
    key(&mut small, KeyCode::Esc);
    assert!(
        matches!(small.view, View::Timeline(_)),
        "esc closes the event first"
    );
    assert!(!screen(&mut small, 80, 24).contains("Event 3"));

    let mut one = app();
    let Command::FetchAudit { serial, after_id } = key(&mut one, KeyCode::Char('T')) else {
        panic!("T fetches the audit log");
    };
    one.on_client(ClientEvent::Audit {
        serial,
        after_id,
        result: Ok(audit().into_iter().take(1).collect()),
    });
    let s = screen(&mut one, 120, 40);
    assert!(s.contains("· 1 event "), "{s}");
}

/// Issue #15 item 8: changing the sort moved the selection to row 1.
#[test]
fn changing_the_sort_keeps_the_selected_tenant_selected() {
    let mut app = app();
    app.prepare();
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    let chosen = app.model.ordered_at(app.selected).unwrap().name.to_string();
    assert_eq!(chosen, "Bath Acme Design Group");
    for k in ['s', 's', 'r'] {
        key(&mut app, KeyCode::Char(k));
        let s = screen(&mut app, 120, 40);
        let marked = line_with(&s, "▶").unwrap_or_else(|| panic!("{s}"));
        assert!(marked.contains("Bath Acme"), "after {k}: {marked}\n{s}");
        assert_ne!(app.selected, 0, "after {k}: not row 1");
    }
}

/// Issue #15 item 8: Esc on `/lyon` left the list looking filtered.
#[test]
fn esc_on_a_filter_clears_it_and_the_list_shows_everything() {
    for keep_first in [false, true] {
        let mut app = app();
        key(&mut app, KeyCode::Char('/'));
        for c in "lyon".chars() {
            key(&mut app, KeyCode::Char(c));
        }
        let s = screen(&mut app, 120, 40);
        assert!(
            s.contains("Tenants 1 ") && s.contains("filter /lyon"),
            "{s}"
        );
        if keep_first {
            key(&mut app, KeyCode::Enter);
        }
        key(&mut app, KeyCode::Esc);
        let s = screen(&mut app, 120, 40);
        assert!(s.contains("Tenants 74 "), "enter first: {keep_first}\n{s}");
        assert!(!s.contains("filter /"), "{s}");
        assert!(s.contains("Derby Yellowstone"), "{s}");
        let marked = line_with(&s, "▶").unwrap_or_else(|| panic!("{s}"));
        assert!(
            marked.contains("Lyon Nova"),
            "the tenant chosen stays chosen: {marked}"
        );
    }
}

/// Issue #15 item 8: the drill-down title counted 2,919 while `x`
/// exported 2,865: two sets, each now named.
#[test]
fn the_drill_down_and_the_export_say_which_mailboxes_they_count() {
    let mut app = drill_down();
    let s = screen(&mut app, 120, 40);
    assert!(
        s.contains("Mailboxes · 2,919 not ok (affected now or restored)"),
        "{s}"
    );
    app.on_client(ClientEvent::Exported(Ok((
        std::path::PathBuf::from("warroom-t01654-affected.csv"),
        2_865,
    ))));
    let s = screen(&mut app, 200, 60);
    assert!(
        s.contains("exported 2,865 mailboxes affected now (not the restored)"),
        "{s}"
    );
}

/// A platform counts a mailbox only once its damage sweep has probed it:
/// a tenant with mailboxes not checked yet shows its count as a floor
/// ("≥"), or "?" when none checked is affected, never as a healthy "0",
/// and its drill-down says how many are not checked.
#[test]
fn a_tenant_with_mailboxes_not_checked_yet_is_not_shown_as_healthy() {
    let mut snap = snapshot();
    for t in &mut snap.tenants {
        let states = t.states.as_mut().unwrap();
        match t.id.as_str() {
            // 100 of Derby's healthy mailboxes not probed yet.
            DERBY => states.ok -= 100,
            // Nothing probed yet at all.
            "t02000" => states.ok = 0,
            _ => {}
        }
    }
    let mut app = app();
    app.on_client(ClientEvent::Update(Box::new(Update::from_pb(&snap))));
    let s = screen(&mut app, 120, 40);
    let row = line_with(&s, "Derby").unwrap_or_else(|| panic!("{s}"));
    assert!(row.contains("≥2,882"), "a floor, not a count: {row}");

    app.prepare();
    while app.model.ordered_at(app.selected).map(|t| t.id.to_string()) != Some("t02000".into()) {
        key(&mut app, KeyCode::Down);
    }
    for (w, h) in [(80, 24), (120, 40)] {
        let s = screen(&mut app, w, h);
        let row = line_with(&s, "Quebec Maple").unwrap_or_else(|| panic!("{w}x{h}:\n{s}"));
        assert!(row.contains(" ? "), "{w}x{h}: unknown, not 0: {row}");
        assert!(row.contains("not checked"), "{w}x{h}: {row}");
        assert!(!row.contains("0%"), "{w}x{h}: unknown, not 0%: {row}");
    }
    let Command::FetchMailboxes(req) = key(&mut app, KeyCode::Enter) else {
        panic!("enter fetches the mailboxes");
    };
    app.on_client(ClientEvent::Mailboxes {
        serial: req.serial,
        result: Ok((Vec::new(), String::new(), 0)),
    });
    let s = screen(&mut app, 120, 40);
    assert!(s.contains("50 not checked yet"), "{s}");
    assert!(
        s.contains("none affected among those checked so far"),
        "{s}"
    );
    assert!(!s.contains("nothing left to restore"), "{s}");
}

/// In the trends, ↓ and ↑ pick a tenant in the table's order (starting
/// from the one selected there), home goes back to every tenant and esc
/// back where the trends were opened.
#[test]
fn the_trends_move_from_tenant_to_tenant_and_back_to_every_tenant() {
    let mut app = trends();
    app.prepare();
    let first = app.model.ordered_at(0).unwrap().id.to_string();
    let second = app.model.ordered_at(1).unwrap().id.to_string();
    let Command::FetchTrends { tenant_id, .. } = key(&mut app, KeyCode::Down) else {
        panic!("a tenant's trends are fetched");
    };
    assert_eq!(tenant_id, first, "the tenant selected in the table");
    let Command::FetchTrends { tenant_id, .. } = key(&mut app, KeyCode::Down) else {
        panic!("the next tenant's trends are fetched");
    };
    assert_eq!(tenant_id, second);
    let Command::FetchTrends { tenant_id, .. } = key(&mut app, KeyCode::Home) else {
        panic!("every tenant's trends are fetched");
    };
    assert_eq!(tenant_id, "");
    key(&mut app, KeyCode::Esc);
    assert!(matches!(app.view, View::Overview), "esc goes back");
    assert_eq!(
        app.model.ordered_at(app.selected).map(|t| t.id.to_string()),
        Some(second),
        "the table's selection followed the tenant shown"
    );
}

/// On a platform whose damage sweep has not checked every mailbox, the
/// header and the trends say the count is what was found so far.
#[test]
fn the_trends_say_the_count_is_so_far_while_the_first_sweep_runs() {
    let mut snap = snapshot();
    snap.clusters[0].sweep = Some(pb::Sweep {
        pass: 1,
        mailboxes: 55_249,
        swept: 12_000,
        state: "sweeping".into(),
        ..Default::default()
    });
    let mut app = trends();
    app.on_client(ClientEvent::Update(Box::new(Update::from_pb(&snap))));
    let s = screen(&mut app, 120, 40);
    assert!(
        s.contains("so far: the first sweep has checked 12,000 of 55,249"),
        "{s}"
    );
    // The header too, on every screen.
    assert!(
        s.contains("8,438 mailboxes affected so far (21% swept)"),
        "{s}"
    );
}

/// Issue #16: the forms' keys are the keymap's. A user keymap moves the
/// lookup's copy and back and the priority form's submit; the footer and
/// the help (f1 from the form) show the new keys, the old ones do nothing,
/// and letters are still typed into the text.
#[test]
fn the_lookup_and_the_priority_form_follow_a_user_keymap_and_the_help_lists_their_keys() {
    use ratatui::crossterm::event::KeyModifiers;
    use warroom::console::keymap::{self, Keymap};
    let user = "[lookup]\ncopy = [\"ctrl-o\"]\nback = [\"ctrl-g\"]\n\
                [priority]\nsubmit = [\"ctrl-s\"]\n";
    let km = Keymap::build(
        "default",
        &[
            (
                "keymaps/default.toml".into(),
                keymap::builtin_text("default").unwrap().into(),
            ),
            ("keymap.toml".into(), user.into()),
        ],
    )
    .unwrap();
    let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);

    let mut app = lookup();
    app.keymap = km.clone();
    let s = screen(&mut app, 120, 40);
    assert!(
        s.contains("ctrl-o copy answer") && s.contains("ctrl-g back"),
        "the footer shows the user's keys:\n{s}"
    );
    assert!(matches!(app.on_key(ctrl('y')), Command::None));
    assert!(matches!(app.on_key(ctrl('o')), Command::Copy(_)));
    key(&mut app, KeyCode::Esc);
    assert!(matches!(app.view, View::Lookup(_)), "esc no longer leaves");
    key(&mut app, KeyCode::F(1));
    let s = screen(&mut app, 120, 40);
    assert!(
        line_with(&s, "lookup · [lookup]").is_some()
            && line_with(&s, "copy the answer").is_some_and(|l| l.contains("ctrl-o")),
        "f1 lists the lookup's keys as remapped:\n{s}"
    );
    key(&mut app, KeyCode::Esc);
    assert!(!app.help, "any other key closes the help");
    app.on_key(ctrl('g'));
    assert!(matches!(app.view, View::Overview), "ctrl-g goes back");

    // The priority form: enter no longer asks to confirm, ctrl-s does; a
    // letter bound elsewhere ("q", "p") is typed into the reason.
    key(&mut app, KeyCode::Char('p'));
    assert!(app.prio.is_some(), "p opens the priority form");
    for c in "quick p0 fix".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    assert_eq!(app.prio.as_ref().unwrap().reason, "quick p0 fix");
    key(&mut app, KeyCode::Enter);
    assert!(!app.prio.as_ref().unwrap().confirming);
    app.on_key(ctrl('s'));
    assert!(app.prio.as_ref().unwrap().confirming);
    let s = screen(&mut app, 120, 40);
    assert!(s.contains("enter set it · any other key"), "{s}");
    assert!(matches!(
        key(&mut app, KeyCode::Enter),
        Command::SetPriority { .. }
    ));
}

/// A keymap cannot take a letter away from a text: binding one where text
/// is typed is refused with the place and the reason.
#[test]
fn a_letter_bound_where_text_is_typed_is_refused() {
    use warroom::console::keymap::Keymap;
    let e = Keymap::build(
        "x",
        &[(
            "keymap.toml".into(),
            "[lookup]\ncopy = [\"c\"]\n[composer]\npreview = [\"backspace\"]\n".into(),
        )],
    )
    .unwrap_err();
    let all: Vec<String> = e.all().iter().map(|e| e.to_string()).collect();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[0]
            .starts_with("keymap.toml:2:9: key c cannot be bound in [lookup]: text is typed there"),
        "{all:?}"
    );
    assert!(all[1].contains("[composer]"), "{all:?}");
}
