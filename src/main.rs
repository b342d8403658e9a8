//! `warroom`: the console (default), the gateway, and commands for scripts
//! (see `cli`).

mod cli;

/// mimalloc rather than glibc's malloc: cheaper small allocations, which a
/// bulk lookup makes a few of per line (docs/lookup-benchmark.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::run()
}
