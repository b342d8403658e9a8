//! Times ListMailboxes-style paging over one very large tenant (the source
//! side of a drill-down), in address order (the first request sorts the
//! tenant's addresses once; later pages reuse that order) and in reindex order.
//!
//!     cargo run --release --example page_profile

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

use std::time::Instant;

use warroom::sources::simulator::{SimConfig, Simulator};
use warroom::sources::{MailboxQuery, Source};

fn main() -> Result<(), String> {
    let mut s = Simulator::new(SimConfig {
        tenants: 2,
        mailboxes: 400_000,
        ..SimConfig::default()
    })?;
    for _ in 0..8 * 60 {
        s.advance(60.0);
    }
    for sort_by_eta in [false, true] {
        for offset in [0, 100_000] {
            let t = Instant::now();
            let page = s
                .mailboxes(&MailboxQuery {
                    tenant_id: "t00000".into(),
                    states: Vec::new(),
                    sort_by_eta,
                    offset,
                    limit: 200,
                })
                .map_err(|e| e.to_string())?;
            println!(
                "{} order, offset {offset}: {} of {} rows in {:.1} ms",
                if sort_by_eta { "reindex" } else { "address" },
                page.rows.len(),
                page.total,
                t.elapsed().as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}
