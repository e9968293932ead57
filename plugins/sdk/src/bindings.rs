//! Raw bindings generated from `wit/plugin.wit` (world `agent-plugin`, which holds every interface),
//! with the WASI interfaces it imports (`wasi:config`, `wasi:http`, `wasi:io`, `wasi:clocks`) under
//! `wasi::...`.
//!
//! The export glue of each interface is used piecemeal by the SDK's export macros; the world a
//! plugin exports is described by the custom section those macros emit (see `build.rs`).

wit_bindgen::generate!({
    path: "wit",
    world: "hyphae:plugin/agent-plugin",
    pub_export_macro: true,
    generate_all,
    runtime_path: "::hyphae_plugin_sdk::__private::wit_bindgen::rt",
});
