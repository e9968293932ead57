//! workflow (being built).
