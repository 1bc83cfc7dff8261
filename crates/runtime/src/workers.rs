//! The async runtime a service's `main` runs on, with as many worker threads
//! as `FOCO_WORKER_THREADS` says.
//!
//! Unset, a service gets one worker per CPU it may run on (its affinity and
//! its cgroup's CPU quota, as `std::thread::available_parallelism` reads
//! them). That suits a service alone on its machine. Where it shares the
//! machine (several services on one host, a pod with a CPU request and no
//! limit on a large node), workers beyond its share of the CPU only hand
//! tasks to one another and wake each other up; the Kubernetes manifests set
//! the variable from the container's CPU request.

use std::num::NonZeroUsize;

use crate::env::{ConfigError, Env};

pub const WORKER_THREADS_ENV: &str = "FOCO_WORKER_THREADS";

/// More workers than this is a typo, not a machine.
const MOST_WORKER_THREADS: usize = 1024;

/// The worker count `env` asks for, or one per CPU the process may use.
pub fn worker_threads(env: &Env) -> Result<usize, ConfigError> {
    let default = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = env.positive_or(WORKER_THREADS_ENV, default)?;
    if threads > MOST_WORKER_THREADS {
        return Err(ConfigError::new(
            WORKER_THREADS_ENV,
            &threads.to_string(),
            format!("must be at most {MOST_WORKER_THREADS}"),
        ));
    }
    Ok(threads)
}

/// The runtime for `binary`'s `main`, sized from the process environment. A
/// bad `FOCO_WORKER_THREADS`, or a runtime the system refuses to start, ends
/// the process with status 2 and the reason on stderr, as other settings do.
pub fn runtime(binary: &str) -> tokio::runtime::Runtime {
    let built = worker_threads(&Env::process())
        .map_err(|error| error.to_string())
        .and_then(|threads| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
                .map_err(|error| format!("cannot start the async runtime: {error}"))
        });
    match built {
        Ok(runtime) => runtime,
        Err(reason) => {
            eprintln!("{binary}: {reason}");
            std::process::exit(2);
        }
    }
}

/// The worker count of the runtime this is called on, for the start-up log.
pub fn current() -> usize {
    tokio::runtime::Handle::current().metrics().num_workers()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_means_one_worker_per_usable_cpu() {
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert_eq!(
            worker_threads(&Env::from_pairs([("A", "b")])).unwrap(),
            cpus
        );
        assert_eq!(
            worker_threads(&Env::from_pairs([(WORKER_THREADS_ENV, " ")])).unwrap(),
            cpus
        );
    }

    #[test]
    fn a_count_is_taken_as_given() {
        for (value, threads) in [("1", 1), (" 3 ", 3), ("1024", 1024)] {
            let env = Env::from_pairs([(WORKER_THREADS_ENV, value)]);
            assert_eq!(worker_threads(&env).unwrap(), threads, "{value:?}");
        }
    }

    #[test]
    fn zero_too_many_and_words_are_refused_by_name() {
        for (value, reason) in [
            ("0", "must be at least 1"),
            ("1025", "must be at most 1024"),
            ("-1", "invalid digit"),
            ("two", "invalid digit"),
            ("500m", "invalid digit"),
        ] {
            let error = worker_threads(&Env::from_pairs([(WORKER_THREADS_ENV, value)]))
                .expect_err(value)
                .to_string();
            assert!(error.starts_with("invalid FOCO_WORKER_THREADS="), "{error}");
            assert!(error.contains(reason), "{value:?}: {error}");
        }
    }
}
