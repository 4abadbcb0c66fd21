//! holdfast-bench: a thin shell over the library, so that the smoke test
//! drives the same scenarios the binary runs.

/// The same allocator as the server's: the load generator shares the cores
/// it measures, so its own CPU per request counts against the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    holdfast_bench::cli::main()
}
