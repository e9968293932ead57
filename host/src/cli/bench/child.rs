//! The host `hyphae bench` starts: `hyphae serve` (this very binary) as a child process on a free
//! port of 127.0.0.1, with a temporary directory for its output and (by default) its SQLite file.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::BenchArgs;
use crate::cli::exit::Failure;
use crate::config::Config;

/// A `hyphae serve` child process and the temporary directory of its log (and SQLite file).
pub(super) struct OwnHost {
    child: Mutex<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its plugins directory.
    pub plugins: PathBuf,
    dir: TempDir,
}

impl OwnHost {
    /// Start `hyphae serve` on a free port of 127.0.0.1 with the database and plugins asked for.
    pub(super) fn spawn(args: &BenchArgs) -> Result<OwnHost, Failure> {
        let plugins = args
            .plugins
            .clone()
            .or_else(|| std::env::var_os("HYPHAE_PLUGINS_DIR").map(PathBuf::from))
            .unwrap_or_else(|| Config::default().plugins_dir);
        if !plugins.is_dir() {
            return Err(Failure::config(format!(
                "the plugins directory `{}` does not exist: build the example plugins with `plugins/build.sh` \
                 (from the repository root, into plugins/dist), or give one holding fib.wasm and echo.wasm \
                 with --plugins DIR",
                plugins.display()
            )));
        }
        let dir = TempDir::new()?;
        let db = args.database.clone().unwrap_or_else(|| dir.path.join("bench.db").to_string_lossy().into_owned());
        let port = free_port()?;
        let exe = std::env::current_exe()
            .map_err(|e| Failure::software(format!("cannot find this program to start `hyphae serve`: {e}")))?;
        let log = |name: &str| {
            std::fs::File::create(dir.path.join(name))
                .map_err(|e| Failure::software(format!("cannot create a log file in {}: {e}", dir.path.display())))
        };
        let child = Command::new(exe)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db", &db])
            .arg("--plugins-dir")
            .arg(&plugins)
            .stdin(Stdio::null())
            .stdout(log("stdout.log")?)
            .stderr(log("stderr.log")?)
            .spawn()
            .map_err(|e| Failure::software(format!("cannot start `hyphae serve`: {e}")))?;
        Ok(OwnHost { child: Mutex::new(child), url: format!("http://127.0.0.1:{port}"), plugins, dir })
    }

    /// A failure if the host has exited (with the end of its log).
    pub(super) fn check_running(&self) -> Result<(), Failure> {
        match self.with_child(|c| c.try_wait()) {
            Some(Ok(Some(status))) => Err(Failure::unavailable(format!(
                "the host started by the bench (`hyphae serve`) exited ({status}){}",
                self.log_tail()
            ))),
            _ => Ok(()),
        }
    }

    /// The last lines of the host's output, to show with a failure.
    pub(super) fn log_tail(&self) -> String {
        let mut text = String::new();
        for name in ["stdout.log", "stderr.log"] {
            text.push_str(&std::fs::read_to_string(self.dir.path.join(name)).unwrap_or_default());
        }
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n  ");
        if tail.is_empty() {
            String::new()
        } else {
            format!("; its output ended with:\n  {tail}")
        }
    }

    /// Ask the host to stop (SIGTERM), give it 10 s, then kill it.
    pub(super) async fn stop(self) {
        self.with_child(|c| terminate(c));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.with_child(|c| !matches!(c.try_wait(), Ok(None))) != Some(false) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // Drop kills it.
    }

    /// `f` of the child process (none if a panic poisoned its lock).
    fn with_child<R>(&self, f: impl FnOnce(&mut Child) -> R) -> Option<R> {
        self.child.lock().ok().map(|mut c| f(&mut c))
    }
}

impl Drop for OwnHost {
    fn drop(&mut self) {
        // After `stop` this finds the process gone; on any other way out it kills it.
        if let Ok(child) = self.child.get_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Send SIGTERM (a graceful stop); elsewhere, kill.
fn terminate(child: &Child) {
    #[cfg(unix)]
    {
        // SAFETY: signalling our own child, which has not been reaped (so its pid is still its own).
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    }
    #[cfg(not(unix))]
    let _ = child;
}

/// A port of 127.0.0.1 free now.
fn free_port() -> Result<u16, Failure> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Failure::unavailable(format!("cannot find a free port on 127.0.0.1: {e}")))
}

/// A directory under the system's temporary directory, removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<TempDir, Failure> {
        let path = std::env::temp_dir().join(format!("hyphae-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path)
            .map_err(|e| Failure::software(format!("cannot create a temporary directory {}: {e}", path.display())))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
