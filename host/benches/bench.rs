//! Benchmarks of the host, by section: `cargo bench --bench bench [-- SECTION...]`.
//!
//! Each section prints its own figures. Sections: `plugins`, `languages`, `engine`, `waiting`,
//! `watchers`.

#[path = "sections/engine.rs"]
mod engine;
#[path = "sections/languages.rs"]
mod languages;
#[path = "sections/plugins.rs"]
mod plugins;
#[path = "sections/waiting.rs"]
mod waiting;
#[path = "sections/watchers.rs"]
mod watchers;

/// A named group of benchmarks.
type Section = (&'static str, fn());

const SECTIONS: &[Section] = &[
    ("plugins", plugins::run),
    ("languages", languages::run),
    ("engine", engine::run),
    ("waiting", waiting::run),
    ("watchers", watchers::run),
];

fn main() {
    if std::env::var_os(waiting::UPSTREAM_ENV).is_some() {
        return waiting::serve_upstream();
    }
    // `cargo bench` passes `--bench`; anything else not starting with `-` selects sections.
    let wanted: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    for (name, run) in SECTIONS {
        if wanted.is_empty() || wanted.iter().any(|w| name.contains(w.as_str())) {
            println!("== {name}");
            run();
        }
    }
}

/// The allocator of the `hyphae` binary, so the figures are the binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
