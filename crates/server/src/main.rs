//! The `holdfast-server` binary; everything is in the library.

/// mimalloc instead of glibc's malloc: a request allocates many small,
/// short-lived objects, which mimalloc serves with less CPU (measured in
/// docs/BENCHMARKS.md, "Before and after: allocator, release ping, load
/// generator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    holdfast_server::cli::main()
}
