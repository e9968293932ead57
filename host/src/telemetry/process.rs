//! The standard `process_*` metrics of this host's process (CPU time, memory, open files, start
//! time), read from `/proc/self` at each scrape. On systems without `/proc` there are none.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// Reads `/proc/self` when metrics are rendered.
#[derive(Debug)]
pub(super) struct ProcessCollector;

/// What `/proc/self` says of this process.
#[derive(Debug, Default, PartialEq)]
struct Process {
    cpu_seconds: f64,
    start_time_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    threads: u64,
    open_fds: u64,
    max_fds: Option<u64>,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = read() else { return Ok(()) };
        let cpu = ConstCounter::new(p.cpu_seconds);
        let help = "User and system CPU time this process spent";
        cpu.encode(encoder.encode_descriptor("process_cpu", help, Some(&Unit::Seconds), cpu.metric_type())?)?;
        let gauges: [(&str, &str, Option<Unit>, f64); 5] = [
            (
                "process_start_time",
                "Start time of this process since the Unix epoch",
                Some(Unit::Seconds),
                p.start_time_seconds,
            ),
            ("process_resident_memory", "Resident memory of this process", Some(Unit::Bytes), p.resident_bytes as f64),
            ("process_virtual_memory", "Virtual memory of this process", Some(Unit::Bytes), p.virtual_bytes as f64),
            ("process_threads", "Threads of this process", None, p.threads as f64),
            ("process_open_fds", "Open file descriptors of this process", None, p.open_fds as f64),
        ];
        for (name, help, unit, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, unit.as_ref(), gauge.metric_type())?)?;
        }
        if let Some(max) = p.max_fds {
            let gauge = ConstGauge::new(max as f64);
            let help = "Most file descriptors this process may open";
            gauge.encode(encoder.encode_descriptor("process_max_fds", help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

fn read() -> Option<Process> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
    // SAFETY: sysconf reads a constant of the system; it has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    parse(&stat, &status, &boot, &limits, if ticks > 0 { ticks as f64 } else { 100.0 }, open_fds)
}

/// This process from the text of `/proc/self/stat`, `/proc/self/status`, `/proc/stat` and
/// `/proc/self/limits`, with `ticks` clock ticks a second.
fn parse(stat: &str, status: &str, boot: &str, limits: &str, ticks: f64, open_fds: u64) -> Option<Process> {
    // The fields after the command name, which is in parentheses and may hold anything.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    // `fields[0]` is field 3 of proc(5) (state): utime is field 14, stime 15, starttime 22.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let kib = |key: &str| {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].split_whitespace().next()?.parse::<u64>().ok()
    };
    let btime = boot.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse::<f64>().ok()?;
    let max_fds = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok());
    Some(Process {
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        start_time_seconds: btime + field(22)? / ticks,
        resident_bytes: kib("VmRSS:").unwrap_or(0) * 1024,
        virtual_bytes: kib("VmSize:").unwrap_or(0) * 1024,
        threads: kib("Threads:").unwrap_or(0),
        open_fds,
        max_fds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 9000 0 0 0 250 150 0 0 20 0 12 0 \
                    500000 1000000 2000 18446744073709551615";
        let status = "Name:\thyphae\nVmSize:\t  2048 kB\nVmRSS:\t    1024 kB\nThreads:\t12\n";
        let boot = "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        let p = parse(stat, status, boot, limits, 100.0, 17).unwrap();
        let expected = Process {
            cpu_seconds: 4.0,
            start_time_seconds: 1_700_005_000.0,
            resident_bytes: 1024 * 1024,
            virtual_bytes: 2048 * 1024,
            threads: 12,
            open_fds: 17,
            max_fds: Some(1024),
        };
        assert_eq!(p, expected);
        assert_eq!(parse("garbage", status, boot, limits, 100.0, 0), None);
    }

    #[test]
    fn reads_this_process() {
        if cfg!(target_os = "linux") {
            let p = read().expect("/proc/self is readable");
            assert!(p.resident_bytes > 0 && p.open_fds > 0 && p.threads > 0, "{p:?}");
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
            assert!(p.start_time_seconds <= now + 1.0 && p.start_time_seconds > now - 86_400.0 * 365.0, "{p:?}");
        }
    }
}
