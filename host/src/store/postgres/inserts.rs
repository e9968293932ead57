//! Multi-row INSERTs into several tables in one round trip.

use sqlx::error::BoxDynError;
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, AssertSqlSafe, PgConnection};

use crate::store::Result;

/// Bind parameters per round trip, under PostgreSQL's limit of 65,535 per statement.
const MAX_PARAMS: usize = 30_000;

/// The INSERTs that end a transaction (attempts, versions, event blocks, the agent index), sent
/// together: one statement whose data-modifying CTEs run all but the last INSERT. Each round
/// trip saved is one less wait on the writer's path.
#[derive(Default)]
pub struct Inserts {
    /// Each group is one round trip: its INSERTs, their arguments, how many there are.
    groups: Vec<(Vec<String>, PgArguments, usize)>,
}

impl Inserts {
    /// Add `INSERT INTO {target} VALUES ...` for `rows`, `cols` values each; `bind` adds a row's
    /// values in column order.
    pub fn rows<R>(
        &mut self,
        target: &str,
        cols: usize,
        rows: Vec<R>,
        bind: impl FnMut(&mut PgArguments, R) -> std::result::Result<(), BoxDynError>,
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
        mut bind: impl FnMut(&mut PgArguments, R) -> std::result::Result<(), BoxDynError>,
    ) -> Result<()> {
        let mut rows = rows.into_iter();
        let mut left = rows.len();
        while left > 0 {
            if self.groups.last().is_none_or(|g| g.2 + cols > MAX_PARAMS) {
                self.groups.push((Vec::new(), PgArguments::default(), 0));
            }
            let Some((parts, args, used)) = self.groups.last_mut() else { unreachable!("a group was just pushed") };
            let n = ((MAX_PARAMS - *used) / cols).min(left);
            let values = placeholders_from(*used, n, cols);
            parts.push(format!("INSERT INTO {target} VALUES {values}{then}"));
            for row in rows.by_ref().take(n) {
                bind(args, row).map_err(sqlx::Error::Encode)?;
            }
            *used += n * cols;
            left -= n;
        }
        Ok(())
    }

    /// Run the INSERTs.
    pub async fn execute(self, conn: &mut PgConnection) -> Result<()> {
        for (parts, args, _) in self.groups {
            let sql = match parts.split_last() {
                None => continue,
                Some((last, [])) => last.clone(),
                Some((last, before)) => {
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
pub fn add<'t, T>(args: &mut PgArguments, value: T) -> std::result::Result<(), BoxDynError>
where
    T: sqlx::Encode<'t, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    args.add(value)
}

/// The VALUES list of a multi-row INSERT whose only parameters are these: `($1, $2), ($3, $4)`.
pub fn placeholders(rows: usize, cols: usize) -> String {
    placeholders_from(0, rows, cols)
}

/// [`placeholders`] for parameters that follow `before` others of the same statement.
pub fn placeholders_from(before: usize, rows: usize, cols: usize) -> String {
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
            s.push('$');
            s.push_str(&(before + r * cols + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{add, placeholders, placeholders_from, Inserts, MAX_PARAMS};
    use sqlx::Connection;

    #[tokio::test]
    async fn rows_of_several_tables_go_in_groups_under_the_parameter_limit() {
        let url = std::env::var("HYPHAE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("a PostgreSQL server (HYPHAE_TEST_POSTGRES)");
        sqlx::raw_sql("CREATE TEMP TABLE a (x BIGINT, y TEXT); CREATE TEMP TABLE b (z BIGINT)")
            .execute(&mut conn)
            .await
            .unwrap();
        let mut inserts = Inserts::default();
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
        let (n, sum): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), SUM(x)::BIGINT FROM a").fetch_one(&mut conn).await.unwrap();
        assert_eq!((n as usize, sum as usize), (many, many * (many - 1) / 2));
        let last: String = sqlx::query_scalar("SELECT y FROM a WHERE x = 15009").fetch_one(&mut conn).await.unwrap();
        assert_eq!(last, "row 15009");
        let z: i64 = sqlx::query_scalar("SELECT SUM(z)::BIGINT FROM b").fetch_one(&mut conn).await.unwrap();
        assert_eq!(z, 15);
    }

    #[test]
    fn placeholders_number_across_rows() {
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(placeholders_from(3, 1, 2), "($4, $5)");
    }
}
