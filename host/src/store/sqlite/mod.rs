//! SQLite on rusqlite, each operation run whole on a connection's own thread ([`Connections`]).
//!
//! Operations move here from the `Any` store one at a time (issue 15, item 2): today the reads of
//! a task's dependencies, on the hot path of every step.

mod read;
mod threads;

use std::path::Path;

use threads::Connections;

use super::Result;

/// The SQLite database of a store.
#[derive(Clone)]
pub(crate) struct Sqlite {
    /// Read connections (WAL: they read while the writer writes).
    read: Connections,
}

impl Sqlite {
    /// Open `readers` read connections to the database file at `path`, set up by `pragmas`.
    pub(crate) fn open(path: &Path, readers: usize, pragmas: &str) -> Result<Sqlite> {
        Ok(Sqlite { read: Connections::open(path, readers, pragmas, "hyphae-sqlite-read")? })
    }
}
