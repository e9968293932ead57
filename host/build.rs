//! Rebuild when a migration changes: `sqlx::migrate!` embeds them, and stable Rust cannot tell
//! cargo which files a macro read. Also names the compiler and target for `hyphae_build_info`.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=HYPHAE_RUSTC_VERSION={version}");
    println!("cargo:rustc-env=HYPHAE_TARGET={}", std::env::var("TARGET").unwrap_or_default());
}
