//! Process CPU time and resident memory from `/proc` (Linux).

use crate::BenchError;

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`; 100 on Linux on every
/// architecture Consentry builds for).
pub const CLOCK_TICKS: f64 = 100.0;

fn read(path: &str) -> Result<String, BenchError> {
    std::fs::read_to_string(path).map_err(|e| BenchError::Proc {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// CPU time (user + system, all threads) the process has used, in seconds. `pid` "self" for this
/// process.
pub fn cpu_seconds(pid: &str) -> Result<f64, BenchError> {
    let path = format!("/proc/{pid}/stat");
    let text = read(&path)?;
    parse_stat_cpu(&text).ok_or_else(|| BenchError::Proc {
        path,
        reason: "unexpected format".into(),
    })
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in seconds.
pub fn parse_stat_cpu(stat: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may contain spaces: count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 -> index 11, stime field 15 -> index 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS)
}

/// Resident set size now and its peak (`VmRSS`, `VmHWM`), in kB.
pub fn rss_kb(pid: &str) -> Result<(u64, u64), BenchError> {
    let path = format!("/proc/{pid}/status");
    let text = read(&path)?;
    parse_status_rss(&text).ok_or_else(|| BenchError::Proc {
        path,
        reason: "no VmRSS/VmHWM lines".into(),
    })
}

/// `VmRSS` and `VmHWM` of a `/proc/PID/status` text, in kB.
pub fn parse_status_rss(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The machine: logical CPUs, CPU model and memory, for the report.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    format!(
        "{cpus} logical CPUs (nproc), {model}, {:.1} GiB RAM",
        mem_kb as f64 / 1024.0 / 1024.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_are_read_after_the_command_name() {
        // A command name with spaces and a ')' must not shift the fields.
        let line = "1234 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 0 0";
        assert_eq!(parse_stat_cpu(line), Some(3.0));
    }

    #[test]
    fn rss_lines_are_parsed_in_kb() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_status_rss(status), Some((1024, 2048)));
        assert_eq!(parse_status_rss("Name: x\n"), None);
    }

    #[test]
    fn this_process_has_used_cpu_and_memory() {
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        assert!(cpu_seconds("self").unwrap() >= 0.0);
        let (rss, hwm) = rss_kb("self").unwrap();
        assert!(rss > 0 && hwm >= rss);
    }
}
