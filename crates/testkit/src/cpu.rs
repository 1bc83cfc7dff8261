//! CPU time read from `/proc`, for benchmarks that say where each unit of work's
//! CPU went: this process, one of its threads, or other processes on the machine
//! (nats-server, postgres). Linux only; elsewhere every reading is zero.

use std::time::Duration;

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// User + system CPU time from a `/proc/.../stat` file.
fn stat_cpu(path: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return Duration::ZERO;
    };
    // The command name may contain spaces; fields after it start at state (3).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state.
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / TICKS_PER_SECOND)
}

/// CPU time of this process so far.
pub fn this_process() -> Duration {
    stat_cpu("/proc/self/stat")
}

/// The calling thread's id, for `thread` (Linux `gettid` via `/proc/thread-self`).
pub fn current_thread_id() -> Option<u32> {
    std::fs::read_link("/proc/thread-self")
        .ok()?
        .file_name()?
        .to_str()?
        .parse()
        .ok()
}

/// CPU time of one thread of this process.
pub fn thread(thread_id: u32) -> Duration {
    stat_cpu(&format!("/proc/self/task/{thread_id}/stat"))
}

/// CPU time of every process on the machine whose command name is `command`
/// (`nats-server`, `postgres`). Processes that ended meanwhile are not counted,
/// so sample long-lived ones (a connection pool's backends).
pub fn processes_named(command: &str) -> Duration {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    entries
        .flatten()
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("comm"))
                .is_ok_and(|comm| comm.trim() == command)
        })
        .map(|entry| stat_cpu(&format!("{}/stat", entry.path().display())))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn busy_work_shows_up_in_this_process_and_thread() {
        let thread_id = current_thread_id().expect("thread id");
        let (process_before, thread_before) = (this_process(), thread(thread_id));
        // Readings move in clock ticks: spin until this thread's moves (a loaded
        // machine may give it little of the wall time), within a generous bound.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut x = 0_u64;
        // The thread's and the process's readings are rounded to ticks
        // separately (the kernel scales each on its own), so one can move a
        // reading before the other: spin until both have.
        while thread(thread_id) == thread_before || this_process() <= process_before {
            assert!(
                std::time::Instant::now() < deadline,
                "CPU time never moved (thread {:?}, process {:?})",
                thread(thread_id).saturating_sub(thread_before),
                this_process().saturating_sub(process_before)
            );
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        assert_eq!(processes_named("no-such-command-here"), Duration::ZERO);
    }
}
