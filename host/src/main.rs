//! The `hyphae` binary.

fn main() -> std::process::ExitCode {
    hyphae::cli::main()
}
