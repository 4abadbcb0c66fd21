//! The `holdfast-server` binary; everything is in the library.

fn main() -> std::process::ExitCode {
    holdfast_server::cli::main()
}
