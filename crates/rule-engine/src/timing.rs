//! When a delayed job is due: a fixed delay after the event, or a send time
//! rendered from the payload and read in the account's time zone.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The longest delay a rule may ask for.
pub const MAX_DELAY: Duration = Duration::from_secs(400 * 24 * 3600);

pub fn parse_delay(text: &str) -> Result<Duration, String> {
    let delay = humantime::parse_duration(text.trim())
        .map_err(|error| format!("{text:?} is not a duration like 30m, 5d or 1h30m: {error}"))?;
    if delay > MAX_DELAY {
        return Err(format!("{text:?} is longer than 400 days"));
    }
    Ok(delay)
}

/// RFC 3339 (`2026-12-01T09:00:00-06:00`), or a local date and time
/// (`2026-12-01 09:00`, `2026-12-01T09:00:00`) in `zone`. The text comes from
/// the payload, so the error does not quote it.
pub fn parse_instant_in(text: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            // A time skipped by a DST change moves to the first valid instant after it.
            return zone
                .from_local_datetime(&naive)
                .earliest()
                .or_else(|| {
                    zone.from_local_datetime(&(naive + chrono::Duration::hours(1)))
                        .earliest()
                })
                .map(|local| local.with_timezone(&Utc))
                .ok_or_else(|| format!("the local time does not exist in {zone}"));
        }
    }
    Err("not a time (RFC 3339 or \"YYYY-MM-DD HH:MM\")".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_and_local_times() {
        assert_eq!(parse_delay("5d").unwrap(), Duration::from_secs(5 * 86400));
        assert_eq!(parse_delay("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_delay("soon").is_err());
        assert!(parse_delay("1000d").is_err());
        let zone: Tz = "America/Mexico_City".parse().unwrap();
        let instant = parse_instant_in("2026-12-01 09:00", zone).unwrap();
        assert_eq!(instant.to_rfc3339(), "2026-12-01T15:00:00+00:00");
        let instant = parse_instant_in("2026-12-01T09:00:00-05:00", zone).unwrap();
        assert_eq!(instant.to_rfc3339(), "2026-12-01T14:00:00+00:00");
        assert!(parse_instant_in("mañana", zone).is_err());
    }
}
