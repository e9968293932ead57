//! One chain step's write transaction (10 statements) on SQLite: sqlx's native driver (a
//! hand-off to its worker thread per statement) against rusqlite with the whole transaction
//! run on the connection's own thread (one hand-off per transaction).
use sqlx::{Connection, Row};
use std::time::Instant;
use tokio::sync::oneshot;

const SCHEMA: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS wf (id TEXT PRIMARY KEY, running INT, remaining INT, version INT, seq INT);
CREATE TABLE IF NOT EXISTS tasks (wf TEXT, id TEXT, status TEXT, attempt INT, output TEXT, deps INT, PRIMARY KEY (wf, id));
CREATE TABLE IF NOT EXISTS versions (wf TEXT, v INT, changes TEXT, PRIMARY KEY (wf, v));
CREATE TABLE IF NOT EXISTS blocks (wf TEXT, seq INT, data BLOB, PRIMARY KEY (wf, seq));";

/// The step's statements: (sql, binds as i64 of the step number).
const STEP: &[&str] = &[
    "UPDATE tasks SET status = 'completed', output = '{\"n\":55}' WHERE wf = 'w' AND id = 't' || ?1 AND attempt = 1 RETURNING deps",
    "UPDATE tasks SET deps = deps - 1 WHERE wf = 'w' AND id = 't' || (?1 + 1) RETURNING deps",
    "UPDATE tasks SET status = 'ready' WHERE wf = 'w' AND id = 't' || (?1 + 1) AND deps = 0 AND ?1 >= 0",
    "UPDATE wf SET running = running - 1, remaining = remaining - 1 WHERE id = 'w' AND ?1 >= 0 RETURNING remaining",
    "UPDATE wf SET running = running + 1 WHERE id = 'w' AND ?1 >= 0 RETURNING running",
    "UPDATE tasks SET status = 'running', attempt = 1 WHERE wf = 'w' AND id = 't' || (?1 + 1) RETURNING output",
    "UPDATE wf SET version = version + 2, seq = seq + 4 WHERE id = 'w' AND ?1 >= 0 RETURNING version",
    "INSERT INTO versions (wf, v, changes) VALUES ('w', ?1, '{\"t\":{\"status\":\"completed\"}}')",
    "INSERT INTO blocks (wf, seq, data) VALUES ('w', ?1, x'0301020304050607080910')",
    "SELECT output FROM tasks WHERE wf = 'w' AND id = 't' || ?1",
];
const N: i64 = 20_000;

fn setup(path: &str) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(SCHEMA).unwrap();
    c.execute_batch("DELETE FROM wf; DELETE FROM tasks; DELETE FROM versions; DELETE FROM blocks; INSERT INTO wf VALUES ('w', 1, 1000000, 0, 0);").unwrap();
    let tx = c.unchecked_transaction().unwrap();
    for i in 0..=N + 1 {
        tx.execute("INSERT INTO tasks VALUES ('w', 't' || ?1, 'pending', 1, NULL, 1)", [i]).unwrap();
    }
    tx.commit().unwrap();
}

fn report(name: &str, mut us: Vec<f64>) {
    us.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| us[((us.len() as f64 - 1.0) * q) as usize];
    println!(
        "{name}: per transaction p50 {:.1} us, p90 {:.1} us, mean {:.1} us",
        p(0.5),
        p(0.9),
        us.iter().sum::<f64>() / us.len() as f64
    );
}

async fn with_sqlx(path: &str) {
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{path}")).await.unwrap();
    sqlx::raw_sql("PRAGMA synchronous=NORMAL").execute(&mut c).await.unwrap();
    let mut us = Vec::new();
    for i in 0..N {
        let t = Instant::now();
        let mut tx = c.begin_with("BEGIN IMMEDIATE").await.unwrap();
        for sql in STEP {
            let rows = sqlx::query(sqlx::AssertSqlSafe(*sql)).bind(i).fetch_all(&mut *tx).await.unwrap();
            for r in rows {
                let _: Option<String> = r.try_get::<Option<String>, _>(0).ok().flatten();
            }
        }
        tx.commit().await.unwrap();
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    report("sqlx native SqliteConnection, statement by statement", us);
}

type Job = Box<dyn FnOnce(&mut rusqlite::Connection) + Send>;

async fn with_thread(path: &str) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let p = path.to_string();
    std::thread::spawn(move || {
        let mut c = rusqlite::Connection::open(p).unwrap();
        c.execute_batch("PRAGMA synchronous=NORMAL").unwrap();
        while let Some(job) = rx.blocking_recv() {
            job(&mut c);
        }
    });
    let mut us = Vec::new();
    for i in 0..N {
        let t = Instant::now();
        let (done, wait) = oneshot::channel();
        tx.send(Box::new(move |c: &mut rusqlite::Connection| {
            c.execute_batch("BEGIN IMMEDIATE").unwrap();
            for sql in STEP {
                let mut st = c.prepare_cached(sql).unwrap();
                let mut rows = st.query([i]).unwrap();
                while let Some(r) = rows.next().unwrap() {
                    let _: Option<String> = r.get::<_, Option<String>>(0).ok().flatten();
                }
            }
            c.execute_batch("COMMIT").unwrap();
            let _ = done.send(());
        }))
        .unwrap();
        wait.await.unwrap();
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    report("rusqlite, whole transaction on the connection's thread", us);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = std::env::temp_dir().join("exp-sqlite");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("x.db").to_string_lossy().into_owned();
    for round in 0..3 {
        println!("round {round}");
        setup(&path);
        rt.block_on(with_sqlx(&path));
        setup(&path);
        rt.block_on(with_thread(&path));
    }
}
