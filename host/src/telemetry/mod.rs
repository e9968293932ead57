//! Telemetry: Prometheus metrics (the host's own, process and HTTP metrics) and the tracing
//! subscriber.

pub mod http;
mod log;
mod metrics;
mod process;
mod traces;

pub use log::{init_tracing, log_filter, set_log_filter, DEFAULT_FILTER};
pub use metrics::{error_type_label, ClusterGauges, DbPool, Metrics, CLUSTER_REFRESH, HOST_ERROR_TYPES};
pub use traces::{context_of, exporting, join, traceparent_of, Traces};
