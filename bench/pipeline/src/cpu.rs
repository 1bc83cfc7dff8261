//! CPU time per process from `/proc/<pid>/stat`, for "CPU per delivered SMS".
//!
//! Processes the benchmark started are read by pid (another engineer's
//! `foco-rules` on the same machine is not counted). The shared servers are read
//! by command name: every `nats-server`, and every `postgres` process including
//! what the postmaster has collected from backends that exited (their CPU moves
//! to its children's time when they end, so a pool that reconnects is still
//! counted). Linux only; elsewhere every reading is zero.

use std::time::Duration;

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// utime, stime, cutime, cstime in ticks.
fn stat_ticks(path: &str) -> Option<[u64; 4]> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may contain spaces; the fields after it start at state (3).
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |index: usize| fields.get(index)?.parse::<u64>().ok();
    // utime, stime, cutime, cstime are fields 14 to 17, i.e. 11 to 14 after state.
    Some([field(11)?, field(12)?, field(13)?, field(14)?])
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

/// User + system CPU of one process so far; zero once it has gone.
pub fn process(pid: u32) -> Duration {
    stat_ticks(&format!("/proc/{pid}/stat"))
        .map(|[user, system, _, _]| ticks_to_duration(user + system))
        .unwrap_or_default()
}

/// User + system CPU of this process so far.
pub fn this_process() -> Duration {
    stat_ticks("/proc/self/stat")
        .map(|[user, system, _, _]| ticks_to_duration(user + system))
        .unwrap_or_default()
}

/// CPU of every process whose command name is `command`, with the CPU of the
/// children each has reaped.
pub fn processes_named(command: &str) -> Duration {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    let ticks: u64 = entries
        .flatten()
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("comm"))
                .is_ok_and(|comm| comm.trim() == command)
        })
        .filter_map(|entry| stat_ticks(&format!("{}/stat", entry.path().display())))
        .map(|ticks| ticks.iter().sum::<u64>())
        .sum();
    ticks_to_duration(ticks)
}

/// Number of CPUs this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_is_readable_by_pid_and_by_self() {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut x = 0_u64;
        while this_process() == Duration::ZERO {
            assert!(std::time::Instant::now() < deadline, "CPU never moved");
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        assert!(process(std::process::id()) > Duration::ZERO);
        assert_eq!(processes_named("no-such-command-here"), Duration::ZERO);
    }
}
