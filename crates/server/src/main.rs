//! The `holdfast-server` binary; everything is in the library.

/// mimalloc instead of glibc's malloc: under the spread load glibc's malloc
/// and free took 11% of the server's CPU, mimalloc's 8.5%, and a reservation
/// 6% less CPU in all (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    holdfast_server::cli::main()
}
