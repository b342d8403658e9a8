//! What the examples share: numeric positional arguments, a runtime.

// Each example includes this file and uses what it needs.
#![allow(dead_code)]

/// Positional argument `i` as a number, `default` when it is missing (or a
/// `--flag`).
pub fn arg(i: usize, default: u64) -> Result<u64, String> {
    match std::env::args().nth(i).filter(|a| !a.starts_with("--")) {
        None => Ok(default),
        Some(a) => a
            .parse()
            .map_err(|_| format!("argument {i}: {a:?} is not a number")),
    }
}

/// A two-thread tokio runtime (the machines the examples are measured on
/// have two cores).
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}
