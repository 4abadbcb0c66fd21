//! holdfast-bench: a thin shell over the library, so that the smoke test
//! drives the same scenarios the binary runs.

fn main() -> std::process::ExitCode {
    holdfast_bench::cli::main()
}
