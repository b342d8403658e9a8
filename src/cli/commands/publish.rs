//! `warroom publish`.

use crate::cli::args::*;
use crate::cli::wiring::*;
use warroom::client::GatewayClient;
use warroom::config::Config;
use warroom::domain::format::counted;

/// `warroom publish`: the same draft the composer builds, linted locally
/// for what needs no gateway (the time), then previewed or published.
pub(crate) async fn publish(args: PublishArgs, cfg: Config) -> anyhow::Result<i32> {
    use warroom::client::{self, draft};
    use warroom::domain::sanitize::sanitize;
    let body = if args.body == "-" {
        let mut b = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut b)
            .map_err(|e| anyhow::anyhow!("cannot read the body from stdin: {e}"))?;
        b
    } else {
        args.body.clone()
    };
    let draft = draft::DraftFile {
        state: args.state.as_str().into(),
        title: args.title.clone(),
        body,
        components: args.components.join(","),
        next: args.next.clone().unwrap_or_default(),
        operation_id: args
            .operation_id
            .clone()
            .unwrap_or_else(draft::operation_id),
        saved_at: chrono::Utc::now(),
    };
    let (gw, embedded) = gateway_or_demo(&args.connect, &cfg).await?;
    // "+30m" and "23:30" are on the incident's clock, as in the composer.
    let now = client::source_clock(&gw).await?;
    let code = match draft.to_draft(now) {
        Err((_, why)) => {
            eprintln!("warroom: not published: {why}");
            Ok(1)
        }
        Ok(request) if args.dry_run => preview_to_stdout(&gw, &request, now).await,
        Ok(request) => match client::publish(
            &gw,
            &request,
            draft.operation_id.clone(),
            args.confirm_warnings,
        )
        .await
        {
            Ok(u) => {
                outln!("published {} ({} deliveries)", u.id, u.deliveries.len());
                Ok(0)
            }
            // Not published, whoever said no (the draft, the role, an
            // unreachable gateway): 1, as the user guide says.
            Err((why, findings)) => {
                if !findings.is_empty() && findings.iter().all(|f| !f.error) {
                    // The gateway names the API's field; here it is a flag.
                    eprintln!(
                        "warroom: not published: {} to confirm; publish again with \
                         --confirm-warnings to go ahead",
                        counted(findings.len() as u64, "warning", "warnings")
                    );
                } else {
                    eprintln!("warroom: not published: {}", sanitize(&why));
                }
                for f in &findings {
                    if f.field == client::MORE_FINDINGS {
                        eprintln!(
                            "  {} (warroom publish --dry-run lists them all)",
                            sanitize(f.message.trim_end_matches("; a preview lists them all"))
                        );
                        continue;
                    }
                    eprintln!(
                        "  {} {}: {}",
                        if f.error { "error" } else { "warning" },
                        sanitize(&f.field),
                        sanitize(&f.message)
                    );
                }
                Ok(1)
            }
        },
    };
    if let Some(g) = embedded {
        g.stop().await;
    }
    code
}

pub(crate) async fn preview_to_stdout(
    gw: &GatewayClient,
    draft: &warroom::domain::status::Draft,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<i32> {
    let next = draft.next_update;
    let (findings, previews) = warroom::client::preview(gw, draft)
        .await
        .map_err(anyhow::Error::msg)?;
    match next {
        Some(t) => outln!(
            "next update: {} UTC (in {})",
            t.format("%Y-%m-%d %H:%M"),
            warroom::domain::format::duration(t - now)
        ),
        None => outln!("next update: none (resolved)"),
    }
    let errors = findings.iter().filter(|f| f.error).count();
    for f in &findings {
        eprintln!(
            "{} {}: {}",
            if f.error { "error" } else { "warning" },
            f.field,
            f.message
        );
    }
    for (channel, content_type, content) in &previews {
        outln!(
            "\n== {}",
            warroom::domain::sanitize::sanitize(&warroom::client::draft::preview_label(
                channel,
                content_type
            ))
        );
        for line in content.lines() {
            outln!("{}", warroom::domain::sanitize::sanitize(line));
        }
    }
    outln!("\n(dry run: nothing published)");
    Ok(if errors > 0 { 1 } else { 0 })
}
