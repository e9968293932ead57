//! Raw bindings generated from `wit/plugin.wit` (world `agent-plugin`, which holds every interface).
//!
//! The export glue of each interface is used piecemeal by the SDK's export macros; the world a
//! plugin exports is described by the custom section those macros emit (see `build.rs`).

wit_bindgen::generate!({
    path: "../../wit",
    world: "hyphae:plugin/agent-plugin",
    pub_export_macro: true,
    runtime_path: "::hyphae_plugin_sdk::__private::wit_bindgen::rt",
});
