//! Plain-text tables for terminal output.

use std::fmt::Write;

/// A table with a header row; columns are padded to their widest cell.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Table {
        Table { header: header.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    /// Append a row (missing cells are empty, extra cells are dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Render with two spaces between columns.
    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().take(n).enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut l = String::new();
            for (i, w) in widths.iter().enumerate() {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                if i + 1 == n {
                    l.push_str(c);
                } else {
                    let _ = write!(l, "{c:<w$}  ");
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&self.header);
        for r in &self.rows {
            line(r);
        }
        out
    }
}

/// Milliseconds as a short human duration (`850ms`, `1.25s`, `3m05s`).
pub fn duration(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else if ms < 60_000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        let s = (ms / 1000.0).round() as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// Milliseconds between two RFC 3339 timestamps, if both parse.
pub fn millis_between(start: Option<&str>, end: Option<&str>) -> Option<f64> {
    use time::format_description::well_known::Rfc3339;
    let a = time::OffsetDateTime::parse(start?, &Rfc3339).ok()?;
    let b = time::OffsetDateTime::parse(end?, &Rfc3339).ok()?;
    Some((b - a).as_seconds_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_aligned_columns() {
        let mut t = Table::new(&["task", "status"]);
        t.row(vec!["a-long-task".into(), "completed".into()]);
        t.row(vec!["b".into(), "failed".into()]);
        assert_eq!(t.render(), "task         status\na-long-task  completed\nb            failed\n");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(850.0), "850ms");
        assert_eq!(duration(1250.0), "1.25s");
        assert_eq!(duration(185_000.0), "3m05s");
        let ms = millis_between(Some("2024-01-01T00:00:00.000000Z"), Some("2024-01-01T00:00:01.500000Z"));
        assert_eq!(ms, Some(1500.0));
    }
}
