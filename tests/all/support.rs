//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use hyphae::plugins::{RuntimeConfig, TaskContext};

/// Root of the repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// Directory of the example components: `$HYPHAE_PLUGINS_DIST` if set, else `plugins/dist` after
/// running the Rust, Python and JavaScript build scripts once per test process.
pub fn plugins_dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        if let Some(dir) = std::env::var_os("HYPHAE_PLUGINS_DIST") {
            return PathBuf::from(dir);
        }
        let plugins = repo_root().join("plugins");
        for script in ["build.sh", "python/build.sh", "js/build.sh"] {
            let script = plugins.join(script);
            let out = Command::new("bash")
                .arg(&script)
                .args(["--out", "dist"])
                .current_dir(&plugins)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "{} failed:\n{}\n{}",
                script.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        plugins.join("dist")
    })
}

/// The Python interpreter that has the Python SDK: `$HYPHAE_PYTHON`, else the one
/// `plugins/python/build.sh` installs (made by building the example components first).
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("HYPHAE_PYTHON") {
        return PathBuf::from(python);
    }
    plugins_dist();
    repo_root().join("plugins/python/.venv/bin/python")
}

/// Bytes of the example component for `agent_type`.
pub fn component(agent_type: &str) -> Vec<u8> {
    let path = plugins_dist().join(format!("{agent_type}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A temporary plugins directory holding the given example components (as `NAME.wasm`).
pub fn plugins_dir(agent_types: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in agent_types {
        std::fs::write(dir.path().join(format!("{name}.wasm")), component(name)).expect("copy");
    }
    dir
}

/// A runtime configuration for tests: the given plugins dir, no disk cache, no watching.
pub fn config(dir: &Path) -> RuntimeConfig {
    RuntimeConfig {
        plugins_dir: Some(dir.to_path_buf()),
        cache_dir: None,
        watch: false,
        default_timeout: Duration::from_secs(20),
        ..RuntimeConfig::default()
    }
}

/// A task context for `agent_type` with `input`.
pub fn task(agent_type: &str, input: serde_json::Value) -> TaskContext {
    TaskContext {
        workflow_id: "wf-1".into(),
        task_id: "task-1".into(),
        agent_id: "agent-1".into(),
        agent_type: agent_type.into(),
        attempt: 1,
        input: input.to_string(),
        variables: "{}".into(),
        context: "{}".into(),
        metadata: "{}".into(),
        previous_results: Vec::new(),
        handoffs: Vec::new(),
    }
}

/// Waits (up to 10 s) until `cond` holds.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits (at most a minute) until the host on `port` answers `/readyz` with 200.
pub async fn wait_ready(port: u16) {
    let started = std::time::Instant::now();
    while reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await.map(|r| r.status().is_success()).ok()
        != Some(true)
    {
        assert!(started.elapsed() < Duration::from_secs(60), "host on port {port} did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `hyphae serve` process on a free port, with a SQLite database and the given plugins in a
/// fresh directory, and `toml` as its config file; killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Served {
    /// Starts the binary and waits until it is ready.
    pub async fn start(agent_types: &[&str], toml: &str) -> Served {
        Served::start_with(agent_types, toml, &[]).await
    }

    /// [`Served::start`] with more files (manifests) in the plugins directory: (name, text).
    pub async fn start_with(agent_types: &[&str], toml: &str, files: &[(&str, &str)]) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).expect("plugins dir");
        for name in agent_types {
            std::fs::write(plugins.join(format!("{name}.wasm")), component(name)).expect("copy");
        }
        for (name, text) in files {
            std::fs::write(plugins.join(name), text).expect("plugin file");
        }
        std::fs::write(dir.path().join("hyphae.toml"), toml).expect("config");
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_hyphae"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--db")
            .arg(dir.path().join("hyphae.db"))
            .arg("--plugins-dir")
            .arg(&plugins)
            .arg("--config")
            .arg(dir.path().join("hyphae.toml"))
            .arg("--cache-dir")
            .arg(repo_root().join("target").join("test-plugin-cache"))
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).expect("log"))
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("log"))
            .spawn()
            .expect("hyphae serve starts");
        wait_ready(port).await;
        Served { child, port, dir }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to 10 s) until what `cond` returns resolves to `true`.
pub async fn eventually_async<F: std::future::Future<Output = bool>>(what: &str, mut cond: impl FnMut() -> F) {
    let start = std::time::Instant::now();
    while !cond().await {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
