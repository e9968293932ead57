//! Encodes each plugin world of `wit/` as component-type metadata. The export macros put the bytes
//! of the chosen world into the plugin's core module (custom section `component-type:...`), so the
//! module describes exactly the world it implements and any componentizer can wrap it.

use std::{env, fs, path::PathBuf};
use wit_component::StringEncoding;
use wit_parser::Resolve;

fn main() {
    let wit = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("wit");
    println!("cargo:rerun-if-changed={}", wit.display());
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve.push_dir(&wit).expect("parse wit/");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    for world in ["executor-plugin", "validator-plugin", "agent-plugin"] {
        let id = resolve.select_world(&[pkg], Some(world)).expect(world);
        let bytes = wit_component::metadata::encode(&resolve, id, StringEncoding::UTF8, None).expect("encode world");
        fs::write(out.join(format!("{world}.bin")), bytes).unwrap();
    }
}
