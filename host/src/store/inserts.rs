//! Multi-row INSERTs into several tables in as few round trips as the database allows.

use sqlx::any::AnyArguments;
use sqlx::error::BoxDynError;
use sqlx::{AnyConnection, Arguments, AssertSqlSafe};

use super::{Dialect, Result};

/// Bind parameters per round trip, under every database's limit (SQLite 32,766 per statement,
/// PostgreSQL 65,535).
const MAX_PARAMS: usize = 30_000;

/// The INSERTs that end a transaction (attempts, versions, event blocks, the agent index), sent
/// together:
/// on SQLite one text holding several statements (the driver binds each from the shared
/// arguments in turn), on PostgreSQL one statement whose data-modifying CTEs run all but the last
/// INSERT. Each round trip saved is a hand-off to the database and back on the writer's path.
pub struct Inserts {
    dialect: Dialect,
    /// Each group is one round trip: its INSERTs, their arguments, how many there are.
    groups: Vec<(Vec<String>, AnyArguments, usize)>,
}

impl Inserts {
    pub fn new(dialect: Dialect) -> Inserts {
        Inserts { dialect, groups: Vec::new() }
    }

    /// Add `INSERT INTO {target} VALUES ...` for `rows`, `cols` values each; `bind` adds a row's
    /// values in column order.
    pub fn rows<R>(
        &mut self,
        target: &str,
        cols: usize,
        rows: Vec<R>,
        bind: impl FnMut(&mut AnyArguments, R) -> std::result::Result<(), BoxDynError>,
    ) -> Result<()> {
        self.rows_then(target, cols, rows, "", bind)
    }

    /// [`Inserts::rows`] with `then` after the VALUES list (an `ON CONFLICT` clause).
    pub fn rows_then<R>(
        &mut self,
        target: &str,
        cols: usize,
        rows: Vec<R>,
        then: &str,
        mut bind: impl FnMut(&mut AnyArguments, R) -> std::result::Result<(), BoxDynError>,
    ) -> Result<()> {
        let mut rows = rows.into_iter();
        let mut left = rows.len();
        while left > 0 {
            if self.groups.last().is_none_or(|g| g.2 + cols > MAX_PARAMS) {
                self.groups.push((Vec::new(), AnyArguments::default(), 0));
            }
            let Some((parts, args, used)) = self.groups.last_mut() else { unreachable!("a group was just pushed") };
            let n = ((MAX_PARAMS - *used) / cols).min(left);
            // On SQLite the rows are padded to a bucket with null rows that the SELECT drops,
            // so the statement's text recurs and stays prepared.
            let padded = bucket(self.dialect, n).min((MAX_PARAMS - *used) / cols);
            let values = placeholders_from(self.dialect, *used, padded, cols);
            parts.push(match self.dialect {
                Dialect::Sqlite => {
                    format!("INSERT INTO {target} SELECT * FROM (VALUES {values}) WHERE column1 IS NOT NULL{then}")
                }
                Dialect::Postgres => format!("INSERT INTO {target} VALUES {values}{then}"),
            });
            for row in rows.by_ref().take(n) {
                bind(args, row).map_err(sqlx::Error::Encode)?;
            }
            for _ in 0..(padded - n) * cols {
                args.add(None::<i64>).map_err(sqlx::Error::Encode)?;
            }
            *used += padded * cols;
            left -= n;
        }
        Ok(())
    }

    /// Run the INSERTs.
    pub async fn execute(self, conn: &mut AnyConnection) -> Result<()> {
        for (parts, args, _) in self.groups {
            let sql = match (self.dialect, parts.split_last()) {
                (_, None) => continue,
                (Dialect::Sqlite, _) => parts.join(";\n"),
                (Dialect::Postgres, Some((last, []))) => last.clone(),
                (Dialect::Postgres, Some((last, before))) => {
                    let ctes: Vec<String> = before.iter().enumerate().map(|(i, p)| format!("i{i} AS ({p})")).collect();
                    format!("WITH {} {last}", ctes.join(", "))
                }
            };
            sqlx::query_with(AssertSqlSafe(sql), args).execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// Add one value to a row's arguments.
pub fn add<'t, T>(args: &mut AnyArguments, value: T) -> std::result::Result<(), BoxDynError>
where
    T: sqlx::Encode<'t, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    args.add(value)
}

/// How many rows a statement of `n` rows is written for: on SQLite the next power of two, so
/// that batches of varying size share a few statement texts, which the driver keeps prepared
/// (parsing a new text costs more than the rows it carries); `n` on PostgreSQL.
pub fn bucket(dialect: Dialect, n: usize) -> usize {
    match dialect {
        Dialect::Sqlite => n.next_power_of_two(),
        Dialect::Postgres => n,
    }
}

/// The VALUES list of a multi-row INSERT whose only parameters are these: `($1, $2), ($3, $4)` on
/// PostgreSQL, `(?, ?), (?, ?)` on SQLite (where numbered names cost a linear lookup each, which
/// makes large statements quadratic).
pub fn placeholders(dialect: Dialect, rows: usize, cols: usize) -> String {
    placeholders_from(dialect, 0, rows, cols)
}

/// [`placeholders`] for parameters that follow `before` others of the same statement.
pub fn placeholders_from(dialect: Dialect, before: usize, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            match dialect {
                Dialect::Postgres => {
                    s.push('$');
                    s.push_str(&(before + r * cols + c + 1).to_string());
                }
                Dialect::Sqlite => s.push('?'),
            }
        }
        s.push(')');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{add, placeholders, placeholders_from, Dialect, Inserts, MAX_PARAMS};
    use sqlx::Connection;

    #[tokio::test]
    async fn rows_of_several_tables_go_in_groups_under_the_parameter_limit() {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::raw_sql("CREATE TABLE a (x INTEGER, y TEXT); CREATE TABLE b (z INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
        let mut inserts = Inserts::new(Dialect::Sqlite);
        let many = MAX_PARAMS / 2 + 10; // two columns each: more than one round trip
        inserts
            .rows("a (x, y)", 2, (0..many as i64).collect(), |args, i| {
                add(args, i)?;
                add(args, format!("row {i}"))
            })
            .unwrap();
        inserts.rows("b (z)", 1, vec![7i64, 8], add).unwrap();
        assert_eq!(inserts.groups.len(), 2);
        assert_eq!(inserts.groups[1].0.len(), 2, "the second group holds the rest of a and all of b");
        inserts.execute(&mut conn).await.unwrap();
        let (n, sum): (i64, i64) = sqlx::query_as("SELECT COUNT(*), SUM(x) FROM a").fetch_one(&mut conn).await.unwrap();
        assert_eq!((n as usize, sum as usize), (many, many * (many - 1) / 2));
        let last: String = sqlx::query_scalar("SELECT y FROM a WHERE x = 15009").fetch_one(&mut conn).await.unwrap();
        assert_eq!(last, "row 15009");
        let z: i64 = sqlx::query_scalar("SELECT SUM(z) FROM b").fetch_one(&mut conn).await.unwrap();
        assert_eq!(z, 15);
    }

    #[test]
    fn placeholders_number_across_rows() {
        assert_eq!(placeholders(Dialect::Postgres, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(placeholders_from(Dialect::Postgres, 3, 1, 2), "($4, $5)");
        assert_eq!(placeholders(Dialect::Sqlite, 2, 2), "(?, ?), (?, ?)");
    }
}
