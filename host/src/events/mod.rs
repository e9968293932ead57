//! events (being built).
