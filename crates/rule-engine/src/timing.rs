//! When a delayed job is due: a fixed delay after the event, or a send time
//! rendered from the payload and read in the account's time zone; and how long
//! after that a job may still go out (its validity).

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

/// How long after its due time a job may go out when neither its rule (or
/// `SendMessage` call) nor its account says: an hour, so a reminder whose
/// `send_at` was already past, or that waited out an outage, does not arrive
/// after the appointment it announces.
pub const DEFAULT_VALID_FOR: Duration = Duration::from_secs(3600);
/// The shortest validity: less would expire jobs on clock skew and ordinary
/// queueing.
pub const MIN_VALID_FOR: Duration = Duration::from_secs(60);

/// A `valid_for` ("10m", "2h", "3d"): at least a minute, at most 400 days.
pub fn parse_valid_for(text: &str) -> Result<Duration, String> {
    let valid_for = humantime::parse_duration(text.trim())
        .map_err(|error| format!("{text:?} is not a duration like 10m, 2h or 3d: {error}"))?;
    if valid_for < MIN_VALID_FOR {
        return Err(format!("{text:?} is shorter than a minute"));
    }
    if valid_for > MAX_DELAY {
        return Err(format!("{text:?} is longer than 400 days"));
    }
    Ok(valid_for)
}

/// The validity of a job: its own `valid_for` when set, else the account's
/// `default_valid_for` when set, else [`DEFAULT_VALID_FOR`]. Both texts were
/// checked when saved; one that no longer parses counts as unset.
pub fn valid_for_or_default(own: Option<Duration>, account_default: &str) -> Duration {
    own.or_else(|| match account_default.trim() {
        "" => None,
        text => parse_valid_for(text).ok(),
    })
    .unwrap_or(DEFAULT_VALID_FOR)
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

    #[test]
    fn validity_bounds_and_fallbacks() {
        assert_eq!(parse_valid_for("2h").unwrap(), Duration::from_secs(7200));
        assert!(
            parse_valid_for("30s")
                .unwrap_err()
                .contains("shorter than a minute")
        );
        assert!(parse_valid_for("500d").unwrap_err().contains("400 days"));
        assert!(
            parse_valid_for("later")
                .unwrap_err()
                .contains("not a duration")
        );
        let own = Some(Duration::from_secs(600));
        assert_eq!(valid_for_or_default(own, "4h"), Duration::from_secs(600));
        assert_eq!(
            valid_for_or_default(None, "4h"),
            Duration::from_secs(4 * 3600)
        );
        assert_eq!(valid_for_or_default(None, ""), DEFAULT_VALID_FOR);
        assert_eq!(valid_for_or_default(None, "nonsense"), DEFAULT_VALID_FOR);
    }
}
