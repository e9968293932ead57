//! The store's reads written once for both databases: SQL with `$n` parameters bound from
//! [`Arg`]s, and rows turned into records through [`Columns`], by column name, whichever driver
//! read them.

use sqlx::Row;

use super::Result;

/// A value bound to a read's parameter.
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Text(String),
}

impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Arg::Int(n)
    }
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_string())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}

/// Typed access to a row's columns by name.
pub trait Columns {
    fn int(&self, name: &str) -> Result<i64>;
    fn opt_int(&self, name: &str) -> Result<Option<i64>>;
    fn text(&self, name: &str) -> Result<String>;
    fn opt_text(&self, name: &str) -> Result<Option<String>>;
    fn opt_bytes(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// A yes/no column (an integer on SQLite, a boolean on PostgreSQL).
    fn flag(&self, name: &str) -> Result<bool>;
}

/// A text column holding JSON, parsed.
pub fn json<T: serde::de::DeserializeOwned>(r: &dyn Columns, name: &str) -> Result<T> {
    Ok(serde_json::from_str(&r.text(name)?)?)
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Int(n) => n.to_sql(),
            Arg::Text(s) => s.to_sql(),
        }
    }
}

impl Columns for rusqlite::Row<'_> {
    fn int(&self, name: &str) -> Result<i64> {
        Ok(self.get(name)?)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.get(name)?)
    }
    fn text(&self, name: &str) -> Result<String> {
        Ok(self.get(name)?)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>> {
        Ok(self.get(name)?)
    }
    fn opt_bytes(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get(name)?)
    }
    fn flag(&self, name: &str) -> Result<bool> {
        Ok(self.get::<_, i64>(name)? != 0)
    }
}

impl Columns for sqlx::postgres::PgRow {
    fn int(&self, name: &str) -> Result<i64> {
        Ok(self.try_get(name)?)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.try_get(name)?)
    }
    fn text(&self, name: &str) -> Result<String> {
        Ok(self.try_get(name)?)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>> {
        Ok(self.try_get(name)?)
    }
    fn opt_bytes(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.try_get(name)?)
    }
    fn flag(&self, name: &str) -> Result<bool> {
        Ok(self.try_get(name)?)
    }
}
