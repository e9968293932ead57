//! The `hyphae` binary.

/// mimalloc: the engine allocates and frees many short-lived buffers of every size per batch
/// (rows, JSON, event blocks); glibc's allocator spent about a fifth of the CPU on them.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hyphae::cli::main()
}
