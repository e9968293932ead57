//! Live progress of one workflow: a bar per task on a terminal, plain lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::store::WorkflowState;
use crate::workflow::TaskStatus;

/// Shows task statuses as they change.
pub enum Progress {
    /// A spinner per task and an overall bar.
    Bars { overall: ProgressBar, tasks: HashMap<String, ProgressBar>, seen: HashMap<String, (TaskStatus, u32)> },
    /// One line per change (stdout is not a terminal).
    Lines { seen: HashMap<String, (TaskStatus, u32)> },
}

impl Progress {
    /// Bars when stdout is a terminal, lines otherwise.
    pub fn new(state: &WorkflowState) -> Progress {
        if !std::io::stdout().is_terminal() {
            return Progress::Lines { seen: HashMap::new() };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let overall = multi.add(ProgressBar::new(state.tasks.len() as u64));
        overall.set_style(
            ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} tasks settled  {elapsed_precise}  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let width = state.tasks.iter().map(|t| t.task_id.chars().count()).max().unwrap_or(4);
        let style = ProgressStyle::with_template(&format!("{{spinner:.green}} {{prefix:<{width}}} {{msg}}"))
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let mut tasks = HashMap::new();
        for t in &state.tasks {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(style.clone());
            bar.set_prefix(t.task_id.clone());
            bar.set_message(format!("pending ({})", t.agent_type));
            tasks.insert(t.task_id.clone(), bar);
        }
        Progress::Bars { overall, tasks, seen: HashMap::new() }
    }

    /// Show the changes since the last update.
    pub fn update(&mut self, state: &WorkflowState) {
        match self {
            Progress::Bars { overall, tasks, seen } => {
                let settled = state.tasks.iter().filter(|t| t.status.is_terminal()).count();
                overall.set_position(settled as u64);
                overall.set_message(state.status.to_string());
                for t in &state.tasks {
                    if seen.get(&t.task_id) == Some(&(t.status, t.attempt)) {
                        continue;
                    }
                    seen.insert(t.task_id.clone(), (t.status, t.attempt));
                    let Some(bar) = tasks.get(&t.task_id) else { continue };
                    let msg = describe(t.status, t.attempt, &t.agent_type);
                    match t.status {
                        TaskStatus::Running | TaskStatus::Retrying => {
                            bar.enable_steady_tick(Duration::from_millis(120));
                            bar.set_message(msg);
                        }
                        s if s.is_terminal() => bar.finish_with_message(msg),
                        _ => bar.set_message(msg),
                    }
                }
            }
            Progress::Lines { seen } => {
                for t in &state.tasks {
                    if seen.get(&t.task_id) == Some(&(t.status, t.attempt)) || t.status == TaskStatus::Pending {
                        continue;
                    }
                    seen.insert(t.task_id.clone(), (t.status, t.attempt));
                    println!("{}: {}", t.task_id, describe(t.status, t.attempt, &t.agent_type));
                }
            }
        }
    }

    /// Stop drawing.
    pub fn finish(&self) {
        if let Progress::Bars { overall, tasks, .. } = self {
            for bar in tasks.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
            overall.finish();
        }
    }
}

fn describe(status: TaskStatus, attempt: u32, agent_type: &str) -> String {
    let mark = match status {
        TaskStatus::Completed => "✓ ",
        TaskStatus::Failed => "✗ ",
        TaskStatus::Skipped | TaskStatus::Cancelled => "- ",
        _ => "",
    };
    if attempt > 1 || matches!(status, TaskStatus::Running | TaskStatus::Retrying) {
        format!("{mark}{status} ({agent_type}, attempt {attempt})")
    } else {
        format!("{mark}{status} ({agent_type})")
    }
}
