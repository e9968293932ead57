//! The rules one by one, then all of them together: a model workflow in memory, driven by random
//! DAGs and random outcome sequences, applying each transition as the store does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::events::EventType;
use crate::workflow::{Exhausted, RetryPolicy, TaskFailure, TaskStatus, WorkflowStatus};

fn held(max_attempts: u32, allow_failure: bool) -> Held {
    Held {
        agent_id: "a".into(),
        agent_type: "echo".into(),
        dependents: vec!["next".into()],
        allow_failure,
        policy: RetryPolicy { max_attempts, initial_delay: 1.0, ..RetryPolicy::default() },
        first_started: Some(0),
        uncounted: 0,
    }
}

fn failure(retryable: bool) -> AttemptResult {
    AttemptResult::Failed(TaskFailure {
        error_type: "boom".into(),
        message: "it broke".into(),
        retryable,
        detail: None,
    })
}

fn outcome(attempt: u32, result: AttemptResult) -> Outcome {
    Outcome { result, ..lost_attempt("w".into(), "t".into(), attempt, None) }
}

fn types(events: &[crate::events::NewEvent]) -> Vec<EventType> {
    events.iter().map(|e| e.kind.event_type()).collect()
}

#[test]
fn a_completed_attempt_settles_the_task() {
    let o = outcome(1, AttemptResult::Completed(r#"{"x":1}"#.into()));
    let end = attempt_ended(&o, &held(3, false), 5_000, true);
    assert_eq!(end.task_status(), TaskStatus::Completed);
    assert!(end.settled && !end.fails_workflow && end.error.is_none());
    assert_eq!(end.change.output, Some(serde_json::json!({"x": 1})));
    assert_eq!(types(&end.events), [EventType::TaskCompleted]);
    let crate::events::EventKind::TaskCompleted { timing, .. } = &end.events[0].kind else { panic!("not completed") };
    assert_eq!(timing.total_us, 5_000);
    // Without tracking, no event is built.
    assert!(attempt_ended(&o, &held(3, false), 5_000, false).events.is_empty());
}

#[test]
fn a_retryable_failure_is_retried_after_the_policys_delay_until_attempts_run_out() {
    let end = attempt_ended(&outcome(1, failure(true)), &held(3, false), 1_000, true);
    assert_eq!(end.update, TaskUpdate::Retrying { ready_at: 1_001_000, uncounted: false });
    assert_eq!(end.retry_at(), Some(1_001_000));
    assert!(!end.settled && !end.fails_workflow);
    assert_eq!(types(&end.events), [EventType::Failure, EventType::TaskRetrying, EventType::Retry]);
    let second = attempt_ended(&outcome(2, failure(true)), &held(3, false), 0, true);
    assert_eq!(second.update, TaskUpdate::Retrying { ready_at: 2_000_000, uncounted: false });

    let last = attempt_ended(&outcome(3, failure(true)), &held(3, false), 0, true);
    assert_eq!(last.update, TaskUpdate::Failed);
    assert!(last.fails_workflow && !last.settled);
    assert_eq!(types(&last.events), [EventType::Failure, EventType::TaskFailed]);
}

#[test]
fn a_fatal_failure_fails_the_task_at_once_and_the_workflow_unless_it_may_fail() {
    let end = attempt_ended(&outcome(1, failure(false)), &held(3, false), 0, true);
    assert_eq!((end.update, end.fails_workflow, end.settled), (TaskUpdate::Failed, true, false));
    assert_eq!(end.change.error.as_ref().unwrap()["error_type"], "boom");
    let allowed = attempt_ended(&outcome(1, failure(false)), &held(3, true), 0, true);
    assert_eq!((allowed.update, allowed.fails_workflow, allowed.settled), (TaskUpdate::Failed, false, true));
}

#[test]
fn an_attempt_a_budget_refused_is_not_counted_and_waits_for_the_workflow() {
    let mut o = outcome(3, failure(true));
    o.exhausted = Some(Exhausted { budget: "max_llm_tokens".into(), limit: 10, used: 12 });
    let end = attempt_ended(&o, &held(3, false), 7, true);
    assert_eq!(end.update, TaskUpdate::Retrying { ready_at: 7, uncounted: true });
    assert_eq!(end.retry_at(), None);
    assert!(end.change.error.is_none() && end.error.is_some());
    // Refused attempts do not use up the policy.
    let h = Held { uncounted: 1, ..held(3, false) };
    let next = attempt_ended(&outcome(3, failure(true)), &h, 0, true);
    assert!(matches!(next.update, TaskUpdate::Retrying { uncounted: false, .. }));
}

#[test]
fn a_lost_worker_is_a_retryable_failure() {
    let o = lost_attempt("w".into(), "t".into(), 1, Some("host-1"));
    let AttemptResult::Failed(f) = &o.result else { panic!("a failure") };
    assert_eq!(f.error_type, "worker_lost");
    assert!(f.retryable && f.message.contains("host-1"));
}

#[test]
fn a_workflow_completes_when_its_last_task_settles() {
    assert!(completes(1, 0, WorkflowStatus::Running));
    assert!(completes(1, 0, WorkflowStatus::Paused));
    assert!(!completes(0, 0, WorkflowStatus::Running));
    assert!(!completes(1, 1, WorkflowStatus::Running));
    assert!(!completes(1, 0, WorkflowStatus::Failed));
}

fn unfinished(id: &str, status: TaskStatus) -> Unfinished {
    Unfinished { task_id: id.into(), agent_id: "a".into(), agent_type: "t".into(), status, attempt: 1, error: None }
}

#[test]
fn stopping_cancels_running_attempts_and_skips_or_cancels_the_rest() {
    let tasks = || vec![unfinished("r", TaskStatus::Running), unfinished("p", TaskStatus::Pending)];
    let failed = stop(tasks(), Stop::Failed);
    assert_eq!(failed.cancelled, [("r".to_string(), 1)]);
    assert_eq!(
        (failed.not_started.as_slice(), failed.not_started_status),
        (&["p".to_string()][..], TaskStatus::Skipped)
    );
    assert_eq!(types(&failed.events), [EventType::TaskSkipped]);
    let cancelled = stop(tasks(), Stop::Cancelled);
    assert_eq!(cancelled.not_started_status, TaskStatus::Cancelled);
    assert!(cancelled.events.is_empty());
    assert_eq!(cancelled.changes["r"].status, TaskStatus::Cancelled);
}

fn view(status: WorkflowStatus) -> WorkflowView {
    WorkflowView { status, version: 5, running: 0, started: true }
}

#[test]
fn controls_follow_the_status() {
    use WorkflowStatus::*;
    let step = |op, v: WorkflowView| control("w", op, &v);
    assert_eq!(step(Control::Pause, view(Running)), Ok(ControlStep::Pause));
    assert_eq!(step(Control::Pause, view(Paused)), Ok(ControlStep::Unchanged));
    assert!(matches!(step(Control::Pause, view(Completed)), Err(Refusal::Conflict(_))));
    assert_eq!(step(Control::Resume, view(Paused)), Ok(ControlStep::Resume { first: false }));
    let never = WorkflowView { started: false, ..view(Pending) };
    assert_eq!(step(Control::Resume, never), Ok(ControlStep::Resume { first: true }));
    let Err(Refusal::Conflict(m)) = step(Control::Resume, view(Failed)) else { panic!("refused") };
    assert!(m.contains("roll it back"), "{m}");
    assert_eq!(step(Control::Cancel, view(Paused)), Ok(ControlStep::Cancel));
    assert_eq!(step(Control::Cancel, view(Cancelled)), Ok(ControlStep::Unchanged));
    assert!(step(Control::Cancel, view(Completed)).is_err());
    let Err(Refusal::Conflict(m)) = step(Control::Rollback(2), view(Running)) else { panic!("refused") };
    assert!(m.contains("pause it first"), "{m}");
    let busy = WorkflowView { running: 2, ..view(Paused) };
    assert!(matches!(step(Control::Rollback(2), busy), Err(Refusal::Conflict(m)) if m.contains("2 running")));
    assert_eq!(step(Control::Rollback(6), view(Failed)), Err(Refusal::NoVersion(6)));
    assert_eq!(step(Control::Rollback(0), view(Failed)), Err(Refusal::NoVersion(0)));
    assert_eq!(step(Control::Rollback(2), view(Failed)), Ok(ControlStep::Rollback { to: 2, from: 5 }));
    assert_eq!(ControlStep::Rollback { to: 2, from: 5 }.pause_reason().unwrap()["reason"], "rolled_back");
}

#[test]
fn a_rollback_keeps_what_was_done_and_makes_the_rest_wait() {
    let shape = |id: &str, deps: &[&str], allow_failure| TaskShape {
        task_id: id.into(),
        dependencies: deps.iter().map(|d| d.to_string()).collect(),
        allow_failure,
    };
    let mut target = BTreeMap::new();
    target.insert("a".to_string(), TaskVersionState::bare(TaskStatus::Completed, 1));
    target.insert("b".to_string(), TaskVersionState::bare(TaskStatus::Failed, 2));
    target.insert("c".to_string(), TaskVersionState::bare(TaskStatus::Running, 1));
    let tasks =
        vec![shape("a", &[], false), shape("b", &[], true), shape("c", &["a", "b"], false), shape("d", &["c"], false)];
    let r = rollback(&target, tasks);
    let by_id: BTreeMap<_, _> = r.tasks.iter().map(|(id, s, waiting)| (id.as_str(), (s.status, *waiting))).collect();
    assert_eq!(by_id["a"], (TaskStatus::Completed, 0));
    assert_eq!(by_id["b"], (TaskStatus::Failed, 0));
    assert_eq!(by_id["c"], (TaskStatus::Pending, 0));
    assert_eq!(by_id["d"], (TaskStatus::Pending, 1));
    assert_eq!(r.remaining, 2);
}

// ---- All the rules together, on a model workflow ----

#[derive(Debug, Clone)]
struct ModelTask {
    deps: Vec<usize>,
    dependents: Vec<usize>,
    allow_failure: bool,
    max_attempts: u32,
    status: TaskStatus,
    attempt: u32,
    uncounted: u32,
    deps_remaining: usize,
    completions: u32,
}

/// A workflow in memory, changed only by what the rules return, as the store applies it.
struct Model {
    status: WorkflowStatus,
    remaining: i64,
    running: i64,
    max_parallel: i64,
    tasks: Vec<ModelTask>,
    cancelled_by_operator: bool,
}

/// What the sequence does next.
#[derive(Debug, Clone, Copy)]
enum Step {
    Claim(usize),
    Complete(usize),
    Fail { pick: usize, retryable: bool },
    Lost(usize),
    Exhausted(usize),
    Pause,
    Resume,
    Cancel,
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => any::<usize>().prop_map(Step::Claim),
        6 => any::<usize>().prop_map(Step::Complete),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(pick, retryable)| Step::Fail { pick, retryable }),
        1 => any::<usize>().prop_map(Step::Lost),
        1 => any::<usize>().prop_map(Step::Exhausted),
        1 => Just(Step::Pause),
        1 => Just(Step::Resume),
        1 => Just(Step::Cancel),
    ]
}

/// A DAG of up to 12 tasks: each depends on some earlier ones.
fn dag_strategy() -> impl Strategy<Value = Vec<(Vec<usize>, bool, u32)>> {
    (1usize..12).prop_flat_map(|n| {
        (0..n)
            .map(|i| {
                let deps = if i == 0 {
                    Just(vec![]).boxed()
                } else {
                    proptest::sample::subsequence((0..i).collect::<Vec<_>>(), 0..=i.min(3)).boxed()
                };
                (deps, proptest::bool::weighted(0.2), 1u32..4)
            })
            .collect::<Vec<_>>()
    })
}

impl Model {
    fn new(dag: &[(Vec<usize>, bool, u32)], max_parallel: i64) -> Model {
        let mut tasks: Vec<ModelTask> = dag
            .iter()
            .map(|(deps, allow_failure, max_attempts)| ModelTask {
                deps: deps.clone(),
                dependents: Vec::new(),
                allow_failure: *allow_failure,
                max_attempts: *max_attempts,
                status: TaskStatus::Pending,
                attempt: 0,
                uncounted: 0,
                deps_remaining: deps.len(),
                completions: 0,
            })
            .collect();
        for i in 0..tasks.len() {
            for d in tasks[i].deps.clone() {
                tasks[d].dependents.push(i);
            }
        }
        Model {
            status: WorkflowStatus::Running,
            remaining: tasks.len() as i64,
            running: 0,
            max_parallel,
            tasks,
            cancelled_by_operator: false,
        }
    }

    fn with_status(&self, status: TaskStatus) -> Vec<usize> {
        (0..self.tasks.len()).filter(|&i| self.tasks[i].status == status).collect()
    }

    fn ready(&self) -> Vec<usize> {
        (0..self.tasks.len())
            .filter(|&i| {
                let t = &self.tasks[i];
                matches!(t.status, TaskStatus::Pending | TaskStatus::Retrying) && t.deps_remaining == 0
            })
            .collect()
    }

    fn claim(&mut self, pick: usize) {
        let ready = self.ready();
        if self.status != WorkflowStatus::Running || ready.is_empty() {
            return;
        }
        self.running += 1;
        if excess_claims(self.running, self.max_parallel, 1) == 1 {
            self.running -= 1;
            return;
        }
        let i = ready[pick % ready.len()];
        let t = &mut self.tasks[i];
        for &d in &t.deps.clone() {
            let dep = &self.tasks[d];
            assert!(dep.status == TaskStatus::Completed || (dep.status == TaskStatus::Failed && dep.allow_failure));
        }
        let t = &mut self.tasks[i];
        t.attempt += 1;
        let name: Arc<str> = i.to_string().into();
        let names =
            crate::events::TaskNames { task_id: name.clone(), agent_id: name.clone(), agent_type: name.clone() };
        let (state, event) = started(Some(names), t.attempt, &name, 0);
        assert!(event.is_some());
        t.status = state.status;
    }

    fn finish(&mut self, pick: usize, result: AttemptResult, exhausted: bool) {
        let running = self.with_status(TaskStatus::Running);
        if running.is_empty() {
            return;
        }
        let i = running[pick % running.len()];
        let t = &self.tasks[i];
        let held = Held {
            agent_id: "a".into(),
            agent_type: "t".into(),
            dependents: t.dependents.iter().map(|d| d.to_string()).collect(),
            allow_failure: t.allow_failure,
            policy: RetryPolicy { max_attempts: t.max_attempts, ..RetryPolicy::default() },
            first_started: Some(0),
            uncounted: t.uncounted,
        };
        let mut o = outcome(t.attempt, result);
        o.exhausted = exhausted.then(|| Exhausted { budget: "max_egress_requests".into(), limit: 1, used: 1 });
        let end = attempt_ended(&o, &held, 10, true);
        self.apply(i, &end, o.exhausted.as_ref());
    }

    /// As the store records an attempt's end.
    fn apply(&mut self, i: usize, end: &AttemptEnded, exhausted: Option<&Exhausted>) {
        let t = &mut self.tasks[i];
        t.status = end.task_status();
        if let TaskUpdate::Retrying { uncounted: true, .. } = end.update {
            t.uncounted += 1;
        }
        if end.update == TaskUpdate::Completed {
            t.completions += 1;
        }
        self.running -= 1;
        if end.settled {
            self.remaining -= 1;
            for d in self.tasks[i].dependents.clone() {
                self.tasks[d].deps_remaining -= 1;
            }
        }
        if end.fails_workflow {
            self.stop(Stop::Failed);
            self.status = WorkflowStatus::Failed;
            return;
        }
        if let (Some(exhausted), WorkflowStatus::Running) = (exhausted, self.status) {
            let (reason, _) = budget_paused(&i.to_string(), exhausted);
            assert_eq!(reason["reason"], "budget_exhausted");
            self.status = WorkflowStatus::Paused;
        }
        if completes(end.settled as i64, self.remaining, self.status) {
            self.status = WorkflowStatus::Completed;
        }
    }

    fn stop(&mut self, why: Stop) {
        let unfinished = (0..self.tasks.len())
            .filter(|&i| {
                matches!(self.tasks[i].status, TaskStatus::Running | TaskStatus::Pending | TaskStatus::Retrying)
            })
            .map(|i| Unfinished {
                status: self.tasks[i].status,
                attempt: self.tasks[i].attempt,
                ..unfinished(&i.to_string(), TaskStatus::Pending)
            })
            .collect();
        let s = stop(unfinished, why);
        for (id, _) in &s.cancelled {
            self.tasks[id.parse::<usize>().unwrap()].status = TaskStatus::Cancelled;
        }
        for id in &s.not_started {
            self.tasks[id.parse::<usize>().unwrap()].status = s.not_started_status;
        }
        self.running = 0;
    }

    fn control(&mut self, op: Control) {
        let v = WorkflowView { status: self.status, version: 1, running: self.running, started: true };
        match control("w", op, &v) {
            Ok(ControlStep::Pause) => self.status = WorkflowStatus::Paused,
            Ok(ControlStep::Resume { .. }) => self.status = WorkflowStatus::Running,
            Ok(ControlStep::Cancel) => {
                self.stop(Stop::Cancelled);
                self.status = WorkflowStatus::Cancelled;
                self.cancelled_by_operator = true;
            }
            Ok(ControlStep::Unchanged) => {}
            Ok(ControlStep::Rollback { .. }) => unreachable!("not generated"),
            Err(_) => assert!(self.status.is_terminal() || op == Control::Resume),
        }
    }

    fn run(&mut self, step: Step) {
        match step {
            Step::Claim(pick) => self.claim(pick),
            Step::Complete(pick) => self.finish(pick, AttemptResult::Completed("{}".into()), false),
            Step::Fail { pick, retryable } => self.finish(pick, failure(retryable), false),
            Step::Lost(pick) => {
                let o = lost_attempt(String::new(), String::new(), 0, None);
                self.finish(pick, o.result, false)
            }
            Step::Exhausted(pick) => self.finish(pick, failure(true), true),
            Step::Pause => self.control(Control::Pause),
            Step::Resume => self.control(Control::Resume),
            Step::Cancel => self.control(Control::Cancel),
        }
    }

    /// Resume and complete everything left, as a healthy host eventually does.
    fn drain(&mut self) {
        for _ in 0..1000 {
            if self.status.is_terminal() {
                return;
            }
            self.control(Control::Resume);
            self.claim(0);
            self.finish(0, AttemptResult::Completed("{}".into()), false);
        }
        panic!("the workflow never ended: {:?} {:?}", self.status, self.tasks);
    }

    fn check(&self) {
        assert!(self.status.is_terminal());
        assert_eq!(self.running, 0);
        for t in &self.tasks {
            assert!(t.status.is_terminal(), "a task stayed {:?}", t.status);
            assert!(t.completions <= 1, "a task completed twice");
            assert!(t.attempt <= t.max_attempts + t.uncounted, "more attempts than the policy allows");
        }
        let settled =
            |t: &ModelTask| t.status == TaskStatus::Completed || (t.status == TaskStatus::Failed && t.allow_failure);
        let unsettled = self.tasks.iter().filter(|t| !settled(t)).count() as i64;
        match self.status {
            WorkflowStatus::Completed => {
                assert_eq!(self.remaining, 0);
                assert_eq!(unsettled, 0);
            }
            WorkflowStatus::Failed => {
                assert!(self.tasks.iter().any(|t| t.status == TaskStatus::Failed && !t.allow_failure));
                assert!(self.tasks.iter().all(|t| t.status != TaskStatus::Cancelled || t.attempt > 0));
                assert_eq!(self.remaining, unsettled);
            }
            WorkflowStatus::Cancelled => assert!(self.cancelled_by_operator),
            other => panic!("ended {other:?}"),
        }
        // A skipped task never ran to an end, and only a failed workflow skips.
        for t in &self.tasks {
            if t.status == TaskStatus::Skipped {
                assert_eq!(self.status, WorkflowStatus::Failed);
                assert_eq!(t.completions, 0);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_workflow_ends_with_every_task_settled_once(
        dag in dag_strategy(),
        steps in proptest::collection::vec(step_strategy(), 0..80),
        max_parallel in 1i64..4,
    ) {
        let mut m = Model::new(&dag, max_parallel);
        for s in steps {
            m.run(s);
            prop_assert!(m.running <= m.max_parallel);
            prop_assert!(m.running >= 0 && m.remaining >= 0);
            let running = m.with_status(TaskStatus::Running).len() as i64;
            prop_assert_eq!(running, m.running);
        }
        m.drain();
        m.check();
    }
}

#[test]
fn retry_delays_follow_the_policy() {
    let h = Held {
        policy: RetryPolicy { max_attempts: 5, initial_delay: 0.5, max_delay: 1.5, exponential_base: 2.0 },
        ..held(5, false)
    };
    let due = |attempt| attempt_ended(&outcome(attempt, failure(true)), &h, 0, false).retry_at().unwrap();
    assert_eq!([due(1), due(2), due(3)], [500_000, 1_000_000, 1_500_000]);
    assert_eq!(Duration::from_micros(due(4) as u64), Duration::from_secs_f64(1.5));
}
