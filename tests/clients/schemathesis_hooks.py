"""Hooks of the schemathesis run in tests/all/contract.rs (loaded with SCHEMATHESIS_HOOKS).

Schemathesis has no serializer for the two non-JSON request bodies of the API; without one it
reports "Serialization not possible" for their operations instead of testing them. The bodies it
generates are garbage either way (random bytes are no component, random text rarely a manifest):
what is checked is that the host answers them with a documented 4xx, not a 500.
"""

import schemathesis

# PUT /v1/plugins/{agent_type}: raw bytes of a WebAssembly component.
schemathesis.serializer.alias("application/wasm", "application/octet-stream")
# PUT /v1/plugins/{agent_type}/manifest: the manifest's TOML text.
schemathesis.serializer.alias("application/toml", "text/plain")
