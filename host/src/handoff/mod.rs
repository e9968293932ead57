//! handoff (being built).
