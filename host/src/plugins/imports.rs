//! The one import policy: which interfaces a plugin component may import.
//!
//! The loader, `hyphae plugin check` and `plugins/build.sh` (through `plugins/componentize`, which
//! includes this file by path) all decide with [`allowed_import`], so a component the build accepts
//! is one the host loads. Every interface listed is linked by the host; WASI interfaces grant
//! nothing unless the agent type's manifest says so (no files, no environment, no sockets; HTTP only
//! to `allowed_outbound_hosts`). This file has no dependencies, so it can be included anywhere.

/// Interfaces a plugin may import: (`package:namespace/interface` or a `package:namespace/` prefix,
/// accepted versions). A version ending in `.` accepts every version with that prefix (semver-
/// compatible releases of a 0.x package); any other version must match exactly.
pub const ALLOWED_IMPORTS: &[(&str, &str)] = &[
    ("hyphae:plugin/host", "0.1."),
    ("hyphae:plugin/types", "0.1."),
    ("wasi:config/store", "0.2.0-rc.1"),
    ("wasi:http/outgoing-handler", "0.2."),
    ("wasi:http/types", "0.2."),
    ("wasi:io/", "0.2."),
    ("wasi:clocks/", "0.2."),
    ("wasi:random/", "0.2."),
    ("wasi:cli/", "0.2."),
    ("wasi:filesystem/", "0.2."),
    ("wasi:sockets/", "0.2."),
];

/// Whether a component may import the interface `name` (such as `wasi:http/types@0.2.12`).
pub fn allowed_import(name: &str) -> bool {
    let Some((interface, version)) = name.split_once('@') else {
        return false;
    };
    ALLOWED_IMPORTS.iter().any(|(allowed, versions)| {
        let interface_ok = if allowed.ends_with('/') {
            interface.starts_with(allowed) && interface.len() > allowed.len()
        } else {
            interface == *allowed
        };
        let version_ok = if versions.ends_with('.') { version.starts_with(versions) } else { version == *versions };
        interface_ok && version_ok
    })
}

/// The policy in words, for error messages: `hyphae:plugin/host@0.1.*, wasi:io/*@0.2.*, ...`.
pub fn allowed_imports_text() -> String {
    let one = |(interface, versions): &(&str, &str)| {
        let interface = if interface.ends_with('/') { format!("{interface}*") } else { interface.to_string() };
        let versions = if versions.ends_with('.') { format!("{versions}*") } else { versions.to_string() };
        format!("{interface}@{versions}")
    };
    ALLOWED_IMPORTS.iter().map(one).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_matched_by_interface_and_version() {
        assert!(allowed_import("hyphae:plugin/host@0.1.0"));
        assert!(allowed_import("hyphae:plugin/host@0.1.7"));
        assert!(!allowed_import("hyphae:plugin/host@0.2.0"));
        assert!(allowed_import("wasi:http/outgoing-handler@0.2.0"));
        assert!(allowed_import("wasi:http/types@0.2.12"));
        assert!(!allowed_import("wasi:http/incoming-handler@0.2.12"));
        assert!(allowed_import("wasi:io/streams@0.2.3"));
        assert!(!allowed_import("wasi:io/streams@0.3.0"));
        assert!(allowed_import("wasi:config/store@0.2.0-rc.1"));
        assert!(!allowed_import("wasi:config/store@0.2.0-draft"));
        assert!(!allowed_import("wasi:io/"));
        assert!(!allowed_import("wasi:keyvalue/store@0.2.0"));
        assert!(!allowed_import("hyphae:plugin/host"));
        assert!(allowed_imports_text().contains("wasi:io/*@0.2.*"));
    }
}
