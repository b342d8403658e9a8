//! `warroom lookup`, one query or a file of them.

use crate::cli::args::*;
use crate::cli::wiring::*;
use warroom::config::Config;

pub(crate) async fn lookup(args: LookupArgs, cfg: Config) -> anyhow::Result<i32> {
    use warroom::client::lookup;
    let Some(query) = args.query.as_deref() else {
        return lookup_file(&args, cfg).await;
    };
    // Refuse a bad query before starting anything.
    if let Err(why) = lookup::check_query(query) {
        anyhow::bail!("{why}");
    }
    let (client, embedded) = gateway_or_demo(&args.connect, &cfg).await?;
    let answer = lookup::ask(&client, query, args.limit).await;
    if let Some(gw) = embedded {
        gw.stop().await;
    }
    let answer = answer?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&answer)?);
    } else if answer.matches.is_empty() {
        eprintln!(
            "warroom: nothing matches {:?}: no such mailbox, domain or tenant",
            answer.query
        );
    } else {
        out!("{}", lookup::text(&answer));
    }
    Ok(if answer.matches.is_empty() { 1 } else { 0 })
}

/// `warroom lookup --file`: every line over one streaming call, printed as
/// it is answered.
pub(crate) async fn lookup_file(args: &LookupArgs, cfg: Config) -> anyhow::Result<i32> {
    use warroom::client::lookup;
    let path = args.file.as_deref().unwrap_or("-");
    let input: Box<dyn std::io::BufRead + Send> = if path == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let f =
            std::fs::File::open(path).map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
        Box::new(std::io::BufReader::new(f))
    };
    let (client, embedded) = gateway_or_demo(&args.connect, &cfg).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut missing = 0usize;
    let limit = if args.json { args.limit } else { 1 };
    let asked = {
        use std::io::Write;
        if !args.json {
            write!(out, "{}\r\n", lookup::BULK_CSV_HEADER)?;
        }
        let mut record = String::new();
        lookup::ask_many(&client, input, limit, |row| {
            missing += usize::from(row.matches.is_empty());
            if args.json {
                serde_json::to_writer(&mut out, &row)?;
                out.write_all(b"\n")
            } else {
                record.clear();
                lookup::bulk_csv(&row, &mut record);
                out.write_all(record.as_bytes())
            }
        })
        .await
    };
    if let Some(gw) = embedded {
        gw.stop().await;
    }
    std::io::Write::flush(&mut out)?;
    let asked = asked?;
    if missing > 0 {
        eprintln!("warroom: {missing} of {asked} lines matched nothing");
    }
    Ok(if missing > 0 { 1 } else { 0 })
}
