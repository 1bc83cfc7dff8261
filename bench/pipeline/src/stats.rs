//! Percentiles that stay honest about what was not delivered, and how figures are
//! printed.

/// Latencies in microseconds of the SMS that arrived, plus how many expected SMS
/// had not arrived when the wait ended and the least latency any of them can
/// have (now − the latest timestamp sent).
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    sorted_us: Vec<u64>,
    pub missing: u64,
    pub missing_at_least_us: u64,
}

/// A percentile: a measured value, or only a lower bound when it falls among the
/// SMS that never arrived.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Percentile {
    Value(u64),
    AtLeast(u64),
    None,
}

impl Latencies {
    pub fn new(mut latencies_us: Vec<u64>, missing: u64, missing_at_least_us: u64) -> Self {
        latencies_us.sort_unstable();
        Self {
            sorted_us: latencies_us,
            missing,
            missing_at_least_us,
        }
    }

    pub fn delivered(&self) -> usize {
        self.sorted_us.len()
    }

    /// Nearest-rank percentile over delivered and missing SMS together, the
    /// missing ones ranked last: leaving them out would flatter a pipeline that
    /// fell behind.
    pub fn percentile(&self, percentile: f64) -> Percentile {
        let total = self.sorted_us.len() as u64 + self.missing;
        if total == 0 {
            return Percentile::None;
        }
        let rank = ((percentile / 100.0) * total as f64).ceil().max(1.0) as u64;
        match self.sorted_us.get((rank - 1) as usize) {
            Some(value) => Percentile::Value(*value),
            None => Percentile::AtLeast(self.missing_at_least_us),
        }
    }

    pub fn max(&self) -> Percentile {
        if self.missing > 0 {
            return Percentile::AtLeast(self.missing_at_least_us);
        }
        self.sorted_us
            .last()
            .map_or(Percentile::None, |value| Percentile::Value(*value))
    }
}

impl std::fmt::Display for Percentile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Percentile::Value(micros) => duration_us(*micros),
            Percentile::AtLeast(micros) => format!(">{}", duration_us(*micros)),
            Percentile::None => "-".to_owned(),
        };
        formatter.pad(&text)
    }
}

/// `0.62 ms`, `25.3 ms`, `1.25 s`: three significant figures at most.
pub fn duration_us(micros: u64) -> String {
    let millis = micros as f64 / 1000.0;
    if millis < 10.0 {
        format!("{millis:.2} ms")
    } else if millis < 1000.0 {
        format!("{millis:.1} ms")
    } else if millis < 100_000.0 {
        format!("{:.2} s", millis / 1000.0)
    } else {
        format!("{:.0} s", millis / 1000.0)
    }
}

/// Percentile of a plain sample (no missing values), e.g. request latencies.
pub fn plain_percentile(sorted: &[u64], percentile: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((percentile / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// The p99 of each second of sending, for SMS that arrived: whether a phase's
/// tail is spread over the run or comes from a few bad seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondsSpread {
    /// Seconds with at least one SMS.
    pub seconds: usize,
    pub best_us: u64,
    pub median_us: u64,
    pub worst_us: u64,
    /// The worst second, counted from 0 at the load's start.
    pub worst_second: u64,
}

impl SecondsSpread {
    /// `samples` are (send time, latency) in µs; `start_us` is the load's start.
    /// `None` without samples.
    pub fn new(samples: &[(u64, u64)], start_us: u64) -> Option<Self> {
        let mut by_second: std::collections::BTreeMap<u64, Vec<u64>> =
            std::collections::BTreeMap::new();
        for (sent_us, latency_us) in samples {
            let second = sent_us.saturating_sub(start_us) / 1_000_000;
            by_second.entry(second).or_default().push(*latency_us);
        }
        let mut p99s: Vec<(u64, u64)> = by_second
            .into_iter()
            .map(|(second, mut latencies)| {
                latencies.sort_unstable();
                (plain_percentile(&latencies, 99.0), second)
            })
            .collect();
        p99s.sort_unstable();
        let (worst_us, worst_second) = *p99s.last()?;
        Some(Self {
            seconds: p99s.len(),
            best_us: p99s[0].0,
            median_us: p99s[(p99s.len() - 1) / 2].0,
            worst_us,
            worst_second,
        })
    }
}

/// A count per second, or `-` without a duration.
pub fn rate(count: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "-".to_owned();
    }
    format!("{:.0}", count as f64 / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_sms_rank_last_and_give_lower_bounds() {
        let latencies = Latencies::new((1..=98).collect(), 2, 5_000_000);
        assert_eq!(latencies.percentile(50.0), Percentile::Value(50));
        assert_eq!(latencies.percentile(98.0), Percentile::Value(98));
        assert_eq!(latencies.percentile(99.0), Percentile::AtLeast(5_000_000));
        assert_eq!(latencies.max(), Percentile::AtLeast(5_000_000));
        assert_eq!(latencies.percentile(99.0).to_string(), ">5.00 s");
        let complete = Latencies::new(vec![3, 1, 2], 0, 0);
        assert_eq!(complete.percentile(100.0), Percentile::Value(3));
        assert_eq!(complete.max(), Percentile::Value(3));
        assert_eq!(Latencies::default().percentile(50.0), Percentile::None);
    }

    #[test]
    fn durations_print_with_sensible_units() {
        assert_eq!(duration_us(620), "0.62 ms");
        assert_eq!(duration_us(25_300), "25.3 ms");
        assert_eq!(duration_us(1_250_000), "1.25 s");
        assert_eq!(duration_us(250_000_000), "250 s");
        assert_eq!(plain_percentile(&[1, 2, 3, 4], 50.0), 2);
    }

    #[test]
    fn each_second_has_its_own_p99() {
        let start = 5_000_000;
        // Second 0: 1..=100 µs (p99 99); second 1: 500 µs each; second 2: one
        // slow SMS among 51 (its p99).
        let mut samples: Vec<(u64, u64)> = (1..=100).map(|l| (start + l * 1_000, l)).collect();
        samples.extend((0..50).map(|i| (start + 1_000_000 + i, 500)));
        samples.extend((0..50).map(|i| (start + 2_000_000 + i, 10)));
        samples.push((start + 2_999_999, 90_000));
        let spread = SecondsSpread::new(&samples, start).unwrap();
        assert_eq!(
            spread,
            SecondsSpread {
                seconds: 3,
                best_us: 99,
                median_us: 500,
                worst_us: 90_000,
                worst_second: 2,
            }
        );
        assert_eq!(SecondsSpread::new(&[], start), None);
    }
}
