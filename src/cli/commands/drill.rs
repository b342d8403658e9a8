//! `warroom drill`.

use crate::cli::args::*;

pub(crate) async fn drill(cmd: DrillCommand) -> anyhow::Result<i32> {
    use warroom::domain::calibration::{meets_goal, table};
    use warroom::sources::simulator::{drill, scenario};
    let DrillCommand::Calibrate {
        scenario: names,
        seeds,
        json,
        samples,
    } = cmd;
    let names: Vec<String> = if names.is_empty() {
        scenario::SHIPPED
            .iter()
            .map(|(n, ..)| n.to_string())
            .collect()
    } else {
        names
    };
    let scenarios = names
        .iter()
        .map(|n| scenario::Scenario::load(n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("invalid scenario: {e}"))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Opened first: a path that cannot be written is said before the drills run.
    let mut file = match &samples {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
        )),
        None => None,
    };
    let scores = tokio::task::spawn_blocking(move || {
        let runs = drill::run_all(&scenarios, seeds, threads)?;
        if let (Some(file), Some(path)) = (file.as_mut(), &samples) {
            drill::write_samples(file, &scenarios, &runs)
                .and_then(|()| std::io::Write::flush(file))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok::<_, String>(drill::score_runs(&scenarios, runs))
    })
    .await?
    .map_err(anyhow::Error::msg)?;
    if json {
        for s in &scores {
            outln!("{}", serde_json::to_string(s)?);
        }
    } else {
        out!("{}", table(&scores));
    }
    let missed = scores
        .iter()
        .filter(|s| s.forecaster == warroom::domain::calibration::Forecaster::Warroom)
        .any(|s| !meets_goal(s));
    Ok(if missed { 1 } else { 0 })
}
