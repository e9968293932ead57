//! The event log: events stored in blocks read back exactly as written, however a query slices
//! them (pages, types, tasks, agents, retention), and events of an older schema carried over.

use std::borrow::Cow;

use hyphae::events::{AgentEventsQuery, Event, EventQuery, EventType, Order};
use hyphae::store::Store;
use serde_json::{json, Value};

use crate::harness::{database, test_config, Backend, Host};

fn echo(id: &str, agent: &str) -> Value {
    json!({"task_id": id, "agent_id": agent, "agent_type": "echo", "input": {"id": id}})
}

fn all() -> EventQuery {
    EventQuery { limit: i64::MAX, ..Default::default() }
}

fn keys(events: &[Event]) -> Vec<(String, i64)> {
    events.iter().map(|e| (e.workflow_id.clone(), e.seq)).collect()
}

/// A workflow of 300 tasks writes more events at submission than one block holds; every slice of
/// its history agrees with the whole.
async fn pages_types_and_tasks_slice_the_same_history(b: Backend) {
    let (url, _d) = database(b).await;
    let h = Host::start(&url, test_config()).await;
    let tasks: Vec<Value> = (0..300).map(|i| echo(&format!("t{i}"), if i % 2 == 0 { "even" } else { "odd" })).collect();
    let s = h.run(json!({"max_parallel_tasks": 50, "tasks": tasks})).await;
    let store = h.engine.store();
    let events = store.workflow_events(&s.workflow_id, &all()).await.unwrap();
    let n = store.last_event_seq(&s.workflow_id).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>());
    assert!(n > 1_200, "300 tasks make at least 4 events each, got {n}");
    assert_eq!(events.iter().filter(|e| e.event_type == EventType::TaskCreated).count(), 300);

    // Pages of 97 from every position, across block boundaries.
    for after in [0, 1, 255, 256, 257, 700, n - 3, n] {
        let page = store.workflow_events(&s.workflow_id, &EventQuery { after, limit: 97, ..all() }).await.unwrap();
        let want: Vec<_> = events.iter().filter(|e| e.seq > after).take(97).cloned().collect();
        assert_eq!(page, want, "page after {after}");
    }
    let types = vec![EventType::TaskCompleted, EventType::WorkflowCompleted];
    let typed = store.workflow_events(&s.workflow_id, &EventQuery { types: types.clone(), ..all() }).await.unwrap();
    let want: Vec<_> = events.iter().filter(|e| types.contains(&e.event_type)).cloned().collect();
    assert_eq!(typed, want);
    assert_eq!(typed.len(), 301);
    let one =
        store.workflow_events(&s.workflow_id, &EventQuery { task_id: Some("t123".into()), ..all() }).await.unwrap();
    let want: Vec<_> = events.iter().filter(|e| e.task_id.as_deref() == Some("t123")).cloned().collect();
    assert_eq!(one, want);
    assert!(one.len() >= 4, "{one:?}");

    let timeline = store.timeline(&s.workflow_id).await.unwrap();
    assert_eq!(timeline.total_events, events.len());
    assert_eq!(timeline.start_time.as_ref(), Some(&events[0].timestamp));
    let stats = store.statistics(Some(&s.workflow_id)).await.unwrap();
    assert_eq!(stats.total_events as usize, events.len());
    assert_eq!(stats.unique_tasks, 300);
    assert_eq!(stats.unique_agents, 2);
    assert_eq!(stats.event_type_counts["task_completed"], 300);
}

/// An agent's events come from every workflow it worked in, oldest first, and a short page is
/// the start of a long one.
async fn agent_events_merge_workflows_in_time_order(b: Backend) {
    let (url, _d) = database(b).await;
    let h = Host::start(&url, test_config()).await;
    let mut ids = Vec::new();
    for w in 0..4 {
        let tasks: Vec<Value> =
            (0..40).map(|i| echo(&format!("t{i}"), if (i + w) % 3 == 0 { "alice" } else { "bob" })).collect();
        ids.push(h.submit(json!({"max_parallel_tasks": 7, "tasks": tasks})).await);
    }
    for id in &ids {
        h.settle(id).await;
    }
    let store = h.engine.store();
    let mut everything = Vec::new();
    for id in &ids {
        everything.extend(store.workflow_events(id, &all()).await.unwrap());
    }
    let ts =
        |e: &Event| time::OffsetDateTime::parse(&e.timestamp, &time::format_description::well_known::Rfc3339).unwrap();
    let mut alice: Vec<Event> = everything.iter().filter(|e| e.agent_id.as_deref() == Some("alice")).cloned().collect();
    alice.sort_by(|a, b| (ts(a), &a.workflow_id, a.seq).cmp(&(ts(b), &b.workflow_id, b.seq)));
    let (full, next) =
        store.agent_events("alice", &AgentEventsQuery { limit: 100_000, ..Default::default() }).await.unwrap();
    assert!(next.is_none());
    assert_eq!(keys(&full), keys(&alice));
    for limit in [1, 5, 33, 100] {
        let (page, _) = store.agent_events("alice", &AgentEventsQuery { limit, ..Default::default() }).await.unwrap();
        assert_eq!(keys(&page), keys(&alice[..limit as usize]), "page of {limit}");
    }
    // Page after page, from either end, every event once: the pages of newest first are those
    // of oldest first backwards.
    for (order, limit) in [(Order::Oldest, 7), (Order::Newest, 7), (Order::Newest, 64)] {
        let (mut got, mut after) = (Vec::new(), None);
        loop {
            let q = AgentEventsQuery { order, after: after.clone(), limit, ..Default::default() };
            let (page, next) = store.agent_events("alice", &q).await.unwrap();
            assert!(page.len() as i64 == limit || next.is_none(), "a short page is the last");
            got.extend(page);
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let mut want = keys(&full);
        if order == Order::Newest {
            want.reverse();
        }
        assert_eq!(keys(&got), want, "{order:?} by {limit}");
    }
    let q = AgentEventsQuery { types: vec![EventType::ExecutionEnd], limit: 10, ..Default::default() };
    let (ends, _) = store.agent_events("alice", &q).await.unwrap();
    let want: Vec<_> = alice.iter().filter(|e| e.event_type == EventType::ExecutionEnd).take(10).cloned().collect();
    assert_eq!(keys(&ends), keys(&want));
    assert!(store
        .agent_events("nobody", &AgentEventsQuery { limit: 10, ..Default::default() })
        .await
        .unwrap()
        .0
        .is_empty());
    let stats = store.statistics(None).await.unwrap();
    assert_eq!(stats.total_events as usize, everything.len());
    assert_eq!(stats.unique_workflows, 4);
}

/// Retention keeps the newer part of a block that straddles the cut-off.
async fn retention_cuts_inside_a_block(b: Backend) {
    let (url, _d) = database(b).await;
    let h = Host::start(&url, test_config()).await;
    let task = json!({"task_id": "slow", "agent_type": "testkit", "input": {"action": "sleep", "ms": 600}});
    let s = h.run(json!({"tasks": [task]})).await;
    let store = h.engine.store();
    let events = store.workflow_events(&s.workflow_id, &all()).await.unwrap();
    let ts =
        |e: &Event| time::OffsetDateTime::parse(&e.timestamp, &time::format_description::well_known::Rfc3339).unwrap();
    let start = events.iter().find(|e| e.event_type == EventType::ExecutionStart).unwrap();
    let cut = ts(start) + time::Duration::milliseconds(300);
    let days = (time::OffsetDateTime::now_utc() - cut).as_seconds_f64() / 86_400.0;
    let deleted = store.delete_events_older_than(days).await.unwrap();
    let kept = store.workflow_events(&s.workflow_id, &all()).await.unwrap();
    let want: Vec<_> = events.iter().filter(|e| ts(e) >= cut).cloned().collect();
    assert_eq!(kept, want);
    assert_eq!(deleted as usize, events.len() - kept.len());
    assert!(kept.iter().any(|e| e.event_type == EventType::ExecutionEnd), "the end of the slow task stays: {kept:?}");
    assert!(kept.iter().all(|e| e.event_type != EventType::ExecutionStart));
    let (agent, _) =
        store.agent_events("testkit", &AgentEventsQuery { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(keys(&agent), keys(&want.iter().filter(|e| e.agent_id.is_some()).cloned().collect::<Vec<_>>()));
    assert_eq!(store.statistics(None).await.unwrap().total_events as usize, kept.len());
    assert_eq!(store.delete_events_older_than(0.0).await.unwrap() as usize, kept.len());
    assert!(store.workflow_events(&s.workflow_id, &all()).await.unwrap().is_empty());
}

/// A database written before events were stored in blocks: its events are moved into blocks by
/// the migration and read back as they were.
async fn events_of_the_first_schema_are_carried_over(b: Backend) {
    let (url, _d) = database(b).await;
    let dir = if b == Backend::Sqlite { "sqlite" } else { "postgres" };
    let migrations = crate::support::repo_root().join("migrations").join(dir);
    let mut first = sqlx::migrate::Migrator::new(migrations.as_path()).await.unwrap();
    first.migrations = Cow::Owned(first.migrations[..1].to_vec());
    let insert = "INSERT INTO events (workflow_id, seq, event_id, event_type, task_id, agent_id, agent_type, \
                  source_agent, target_agent, status, duration_ms, ts, body) VALUES \
                  ('w1', 1, 'e1', 'workflow_created', NULL, NULL, NULL, NULL, NULL, 'pending', NULL, 1000000, NULL), \
                  ('w1', 2, 'e2', 'handoff', 'b', 'bob', 'echo', 'alice', 'bob', NULL, NULL, 2000000, NULL), \
                  ('w1', 3, 'e3', 'execution_end', 'b', 'bob', 'echo', NULL, NULL, 'completed', 1.5, 3000000, \
                   '{\"performance\": {\"queue_time_ms\": 1.0, \"execution_time_ms\": 1.5, \"total_time_ms\": 2.5}}'), \
                  ('w2', 1, 'e4', 'execution_start', 'a', 'alice', 'echo', NULL, NULL, 'running', NULL, 1500000, NULL)";
    match b {
        Backend::Sqlite => {
            use sqlx::{ConnectOptions, Connection};
            let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&url).create_if_missing(true);
            let mut conn = opts.connect().await.unwrap();
            first.run(&mut conn).await.unwrap();
            sqlx::raw_sql(insert).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            first.run(&mut conn).await.unwrap();
            sqlx::raw_sql(insert).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }
    let store = Store::connect(&url).await.expect("later migrations apply");
    let w1 = store.workflow_events("w1", &all()).await.unwrap();
    assert_eq!(w1.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["e1", "e2", "e3"]);
    assert_eq!(w1[1].source_agent.as_deref(), Some("alice"));
    assert_eq!(w1[2].performance.unwrap().total_time_ms, 2.5);
    assert_eq!(w1[2].duration_ms, Some(1.5));
    assert_eq!(w1[0].timestamp, hyphae::events::rfc3339(1_000_000));
    let (alice, _) = store.agent_events("alice", &AgentEventsQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(alice.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["e4", "e2"]);
    assert_eq!(store.statistics(None).await.unwrap().total_events, 4);
}

/// A database of the release before typed events: its JSON blocks (as that release's writer
/// made them) are read as they were after the migration, next to new blocks, and retention trims
/// them in their own format.
async fn blocks_of_the_json_formats_are_read_after_the_migration(b: Backend) {
    let (url, _d) = database(b).await;
    let dir = if b == Backend::Sqlite { "sqlite" } else { "postgres" };
    let migrations = crate::support::repo_root().join("migrations").join(dir);
    let mut before = sqlx::migrate::Migrator::new(migrations.as_path()).await.unwrap();
    let n = before.migrations.iter().position(|m| m.description.contains("typed event blocks")).unwrap();
    before.migrations = Cow::Owned(before.migrations[..n].to_vec());
    let v2 = r#"{"v":2,"seq":1,"ts":1000000,"s":["task_started","t1","bob","echo","running","task_completed","completed"],"b":[{"metadata":{"attempt":1,"worker_id":"w1"}},{"metadata":{"attempt":1}}],"e":[[0,0,1,2,3,4,0],[5,2000000,1,2,3,6,1,1.5,[0.5,1.5,2.25]]]}"#;
    let v1 = r#"[[3,"e3","workflow_completed",null,null,null,null,null,"completed",null,4000000,null]]"#;
    let insert = format!(
        "INSERT INTO event_blocks (workflow_id, first_seq, last_seq, first_ts, last_ts, event_count, events) VALUES \
         ('w1', 1, 2, 1000000, 3000000, 2, '{v2}'), ('w1', 3, 3, 4000000, 4000000, 1, '{v1}'); \
         INSERT INTO event_agents (agent_id, first_ts, workflow_id, first_seq) VALUES ('bob', 1000000, 'w1', 1)"
    );
    match b {
        Backend::Sqlite => {
            use sqlx::{ConnectOptions, Connection};
            let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&url).create_if_missing(true);
            let mut conn = opts.connect().await.unwrap();
            before.run(&mut conn).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(insert)).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            before.run(&mut conn).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(insert)).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }
    let store = Store::connect(&url).await.expect("the migration applies");
    let w1 = store.workflow_events("w1", &all()).await.unwrap();
    let types: Vec<EventType> = w1.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::TaskStarted, EventType::TaskCompleted, EventType::WorkflowCompleted]);
    assert_eq!(w1[0].metadata, Some(json!({"attempt": 1, "worker_id": "w1"})));
    assert_eq!((w1[1].duration_ms, w1[1].performance.unwrap().total_time_ms), (Some(1.5), 2.25));
    assert_eq!(
        (w1[1].timestamp.as_str(), w1[2].event_id.as_str()),
        (hyphae::events::rfc3339(3_000_000).as_str(), "e3")
    );
    let (bob, _) = store.agent_events("bob", &AgentEventsQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(keys(&bob), [("w1".to_string(), 1), ("w1".to_string(), 2)]);
    // Retention inside the older block keeps its newer event, readable as before.
    let cut = time::OffsetDateTime::from_unix_timestamp(2).unwrap();
    let days = (time::OffsetDateTime::now_utc() - cut).as_seconds_f64() / 86_400.0;
    assert_eq!(store.delete_events_older_than(days).await.unwrap(), 1);
    let kept = store.workflow_events("w1", &all()).await.unwrap();
    assert_eq!(kept, w1[1..].to_vec());
    let (bob, _) = store.agent_events("bob", &AgentEventsQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(keys(&bob), [("w1".to_string(), 2)]);
}

crate::on_both_backends!(
    pages_types_and_tasks_slice_the_same_history,
    agent_events_merge_workflows_in_time_order,
    retention_cuts_inside_a_block,
    events_of_the_first_schema_are_carried_over,
    blocks_of_the_json_formats_are_read_after_the_migration,
);
