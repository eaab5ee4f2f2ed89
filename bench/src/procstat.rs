//! Server-side cost read from `/proc`: CPU time (utime + stime) and resident memory.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Clock ticks per second (`USER_HZ`), from `getconf CLK_TCK`; 100 on every Linux we run on.
pub fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat).map(|(_, ticks)| ticks)
}

/// (comm, utime + stime) from the text of `/proc/PID/stat`.
fn parse_stat(stat: &str) -> Option<(&str, u64)> {
    // "pid (comm) state ppid …": comm may contain spaces and parentheses, so split at the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// (VmRSS, VmHWM) of a process, in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU ticks of every process whose command name is `comm` (e.g. `postgres`), by PID.
pub fn cpu_ticks_by_comm(comm: &str) -> HashMap<u32, u64> {
    let mut found = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((name, ticks)) = parse_stat(&stat)
            && name == comm
        {
            found.insert(pid, ticks);
        }
    }
    found
}

/// CPU seconds spent between two [`cpu_ticks_by_comm`] snapshots (processes that appeared in
/// between count from zero; processes that exited in between are lost).
pub fn cpu_seconds_between(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> f64 {
    let ticks: u64 = after
        .iter()
        .map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum();
    ticks as f64 / clock_ticks() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let line = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 \
                    100 1000000 500 18446744073709551615";
        assert_eq!(parse_stat(line), Some(("my (odd) prog", 300)));
    }

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_some());
        let (rss, hwm) = memory_kib(pid).expect("own /proc/PID/status");
        assert!(rss > 0 && hwm >= rss);
    }
}
