//! `hyphae plugin new NAME --lang rust|python|js`: a standalone plugin project, from the template
//! each SDK carries (`plugins/sdk/template`, `plugins/python/template`, `plugins/js/template`),
//! embedded in the binary so that it works from any directory.

use std::path::{Path, PathBuf};

use super::Lang;

/// One file of a template: its path in the project and its text, with `{{name}}` and `{{sdk_path}}`
/// to substitute.
type TemplateFile = (&'static str, &'static str);

const RUST: &[TemplateFile] = &[
    ("Cargo.toml", include_str!("../../../../plugins/sdk/template/Cargo.toml")),
    ("src/lib.rs", include_str!("../../../../plugins/sdk/template/src/lib.rs")),
    ("README.md", include_str!("../../../../plugins/sdk/template/README.md")),
];

const PYTHON: &[TemplateFile] = &[
    ("pyproject.toml", include_str!("../../../../plugins/python/template/pyproject.toml")),
    ("app.py", include_str!("../../../../plugins/python/template/app.py")),
    ("test_app.py", include_str!("../../../../plugins/python/template/test_app.py")),
    ("README.md", include_str!("../../../../plugins/python/template/README.md")),
];

const JS: &[TemplateFile] = &[
    ("package.json", include_str!("../../../../plugins/js/template/package.json")),
    ("src/agent.js", include_str!("../../../../plugins/js/template/src/agent.js")),
    ("test/agent.test.js", include_str!("../../../../plugins/js/template/test/agent.test.js")),
    ("README.md", include_str!("../../../../plugins/js/template/README.md")),
    (".gitignore", include_str!("../../../../plugins/js/template/.gitignore")),
];

/// Where this binary's repository keeps the SDK of `lang`: the path the new project depends on
/// until the SDKs are published.
pub fn sdk_path(lang: Lang) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    repo.join(match lang {
        Lang::Rust => "plugins/sdk",
        Lang::Python => "plugins/python",
        Lang::Js => "plugins/js",
    })
}

/// Creates the project of agent type `name` in `dir` (which must not exist or be empty) and
/// returns what to tell the user.
pub fn create(name: &str, lang: Lang, dir: &Path, sdk: &Path) -> Result<Vec<String>, String> {
    if !crate::plugins::valid_agent_type(name) {
        return Err(format!("`{name}` is not a valid agent type: use letters, digits, `-` and `_`"));
    }
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(format!("`{}` exists and is not empty: pick another --dir or remove it", dir.display()));
    }
    let files = match lang {
        Lang::Rust => RUST,
        Lang::Python => PYTHON,
        Lang::Js => JS,
    };
    let sdk_text = sdk.display().to_string();
    for (path, text) in files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
        }
        let text = text.replace("{{name}}", name).replace("{{sdk_path}}", &sdk_text);
        std::fs::write(&target, text).map_err(|e| format!("cannot write `{}`: {e}", target.display()))?;
    }
    Ok(next_steps(name, lang, dir, sdk))
}

fn next_steps(name: &str, lang: Lang, dir: &Path, sdk: &Path) -> Vec<String> {
    let d = dir.display();
    let mut lines = vec![format!("created {lang} plugin `{name}` in {d}")];
    match lang {
        Lang::Rust => lines.push(format!("test it:  (cd {d} && cargo test)")),
        Lang::Python => {
            lines.push(format!("install the SDK once:  pip install {}", sdk.display()));
            lines.push(format!("test it:  (cd {d} && python -m unittest)"));
        }
        Lang::Js => lines.push(format!("install and test:  (cd {d} && npm install && npm test)")),
    }
    lines.push(format!("build it: hyphae plugin build {d}   # -> {d}/dist/{name}.wasm"));
    lines.push(format!("run it:   hyphae plugin call {d}/dist/{name}.wasm --input '{{\"message\": \"hello\"}}'"));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_names_the_agent_type_and_refuses_to_overwrite() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            let dir = tempfile::tempdir().unwrap();
            let project = dir.path().join("p");
            create("my-agent", lang, &project, Path::new("/sdk")).unwrap();
            let text: String = walk(&project).iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
            assert!(text.contains("my-agent"), "{lang}");
            assert!(!text.contains("{{"), "{lang}: a placeholder is left: {text}");
            assert!(create("my-agent", lang, &project, Path::new("/sdk")).unwrap_err().contains("not empty"));
        }
        assert!(create("../x", Lang::Rust, Path::new("/nonexistent/x"), Path::new("/sdk")).is_err());
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }
}
