//! Phone numbers for Foco: they arrive in whatever format a payload used
//! ("55 1234 5678", "(415) 555-2671", "+52 1 55 …"); providers need E.164. Local
//! numbers are read with the account's default country. Used by the rules service
//! (recipients are deduplicated after normalisation, invalid ones reported) and the
//! sender (the last check before a provider call). Parsing only: no I/O.

use std::sync::LazyLock;

use phonenumber::{Mode, country};

/// Recent answers of `normalize_e164`. Parsing a number runs the metadata's
/// regular expressions (tens of µs); the same numbers come back all the time (an
/// owner's fixed number on every sale, a job's recipient checked again by the
/// sender), so a bounded cache saves most of it.
static RECENT: LazyLock<moka::sync::Cache<(String, String), Result<String, PhoneError>>> =
    LazyLock::new(|| moka::sync::Cache::new(50_000));

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("invalid phone number")]
    Invalid,
}

/// Normalises `raw` to E.164 (`+525512345678`). `default_country` is an ISO 3166-1
/// alpha-2 code; an empty or unknown code means only international numbers
/// (with `+` or an international prefix) can be read.
pub fn normalize_e164(raw: &str, default_country: &str) -> Result<String, PhoneError> {
    if raw.len() > 64 {
        return Err(PhoneError::Invalid);
    }
    let key = (default_country.to_owned(), raw.to_owned());
    RECENT.get_with_by_ref(&key, || parse_e164(raw, default_country))
}

fn parse_e164(raw: &str, default_country: &str) -> Result<String, PhoneError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.len() > 64 {
        return Err(PhoneError::Invalid);
    }
    let country = default_country
        .trim()
        .to_ascii_uppercase()
        .parse::<country::Id>()
        .ok();
    let number = phonenumber::parse(country, trimmed).map_err(|_| PhoneError::Invalid)?;
    if !phonenumber::is_valid(&number) {
        return Err(PhoneError::Invalid);
    }
    Ok(number.format().mode(Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mexican_numbers_in_several_formats() {
        for raw in [
            "55 1234 5678",
            "5512345678",
            "(55) 1234-5678",
            "+52 55 1234 5678",
            "+525512345678",
            "0052 55 1234 5678",
            " 55-1234-5678 ",
        ] {
            assert_eq!(
                normalize_e164(raw, "MX").as_deref(),
                Ok("+525512345678"),
                "{raw}"
            );
        }
    }

    #[test]
    fn us_numbers_in_several_formats() {
        for raw in [
            "(415) 555-2671",
            "415-555-2671",
            "415.555.2671",
            "4155552671",
            "1 415 555 2671",
            "+1 415 555 2671",
            "+14155552671",
        ] {
            assert_eq!(
                normalize_e164(raw, "US").as_deref(),
                Ok("+14155552671"),
                "{raw}"
            );
        }
    }

    #[test]
    fn international_numbers_ignore_the_default_country() {
        assert_eq!(
            normalize_e164("+14155552671", "MX").as_deref(),
            Ok("+14155552671")
        );
        assert_eq!(
            normalize_e164("+525512345678", "us").as_deref(),
            Ok("+525512345678")
        );
        assert_eq!(
            normalize_e164("+525512345678", "").as_deref(),
            Ok("+525512345678")
        );
    }

    #[test]
    fn invalid_numbers_are_refused() {
        for (raw, country) in [
            ("", "MX"),
            ("hola", "MX"),
            ("123", "MX"),
            ("55 1234", "MX"),
            ("4155552671", ""),
            ("+1 000 000 0000", "US"),
            ("555-0100-0000-0000-0000", "US"),
        ] {
            assert_eq!(
                normalize_e164(raw, country),
                Err(PhoneError::Invalid),
                "{raw:?} in {country:?}"
            );
        }
    }
}
