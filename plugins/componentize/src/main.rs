//! componentize: wraps a plugin's core wasm module into a component, and checks components.
//!
//! Usage:
//!   componentize MODULE.wasm COMPONENT.wasm   encode, validate, check, print a summary
//!   componentize --check COMPONENT.wasm...    check and print a summary of built components
//!   componentize --wit COMPONENT.wasm         print the component's world as WIT
//!
//! Check: the component exports `hyphae:plugin/metadata` plus `executor` and/or `validator`, and
//! imports only what the host links: the host's own policy, `host/src/plugins/imports.rs`
//! (included by path, so the build accepts exactly the components the host loads).

use anyhow::{bail, Context, Result};
use std::{fs, path::Path};
use wit_component::{ComponentEncoder, DecodedWasm, WitPrinter};
use wit_parser::{Resolve, WorldId};

#[path = "../../../host/src/plugins/imports.rs"]
mod imports;

const PLUGIN_EXPORTS: &[&str] = &["metadata", "executor", "validator"];

fn main() {
    if let Err(e) = run(std::env::args().skip(1).collect()) {
        eprintln!("componentize: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Vec<String>) -> Result<()> {
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["--check", files @ ..] if !files.is_empty() => files.iter().try_for_each(|f| check(f)),
        ["--wit", file] => {
            let (resolve, world) = decode(&fs::read(file)?)?;
            let mut printer = WitPrinter::default();
            let pkg = resolve.worlds[world].package.context("world has no package")?;
            printer.print(&resolve, pkg, &[])?;
            print!("{}", printer.output);
            Ok(())
        }
        [module, component] => {
            let bytes = fs::read(module).with_context(|| format!("reading {module}"))?;
            let encoded = ComponentEncoder::default()
                .module(&bytes)
                .with_context(|| format!("{module}: no usable component metadata"))?
                .validate(true)
                .encode()
                .with_context(|| format!("componentizing {module}"))?;
            let tmp = format!("{component}.tmp");
            fs::write(&tmp, &encoded)?;
            check(&tmp).and_then(|_| Ok(fs::rename(&tmp, component)?)).inspect_err(|_| {
                let _ = fs::remove_file(&tmp);
            })
        }
        _ => bail!("usage: componentize MODULE COMPONENT | --check COMPONENT... | --wit COMPONENT"),
    }
}

fn decode(bytes: &[u8]) -> Result<(Resolve, WorldId)> {
    match wit_component::decode(bytes)? {
        DecodedWasm::Component(resolve, world) => Ok((resolve, world)),
        DecodedWasm::WitPackage(..) => bail!("a WIT package, not a component"),
    }
}

/// Prints `name  size  imports: ..  exports: ..`, failing on an unexpected import or export.
fn check(file: &str) -> Result<()> {
    let bytes = fs::read(file).with_context(|| format!("reading {file}"))?;
    let (resolve, world) = decode(&bytes).with_context(|| format!("decoding {file}"))?;
    let w = &resolve.worlds[world];
    let names = |items: &mut dyn Iterator<Item = &wit_parser::WorldKey>| {
        items.map(|k| resolve.name_world_key(k)).collect::<Vec<_>>()
    };
    let imported = names(&mut w.imports.keys());
    let exports = names(&mut w.exports.keys());
    let name = Path::new(file.trim_end_matches(".tmp")).file_name().unwrap().to_string_lossy();
    println!(
        "  {name:<28} {:>8.1} KiB  imports: {}  exports: {}",
        bytes.len() as f64 / 1024.0,
        imported.join(", "),
        exports.join(", ")
    );
    if let Some(bad) = imported.iter().find(|i| !imports::allowed_import(i)) {
        bail!("{name}: unexpected import {bad} (allowed: {})", imports::allowed_imports_text());
    }
    let export = |e: &str| format!("hyphae:plugin/{e}@");
    if let Some(bad) = exports.iter().find(|e| !PLUGIN_EXPORTS.iter().any(|p| e.starts_with(&export(p)))) {
        bail!("{name}: unexpected export {bad}");
    }
    let has = |p: &str| exports.iter().any(|e| e.starts_with(&export(p)));
    if !has("metadata") || !(has("executor") || has("validator")) {
        bail!("{name}: must export metadata and executor and/or validator");
    }
    Ok(())
}
