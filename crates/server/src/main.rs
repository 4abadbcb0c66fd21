//! The `holdfast-server` binary; everything is in the library.

/// mimalloc instead of glibc's malloc: glibc's was 11% of the server's CPU per
/// reservation under load (docs/BENCHMARKS.md), most of it consolidating free
/// chunks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    holdfast_server::cli::main()
}
