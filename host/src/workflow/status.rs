//! Workflow and task statuses, with their names as stored and served.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A status name that is not one of the known statuses.
#[derive(Debug, thiserror::Error)]
#[error("unknown status `{0}`")]
pub struct UnknownStatus(pub String);

macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every status, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name as stored and served.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> Result<Self, UnknownStatus> {
                match s { $($text => Ok($name::$variant),)+ other => Err(UnknownStatus(other.to_string())) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

status_enum!(
    /// Status of a workflow.
    WorkflowStatus {
        /// Stored, not started.
        Pending => "pending",
        Running => "running",
        /// No new task starts; running tasks finish.
        Paused => "paused",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

status_enum!(
    /// Status of a task.
    TaskStatus {
        Pending => "pending",
        Running => "running",
        /// Failed an attempt; waits for its next one.
        Retrying => "retrying",
        Completed => "completed",
        Failed => "failed",
        /// Can no longer run because the workflow failed.
        Skipped => "skipped",
        Cancelled => "cancelled",
    }
);

impl WorkflowStatus {
    /// Whether the workflow has reached an end state.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

impl TaskStatus {
    /// Whether the task has reached an end state.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Skipped | Self::Cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>().unwrap(), *s);
        }
        for s in WorkflowStatus::ALL {
            assert_eq!(s.to_string().parse::<WorkflowStatus>().unwrap(), *s);
        }
        assert!("done".parse::<TaskStatus>().is_err());
    }
}
