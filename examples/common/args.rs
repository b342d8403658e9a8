//! The examples' numeric positional arguments.

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
