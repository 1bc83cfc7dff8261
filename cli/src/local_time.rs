//! Times in the account's time zone: a send time means more to the shop owner as
//! "10:00 in Mexico City" than as UTC. Falls back to UTC when the zone is unknown.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use foco_control_client::ControlApi;
use foco_proto::v1::GetAccountRequest;

/// The zone times are shown in: the account's, or UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DisplayZone(Option<Tz>);

impl DisplayZone {
    pub const UTC: Self = Self(None);

    /// Parses an IANA name; an unknown or empty name shows times in UTC.
    pub fn named(name: &str) -> Self {
        Self(name.parse().ok())
    }

    /// The account's zone, or UTC when the account cannot be read: a preview or
    /// listing is still worth showing without it.
    pub async fn of_account(api: &mut ControlApi, account: &str) -> Self {
        match api
            .get_account(GetAccountRequest {
                account: account.to_owned(),
            })
            .await
        {
            Ok(found) => Self::named(&found.into_inner().timezone),
            Err(_) => Self::UTC,
        }
    }

    pub fn name(self) -> &'static str {
        self.0.map_or("UTC", |zone| zone.name())
    }

    /// Unix milliseconds as RFC 3339 with this zone's offset; 0 (unset) is `None`.
    pub fn rfc3339(self, millis: i64) -> Option<String> {
        if millis == 0 {
            return None;
        }
        let at = DateTime::<Utc>::from_timestamp_millis(millis)?;
        Some(match self.0 {
            Some(zone) => at
                .with_timezone(&zone)
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            None => at.to_rfc3339_opts(SecondsFormat::Secs, true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_carry_the_account_offset() {
        let mexico = DisplayZone::named("America/Mexico_City");
        assert_eq!(mexico.name(), "America/Mexico_City");
        assert_eq!(
            mexico.rfc3339(1_700_000_000_000).unwrap(),
            "2023-11-14T16:13:20-06:00"
        );
        assert_eq!(mexico.rfc3339(0), None);
        let unknown = DisplayZone::named("Mars/Olympus");
        assert_eq!(unknown, DisplayZone::UTC);
        assert_eq!(
            unknown.rfc3339(1_700_000_000_000).unwrap(),
            "2023-11-14T22:13:20Z"
        );
    }
}
