//! Quiet hours: marketing messages are not sent while it is night where the
//! recipient is. The recipient's time zone comes from the number's country; a
//! country spanning several zones counts as quiet while any of its (main) zones
//! is quiet, so nobody is texted at night. Numbers of countries not in the table
//! use the account's time zone. Transactional messages are never held.

use chrono::{DateTime, Duration as ChronoDuration, NaiveTime, TimeZone as _, Timelike as _, Utc};
use chrono_tz::Tz;

/// A daily window `[start, end)` in local time; it may wrap midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// Minutes after local midnight.
    start: u32,
    end: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quiet hours must look like 21:00-08:00 (or be `off`)")]
pub struct InvalidQuietHours;

impl QuietHours {
    pub const DEFAULT: Self = Self {
        start: 21 * 60,
        end: 8 * 60,
    };

    /// `"21:00-08:00"`, or `off`/`none`/empty for no quiet hours.
    pub fn parse(text: &str) -> Result<Option<Self>, InvalidQuietHours> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("none")
        {
            return Ok(None);
        }
        let (start, end) = text.split_once('-').ok_or(InvalidQuietHours)?;
        let minutes = |part: &str| -> Result<u32, InvalidQuietHours> {
            let time =
                NaiveTime::parse_from_str(part.trim(), "%H:%M").map_err(|_| InvalidQuietHours)?;
            Ok(time.hour() * 60 + time.minute())
        };
        let (start, end) = (minutes(start)?, minutes(end)?);
        if start == end {
            return Err(InvalidQuietHours);
        }
        Ok(Some(Self { start, end }))
    }

    fn contains(self, minute_of_day: u32) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute_of_day)
        } else {
            minute_of_day >= self.start || minute_of_day < self.end
        }
    }

    /// The first instant after `at` at which the quiet period that contains it
    /// ends in `zone`, or `None` when `at` is not quiet there.
    fn quiet_end(self, at: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&zone);
        let minute = local.hour() * 60 + local.minute();
        if !self.contains(minute) {
            return None;
        }
        let mut date = local.date_naive();
        if self.start > self.end && minute >= self.start {
            date = date.succ_opt()?;
        }
        let end_time = NaiveTime::from_hms_opt(self.end / 60, self.end % 60, 0)?;
        let naive_end = date.and_time(end_time);
        // A DST gap can swallow the end time; an hour later exists.
        zone.from_local_datetime(&naive_end)
            .earliest()
            .or_else(|| {
                zone.from_local_datetime(&(naive_end + ChronoDuration::hours(1)))
                    .earliest()
            })
            .map(|end| end.with_timezone(&Utc))
    }

    /// When a marketing message to a recipient in `zones` may go out: `None` now,
    /// else the first instant no zone is quiet (the first zone alone if the zones
    /// never agree, which a sane window and country never produce).
    pub fn release_time(self, now: DateTime<Utc>, zones: &[Tz]) -> Option<DateTime<Utc>> {
        let first_quiet_end = zones.iter().find_map(|zone| self.quiet_end(now, *zone))?;
        let mut at = now;
        for _ in 0..4 {
            let latest_end = zones
                .iter()
                .filter_map(|zone| self.quiet_end(at, *zone))
                .max();
            match latest_end {
                None => return Some(at),
                Some(end) => at = end,
            }
        }
        Some(first_quiet_end)
    }
}

/// The time zones of a number's country, else the account's zone, else UTC.
pub fn recipient_zones(e164: &str, account_timezone: &str) -> Vec<Tz> {
    let from_country = phonenumber::parse(None, e164)
        .ok()
        .and_then(|number| number.country().id())
        .map(|id| country_zones(id.as_ref()))
        .unwrap_or_default();
    let zones: Vec<Tz> = from_country
        .iter()
        .filter_map(|name| name.parse::<Tz>().ok())
        .collect();
    if !zones.is_empty() {
        return zones;
    }
    vec![account_timezone.parse::<Tz>().unwrap_or(Tz::UTC)]
}

/// Main zones of the countries Foco's users text most. Countries not listed fall
/// back to the account's zone.
fn country_zones(iso: &str) -> &'static [&'static str] {
    match iso {
        "MX" => &["America/Tijuana", "America/Mexico_City", "America/Cancun"],
        "US" => &[
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Los_Angeles",
        ],
        "CA" => &[
            "America/Halifax",
            "America/Toronto",
            "America/Winnipeg",
            "America/Edmonton",
            "America/Vancouver",
        ],
        "BR" => &["America/Sao_Paulo", "America/Manaus"],
        "AR" => &["America/Argentina/Buenos_Aires"],
        "CL" => &["America/Santiago"],
        "CO" => &["America/Bogota"],
        "PE" => &["America/Lima"],
        "EC" => &["America/Guayaquil"],
        "VE" => &["America/Caracas"],
        "UY" => &["America/Montevideo"],
        "PY" => &["America/Asuncion"],
        "BO" => &["America/La_Paz"],
        "GT" => &["America/Guatemala"],
        "SV" => &["America/El_Salvador"],
        "HN" => &["America/Tegucigalpa"],
        "NI" => &["America/Managua"],
        "CR" => &["America/Costa_Rica"],
        "PA" => &["America/Panama"],
        "DO" => &["America/Santo_Domingo"],
        "PR" => &["America/Puerto_Rico"],
        "ES" => &["Europe/Madrid"],
        "PT" => &["Europe/Lisbon"],
        "GB" => &["Europe/London"],
        "FR" => &["Europe/Paris"],
        "DE" => &["Europe/Berlin"],
        "IT" => &["Europe/Rome"],
        "NL" => &["Europe/Amsterdam"],
        "IN" => &["Asia/Kolkata"],
        "AU" => &["Australia/Perth", "Australia/Adelaide", "Australia/Sydney"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn windows_parse_and_wrap_midnight() {
        let window = QuietHours::parse("21:00-08:00").unwrap().unwrap();
        assert_eq!(window, QuietHours::DEFAULT);
        assert!(window.contains(22 * 60));
        assert!(window.contains(7 * 60 + 59));
        assert!(!window.contains(8 * 60));
        assert!(!window.contains(12 * 60));
        let daytime = QuietHours::parse("12:00-13:30").unwrap().unwrap();
        assert!(daytime.contains(12 * 60 + 10));
        assert!(!daytime.contains(13 * 60 + 30));
        assert_eq!(QuietHours::parse("off"), Ok(None));
        assert!(QuietHours::parse("9pm-8am").is_err());
        assert!(QuietHours::parse("08:00-08:00").is_err());
    }

    #[test]
    fn a_mexico_city_night_releases_at_eight_local() {
        let zones = recipient_zones("+525512345678", "UTC");
        assert!(zones.contains(&chrono_tz::America::Mexico_City));
        // 23:30 in Mexico City (UTC-6) = 05:30 UTC.
        let release = QuietHours::DEFAULT
            .release_time(
                utc("2026-03-03T05:30:00Z"),
                &[chrono_tz::America::Mexico_City],
            )
            .unwrap();
        assert_eq!(release, utc("2026-03-03T14:00:00Z"));
        // Noon there: not quiet.
        assert_eq!(
            QuietHours::DEFAULT.release_time(
                utc("2026-03-03T18:00:00Z"),
                &[chrono_tz::America::Mexico_City]
            ),
            None
        );
    }

    #[test]
    fn a_country_with_several_zones_waits_for_the_last_morning() {
        let zones = recipient_zones("+14155552671", "UTC");
        // 07:30 in New York is 04:30 in Los Angeles: quiet until 08:00 in LA.
        let release = QuietHours::DEFAULT
            .release_time(utc("2026-07-01T11:30:00Z"), &zones)
            .unwrap();
        assert_eq!(release, utc("2026-07-01T15:00:00Z"));
    }

    #[test]
    fn unknown_countries_use_the_account_zone() {
        assert_eq!(
            recipient_zones("+2348031234567", "Africa/Lagos"),
            vec![chrono_tz::Africa::Lagos]
        );
        assert_eq!(recipient_zones("+2348031234567", "nonsense"), vec![Tz::UTC]);
    }
}
