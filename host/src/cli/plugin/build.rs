//! `hyphae plugin build [DIR]`: builds a plugin project in Rust, Python or JavaScript into a
//! component and checks it the way the host loads it.
//!
//! Rust: `cargo build` for `wasm32-unknown-unknown` (a rustup toolchain with that target, else
//! Debian's `rustc-web` building std from source, as `plugins/build.sh` does), then the module is
//! wrapped into a component here (wit-component). Python: the SDK's `python -m hyphae_plugin build`
//! (componentize-py). JavaScript: the SDK's `hyphae-plugin-js build` (componentize-js).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Lang;
use crate::cli::exit::{Failure, DATA, NO_INPUT, UNAVAILABLE};

/// The build itself failed (compile errors, a failing tool).
pub const BUILD_FAILED: u8 = 1;

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const DEBIAN_PACKAGES: &str = "rustc-web cargo-web rust-web-src lld-19";

/// Builds the project in `dir` into `out` (default `DIR/dist/NAME.wasm`); returns the component's path.
pub fn build(dir: &Path, lang: Option<Lang>, out: Option<PathBuf>) -> Result<PathBuf, Failure> {
    let lang = match lang {
        Some(lang) => lang,
        None => detect(dir)?,
    };
    let name = project_name(dir, lang)?;
    let out = out.unwrap_or_else(|| dir.join("dist").join(format!("{name}.wasm")));
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Failure::software(format!("cannot create `{}`: {e}", parent.display())))?;
    }
    eprintln!("==> building {lang} plugin `{name}` in {} into {}", dir.display(), out.display());
    match lang {
        Lang::Rust => build_rust(dir, &out)?,
        Lang::Python => build_python(dir, &out)?,
        Lang::Js => build_js(dir, &out)?,
    }
    Ok(out)
}

/// The language of the project in `dir`, from the file that describes it.
pub fn detect(dir: &Path) -> Result<Lang, Failure> {
    let has = |f: &str| dir.join(f).is_file();
    if has("Cargo.toml") {
        Ok(Lang::Rust)
    } else if has("pyproject.toml") {
        Ok(Lang::Python)
    } else if has("package.json") {
        Ok(Lang::Js)
    } else {
        Err(Failure::new(
            NO_INPUT,
            format!(
                "`{}` holds no Cargo.toml, pyproject.toml or package.json: give the directory of a \
                 plugin project (`hyphae plugin new NAME --lang rust|python|js` makes one)",
                dir.display()
            ),
        ))
    }
}

/// The project's name: `[package].name`, `[project].name` or package.json's `name` (unscoped).
fn project_name(dir: &Path, lang: Lang) -> Result<String, Failure> {
    let (file, keys): (&str, [&str; 2]) = match lang {
        Lang::Rust => ("Cargo.toml", ["package", "name"]),
        Lang::Python => ("pyproject.toml", ["project", "name"]),
        Lang::Js => ("package.json", ["name", ""]),
    };
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::new(NO_INPUT, format!("cannot read `{}`: {e}", path.display())))?;
    let name = match lang {
        Lang::Js => serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string)),
        _ => text.parse::<toml::Table>().ok().and_then(|t| t.get(keys[0])?.get(keys[1])?.as_str().map(str::to_string)),
    };
    let name = name.ok_or_else(|| Failure::data(format!("`{}` gives no project name", path.display())))?;
    Ok(name.rsplit('/').next().unwrap_or(&name).to_string())
}

fn build_rust(dir: &Path, out: &Path) -> Result<(), Failure> {
    let mut cargo = wasm_cargo()?;
    cargo
        .args(["build", "--release", "--target", WASM_TARGET, "--message-format=json-render-diagnostics"])
        .current_dir(dir)
        .stdout(Stdio::piped());
    let mut child = cargo.spawn().map_err(|e| Failure::new(UNAVAILABLE, format!("cannot run cargo: {e}")))?;
    let mut modules = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            modules.extend(cdylib_wasm(&line));
        }
    }
    let status = child.wait().map_err(|e| Failure::software(format!("cargo did not finish: {e}")))?;
    if !status.success() {
        return Err(Failure::new(BUILD_FAILED, "cargo build failed (its messages are above)"));
    }
    let module = modules.pop().ok_or_else(|| {
        Failure::data("cargo built no `cdylib` .wasm: declare `[lib] crate-type = [\"cdylib\"]` in Cargo.toml")
    })?;
    componentize(&module, out)
}

/// The cargo command building for wasm32: rustup's when it has the target, else Debian's.
fn wasm_cargo() -> Result<Command, Failure> {
    let rustup_has_target = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == WASM_TARGET));
    if rustup_has_target {
        return Ok(Command::new("cargo"));
    }
    let debian = Path::new("/usr/bin/cargo").is_file()
        && Path::new("/usr/lib/rustlib/src/rust/library").is_dir()
        && which("wasm-ld-19");
    if !debian {
        return Err(Failure::new(
            UNAVAILABLE,
            format!(
                "no Rust toolchain for {WASM_TARGET}: run `rustup target add {WASM_TARGET}`, or install \
                 Debian's packages: apt-get install -y --no-install-recommends {DEBIAN_PACKAGES}"
            ),
        ));
    }
    let mut cargo = Command::new("/usr/bin/cargo");
    cargo
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", "wasm-ld-19")
        .arg("-Zbuild-std=std,panic_abort");
    Ok(cargo)
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The `.wasm` files of a cdylib in one line of cargo's JSON messages.
fn cdylib_wasm(line: &str) -> Vec<PathBuf> {
    let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
        return Vec::new();
    };
    let is_cdylib = msg["reason"] == "compiler-artifact"
        && msg["target"]["crate_types"].as_array().is_some_and(|t| t.iter().any(|k| k == "cdylib"));
    if !is_cdylib {
        return Vec::new();
    }
    let files = msg["filenames"].as_array().cloned().unwrap_or_default();
    files.iter().filter_map(|f| f.as_str()).filter(|f| f.ends_with(".wasm")).map(PathBuf::from).collect()
}

/// Wraps a core module (with the SDK's component-type metadata) into a component.
fn componentize(module: &Path, out: &Path) -> Result<(), Failure> {
    let bytes = std::fs::read(module)
        .map_err(|e| Failure::new(NO_INPUT, format!("cannot read `{}`: {e}", module.display())))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| {
            Failure::new(
                DATA,
                format!(
                    "`{}` cannot be made a component: {e:#} (is the plugin exported with the SDK's \
                     export_executor!, export_validator! or export_agent!?)",
                    module.display()
                ),
            )
        })?;
    std::fs::write(out, component).map_err(|e| Failure::software(format!("cannot write `{}`: {e}", out.display())))
}

fn build_python(dir: &Path, out: &Path) -> Result<(), Failure> {
    let python = std::env::var_os("HYPHAE_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        let venv = dir.join(".venv/bin/python");
        if venv.is_file() {
            venv
        } else {
            PathBuf::from("python3")
        }
    });
    let probe = Command::new(&python).args(["-c", "import hyphae_plugin"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return Err(Failure::new(
            UNAVAILABLE,
            format!(
                "`{}` cannot import the Python SDK: install it with `{} -m pip install {}` (or set \
                 HYPHAE_PYTHON to an interpreter that has it)",
                python.display(),
                python.display(),
                super::new::sdk_path(Lang::Python).display()
            ),
        ));
    }
    let mut command = Command::new(&python);
    command.args(["-m", "hyphae_plugin", "build"]).arg(dir).arg("--out").arg(out);
    run_tool(command, "the Python SDK's build")
}

fn build_js(dir: &Path, out: &Path) -> Result<(), Failure> {
    if !dir.join("node_modules/@hyphae/plugin").exists() {
        return Err(Failure::new(
            UNAVAILABLE,
            format!("the JavaScript SDK is not installed in `{}`: run `npm install` there first", dir.display()),
        ));
    }
    let out = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let mut command = Command::new("npx");
    command.args(["--no-install", "hyphae-plugin-js", "build", "."]).arg("--out").arg(out).current_dir(dir);
    run_tool(command, "the JavaScript SDK's build")
}

fn run_tool(mut command: Command, what: &str) -> Result<(), Failure> {
    let status = command.status().map_err(|e| Failure::new(UNAVAILABLE, format!("cannot run {what}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::new(BUILD_FAILED, format!("{what} failed (its messages are above)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_and_name_come_from_the_project_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(detect(dir.path()).unwrap_err().message.contains("plugin new"));
        std::fs::write(dir.path().join("package.json"), r#"{"name": "@me/js-agent"}"#).unwrap();
        assert_eq!(detect(dir.path()).unwrap(), Lang::Js);
        assert_eq!(project_name(dir.path(), Lang::Js).unwrap(), "js-agent");
        std::fs::write(dir.path().join("pyproject.toml"), "[project]\nname = \"py-agent\"\n").unwrap();
        assert_eq!(detect(dir.path()).unwrap(), Lang::Python);
        assert_eq!(project_name(dir.path(), Lang::Python).unwrap(), "py-agent");
    }

    #[test]
    fn only_cdylib_artifacts_are_modules() {
        let cdylib =
            r#"{"reason":"compiler-artifact","target":{"crate_types":["cdylib"]},"filenames":["/t/a.wasm","/t/a.d"]}"#;
        let lib = r#"{"reason":"compiler-artifact","target":{"crate_types":["lib"]},"filenames":["/t/libb.rlib"]}"#;
        assert_eq!(cdylib_wasm(cdylib), vec![PathBuf::from("/t/a.wasm")]);
        assert!(cdylib_wasm(lib).is_empty() && cdylib_wasm("not json").is_empty());
    }
}
