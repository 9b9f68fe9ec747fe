//! The standard `process_*` metrics (CPU seconds, resident and virtual memory, open and maximum
//! file descriptors, threads, start time), read from `/proc` at each scrape, with the names and
//! units Prometheus's client libraries use, so that existing dashboards and alerts apply.
//!
//! Written here because `prometheus-client` ships no process collector (the `prometheus`
//! crate's one belongs to that other registry); this is a few reads of `/proc/self`. On a
//! system without `/proc` nothing is reported.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// Linux reports CPU times in /proc in USER_HZ, which is 100 on every architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// What one scrape read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: i64,
    pub virtual_bytes: i64,
    pub open_fds: i64,
    pub max_fds: i64,
    pub threads: i64,
    pub start_time_seconds: i64,
}

impl ProcessStats {
    /// This process's figures now (`None` without `/proc`).
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let boot = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64);
        parse(&stat, &status, &limits, &boot, open_fds)
    }
}

/// Reads the figures from the files' text (split out for the unit test).
fn parse(stat: &str, status: &str, limits: &str, boot: &str, open_fds: i64) -> Option<ProcessStats> {
    // Fields after the command name, which is in parentheses and may itself hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // `fields[0]` is field 3 (state): field N is `fields[N - 3]`.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let (utime, stime, threads, start_ticks) = (field(14)?, field(15)?, field(20)?, field(22)?);
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<i64>().ok())
            .map(|k| k * 1024)
    };
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse::<i64>().ok())
        .unwrap_or(0);
    let boot_time = boot.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(0);
    Some(ProcessStats {
        cpu_seconds: (utime + stime) / TICKS_PER_SECOND,
        resident_bytes: kib("VmRSS:").unwrap_or(0),
        virtual_bytes: kib("VmSize:").unwrap_or(0),
        open_fds,
        max_fds,
        threads: threads as i64,
        start_time_seconds: boot_time + (start_ticks / TICKS_PER_SECOND) as i64,
    })
}

/// Registered once per registry; reads `/proc` on each scrape.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = ProcessStats::read() else { return Ok(()) };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu",
            "Total user and system CPU time spent",
            Some(&Unit::Seconds),
            cpu.metric_type(),
        )?)?;
        let gauges = [
            ("process_resident_memory", "Resident memory size", Some(Unit::Bytes), s.resident_bytes),
            ("process_virtual_memory", "Virtual memory size", Some(Unit::Bytes), s.virtual_bytes),
            ("process_open_fds", "Open file descriptors", None, s.open_fds),
            ("process_max_fds", "The limit on open file descriptors", None, s.max_fds),
            ("process_threads", "Threads of this process", None, s.threads),
            ("process_start_time", "When this process started, in Unix time", Some(Unit::Seconds), s.start_time_seconds),
        ];
        for (name, help, unit, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, unit.as_ref(), gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proc_files_are_read_as_the_kernel_writes_them() {
        let stat =
            "4242 (byok (serve)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 360000 2000000000 5000 18446744073709551615";
        let status = "Name:\tbyok\nVmSize:\t 1953125 kB\nVmRSS:\t   20000 kB\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            65536                65536                files\n";
        let s = parse(stat, status, limits, "cpu  1 2 3\nbtime 1765000000\n", 17).expect("parsed");
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.threads, 12);
        assert_eq!(s.start_time_seconds, 1_765_000_000 + 3600);
        assert_eq!((s.resident_bytes, s.virtual_bytes), (20000 * 1024, 1953125 * 1024));
        assert_eq!((s.open_fds, s.max_fds), (17, 65536));
        let live = ProcessStats::read().expect("this test runs on Linux");
        assert!(live.resident_bytes > 0 && live.threads >= 1 && live.open_fds > 0, "{live:?}");
    }
}
