//! CPU time per process from `/proc/<pid>/stat`, for "CPU per delivered SMS",
//! and the peak resident memory of a process from `/proc/<pid>/status`.
//!
//! Processes the benchmark started are read by pid (another engineer's
//! `foco-rules` on the same machine is not counted). `nats-server` is read by
//! command name, so anything else using the server counts too. PostgreSQL is read
//! per backend: those serving the phase's database (their process title names
//! it) plus the server's own processes (WAL writer, checkpointer, ...), but not
//! the backends of other databases, which tests running beside the benchmark
//! keep busy. A backend that exits during a phase takes its CPU with it: the
//! services keep their pools open, so that is rare. Linux only; elsewhere every
//! reading is zero.

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

/// The most memory `pid` has held resident since it started (`VmHWM`), in
/// bytes; `None` once it has gone, or where `/proc` does not say.
pub fn peak_resident_bytes(pid: u32) -> Option<u64> {
    peak_resident_of(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn peak_resident_of(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib = line
        .trim_start_matches("VmHWM:")
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// User + system CPU of this process so far.
pub fn this_process() -> Duration {
    stat_ticks("/proc/self/stat")
        .map(|[user, system, _, _]| ticks_to_duration(user + system))
        .unwrap_or_default()
}

/// User + system CPU of every process whose command name is `command` and whose
/// command line `keep` accepts.
fn processes_where(command: &str, keep: impl Fn(&str) -> bool) -> Duration {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    let ticks: u64 = entries
        .flatten()
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("comm"))
                .is_ok_and(|comm| comm.trim() == command)
        })
        .filter(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            keep(&String::from_utf8_lossy(&cmdline).replace('\0', " "))
        })
        .filter_map(|entry| stat_ticks(&format!("{}/stat", entry.path().display())))
        .map(|[user, system, _, _]| user + system)
        .sum();
    ticks_to_duration(ticks)
}

/// CPU of every process whose command name is `command`.
pub fn processes_named(command: &str) -> Duration {
    processes_where(command, |_| true)
}

/// CPU of the PostgreSQL processes that work for `database`: its backends and
/// the server's own processes.
pub fn postgres_serving(database: &str) -> Duration {
    processes_where("postgres", |cmdline| is_serving(cmdline, database))
}

/// A client backend's title is `postgres: <cluster>: <user> <database> <host>(<port>) <state>`
/// (or `[local]` for a Unix socket); the server's own processes name no client.
fn is_serving(cmdline: &str, database: &str) -> bool {
    let names_database =
        !database.is_empty() && cmdline.split_whitespace().any(|word| word == database);
    let is_client_backend = cmdline.contains('(') || cmdline.contains("[local]");
    names_database || !is_client_backend
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
        assert!(peak_resident_bytes(std::process::id()).is_some_and(|bytes| bytes > 0));
    }

    #[test]
    fn the_peak_resident_size_is_read_in_bytes() {
        let status =
            "Name:\tfoco-sender\nVmPeak:\t 1234568 kB\nVmHWM:\t  114432 kB\nVmRSS:\t   98304 kB\n";
        assert_eq!(peak_resident_of(status), Some(114_432 * 1024));
        assert_eq!(peak_resident_of("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn postgres_processes_count_for_their_database_or_the_server() {
        let ours = "postgres: 15/main: postgres foco_test_abc 127.0.0.1(51234) idle";
        let theirs = "postgres: 15/main: postgres foco_test_xyz 127.0.0.1(51235) idle";
        let local = "postgres: 15/main: postgres other [local] idle";
        assert!(is_serving(ours, "foco_test_abc"));
        assert!(!is_serving(theirs, "foco_test_abc"));
        assert!(!is_serving(local, "foco_test_abc"));
        assert!(is_serving("postgres: 15/main: walwriter", "foco_test_abc"));
        assert!(is_serving(
            "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main",
            ""
        ));
        assert!(!is_serving(ours, ""));
    }
}
