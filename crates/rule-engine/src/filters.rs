//! Template filters a Latin-American shop needs: money, dates in the account's
//! time zone and language, and first names.
//!
//! `{{ event.total_price | money("MXN") }}` → `$1,234.50`;
//! `{{ event.amount_total | money("USD", minor=true) }}` for minor units (Stripe);
//! `{{ event.created_at | date }}` / `date("long")` / `date("%H:%M")`;
//! `{{ event.customer.name | first_name }}`.

use chrono::{DateTime, TimeZone, Utc};
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

pub fn register(environment: &mut Environment<'static>) {
    environment.add_filter("money", money);
    environment.add_filter("date", date);
    environment.add_filter("first_name", first_name);
    environment.add_filter("shift", shift);
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

fn account_field(state: &State, field: &str) -> Option<String> {
    state
        .lookup("account")
        .and_then(|account| account.get_attr(field).ok())
        .and_then(|value| value.as_str().map(str::to_owned))
        .filter(|value| !value.is_empty())
}

/// Countries that write 1.234,50 rather than 1,234.50.
const COMMA_DECIMAL_COUNTRIES: &[&str] = &[
    "AR", "BR", "CL", "CO", "UY", "PY", "VE", "ES", "DE", "IT", "PT", "FR", "NL", "ID",
];

fn currency_style(currency: &str) -> (&'static str, u32) {
    match currency.to_ascii_uppercase().as_str() {
        "MXN" | "USD" | "CAD" | "AUD" | "ARS" | "COP" | "UYU" => ("$", 2),
        "CLP" => ("$", 0),
        "BRL" => ("R$", 2),
        "PEN" => ("S/", 2),
        "EUR" => ("€", 2),
        "GBP" => ("£", 2),
        "JPY" => ("¥", 0),
        "GTQ" => ("Q", 2),
        "CRC" => ("₡", 2),
        "PYG" => ("₲", 0),
        _ => ("", 2),
    }
}

/// Exact decimal from a string or a number, as (negative, integer digits,
/// fraction digits), without going through a float for strings.
fn parse_decimal(value: &Value) -> Result<(bool, String, String), Error> {
    let text = match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().trim().to_owned(),
        ValueKind::Number => value.to_string(),
        _ => {
            return Err(invalid(format!(
                "money expects a number or numeric string, got {}",
                value.kind()
            )));
        }
    };
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest.to_owned()),
        None => (false, text.clone()),
    };
    let (integer, fraction) = digits.split_once('.').unwrap_or((&digits, ""));
    let valid = !integer.is_empty()
        && integer.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return Err(invalid("money cannot read the value as an amount"));
    }
    Ok((negative, integer.to_owned(), fraction.to_owned()))
}

fn money(
    state: &State,
    value: Value,
    currency: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let minor: bool = kwargs.get::<Option<bool>>("minor")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let currency = currency.unwrap_or_default();
    let (symbol, decimals) = currency_style(&currency);
    let (negative, mut integer, mut fraction) = parse_decimal(&value)?;
    if minor {
        // Minor units (cents): move the point left by the currency's decimals.
        let all = format!("{integer}{fraction}");
        let width = decimals as usize + fraction.len();
        let padded = format!("{all:0>width$}", width = width + 1);
        let split = padded.len() - width;
        integer = padded[..split].trim_start_matches('0').to_owned();
        if integer.is_empty() {
            integer = "0".to_owned();
        }
        fraction = padded[split..].to_owned();
    }
    let (integer, fraction) = round_half_up(&integer, &fraction, decimals as usize);
    let comma_decimal = account_field(state, "default_country").is_some_and(|country| {
        COMMA_DECIMAL_COUNTRIES.contains(&country.to_ascii_uppercase().as_str())
    });
    let (thousands, point) = if comma_decimal {
        ('.', ',')
    } else {
        (',', '.')
    };
    let mut grouped = String::new();
    for (index, digit) in integer.chars().enumerate() {
        if index > 0 && (integer.len() - index) % 3 == 0 {
            grouped.push(thousands);
        }
        grouped.push(digit);
    }
    let sign = if negative && (integer != "0" || fraction.bytes().any(|b| b != b'0')) {
        "-"
    } else {
        ""
    };
    let number = if decimals == 0 {
        grouped
    } else {
        format!("{grouped}{point}{fraction}")
    };
    if symbol.is_empty() {
        let code = currency.to_ascii_uppercase();
        return Ok(format!("{sign}{number} {code}").trim().to_owned());
    }
    Ok(format!("{sign}{symbol}{number}"))
}

fn round_half_up(integer: &str, fraction: &str, decimals: usize) -> (String, String) {
    let mut digits: Vec<u8> = integer
        .bytes()
        .chain(
            fraction
                .bytes()
                .chain(std::iter::repeat(b'0'))
                .take(decimals),
        )
        .map(|b| b - b'0')
        .collect();
    let round_up = fraction
        .as_bytes()
        .get(decimals)
        .is_some_and(|&b| b >= b'5');
    if round_up {
        let mut index = digits.len();
        loop {
            if index == 0 {
                digits.insert(0, 1);
                break;
            }
            index -= 1;
            if digits[index] == 9 {
                digits[index] = 0;
            } else {
                digits[index] += 1;
                break;
            }
        }
    }
    let split = digits.len() - decimals;
    let to_string = |part: &[u8]| {
        part.iter()
            .map(|d| char::from(b'0' + d))
            .collect::<String>()
    };
    let integer = to_string(&digits[..split])
        .trim_start_matches('0')
        .to_owned();
    let integer = if integer.is_empty() {
        "0".to_owned()
    } else {
        integer
    };
    (integer, to_string(&digits[split..]))
}

const MONTHS_ES: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];
const MONTHS_PT: [&str; 12] = [
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
];
const PORTUGUESE_COUNTRIES: &[&str] = &["BR", "PT"];
const ENGLISH_COUNTRIES: &[&str] = &["US", "CA", "GB", "AU", "NZ", "IE"];

fn account_zone(state: &State) -> chrono_tz::Tz {
    account_field(state, "timezone")
        .and_then(|zone| zone.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// Numbers are unix seconds (or milliseconds); strings are RFC 3339, or a local
/// date and time in the account's time zone.
fn parse_instant(value: &Value, zone: chrono_tz::Tz) -> Result<DateTime<Utc>, Error> {
    match value.kind() {
        ValueKind::Number => {
            let number = i64::try_from(value.clone())
                .map_err(|_| invalid("date expects whole seconds or milliseconds"))?;
            // Values past year 2286 in seconds are milliseconds.
            let instant = if number.abs() >= 10_000_000_000 {
                Utc.timestamp_millis_opt(number).single()
            } else {
                Utc.timestamp_opt(number, 0).single()
            };
            instant.ok_or_else(|| invalid("date cannot read the number as a time"))
        }
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default();
            crate::timing::parse_instant_in(text, zone).map_err(invalid)
        }
        _ => Err(invalid(format!(
            "date expects a timestamp, got {}",
            value.kind()
        ))),
    }
}

/// Formats an instant in the account's time zone: `short` (default, 29/11/2026
/// 14:05), `long` (29 de noviembre de 2026, 14:05 in the account's language),
/// `time`, or any strftime pattern.
fn date(state: &State, value: Value, format: Option<String>) -> Result<String, Error> {
    let zone = account_zone(state);
    let instant = parse_instant(&value, zone)?;
    let local = instant.with_timezone(&zone);
    let country = account_field(state, "default_country")
        .unwrap_or_default()
        .to_ascii_uppercase();
    let format = format.unwrap_or_else(|| "short".to_owned());
    Ok(match format.as_str() {
        "short" if ENGLISH_COUNTRIES.contains(&country.as_str()) => {
            local.format("%m/%d/%Y %H:%M").to_string()
        }
        "short" => local.format("%d/%m/%Y %H:%M").to_string(),
        "time" => local.format("%H:%M").to_string(),
        "long" => {
            use chrono::Datelike;
            let month = local.month0() as usize;
            if ENGLISH_COUNTRIES.contains(&country.as_str()) {
                local.format("%B %-d, %Y, %H:%M").to_string()
            } else if PORTUGUESE_COUNTRIES.contains(&country.as_str()) {
                format!(
                    "{} de {} de {}, {}",
                    local.day(),
                    MONTHS_PT[month],
                    local.year(),
                    local.format("%H:%M")
                )
            } else {
                format!(
                    "{} de {} de {}, {}",
                    local.day(),
                    MONTHS_ES[month],
                    local.year(),
                    local.format("%H:%M")
                )
            }
        }
        pattern => {
            use std::fmt::Write;
            let mut out = String::new();
            write!(out, "{}", local.format(pattern))
                .map_err(|_| invalid(format!("invalid date format {pattern:?}")))?;
            out
        }
    })
}

/// Moves an instant by a signed duration and returns RFC 3339:
/// `{{ event.start_time | shift("-1h") }}` for "one hour before the appointment".
fn shift(state: &State, value: Value, offset: String) -> Result<String, Error> {
    let instant = parse_instant(&value, account_zone(state))?;
    let text = offset.trim();
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let duration = humantime::parse_duration(magnitude.trim())
        .map_err(|_| invalid("shift cannot read its offset (e.g. \"-1h\", \"30m\")"))?;
    let duration =
        chrono::Duration::from_std(duration).map_err(|_| invalid("shift's offset is too large"))?;
    let moved = if negative {
        instant - duration
    } else {
        instant + duration
    };
    Ok(moved.to_rfc3339())
}

/// The first word of a full name, capitalised: "ALE ruiz" → "Ale".
fn first_name(value: Value) -> Result<String, Error> {
    let text = value
        .as_str()
        .ok_or_else(|| invalid(format!("first_name expects a string, got {}", value.kind())))?;
    let Some(first) = text.split_whitespace().next() else {
        return Ok(String::new());
    };
    let mut chars = first.chars();
    Ok(match chars.next() {
        Some(initial) => initial
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    })
}

#[cfg(test)]
mod tests {
    use minijinja::{Environment, context};

    fn render(
        template: &str,
        country: &str,
        value: minijinja::Value,
    ) -> Result<String, minijinja::Error> {
        let mut environment = Environment::new();
        super::register(&mut environment);
        environment.render_str(
            template,
            context! { v => value, account => context! { default_country => country, timezone => "America/Mexico_City" } },
        )
    }

    #[test]
    fn money_formats_strings_numbers_and_minor_units() {
        let cases = [
            (
                r#"{{ v | money("MXN") }}"#,
                "MX",
                minijinja::Value::from("1234.5"),
                "$1,234.50",
            ),
            (
                r#"{{ v | money("MXN") }}"#,
                "MX",
                minijinja::Value::from(500),
                "$500.00",
            ),
            (
                r#"{{ v | money("USD", minor=true) }}"#,
                "US",
                minijinja::Value::from(3000),
                "$30.00",
            ),
            (
                r#"{{ v | money("USD", minor=true) }}"#,
                "US",
                minijinja::Value::from(5),
                "$0.05",
            ),
            (
                r#"{{ v | money("CLP") }}"#,
                "CL",
                minijinja::Value::from("1234567"),
                "$1.234.567",
            ),
            (
                r#"{{ v | money("BRL") }}"#,
                "BR",
                minijinja::Value::from("1234.565"),
                "R$1.234,57",
            ),
            (
                r#"{{ v | money("MXN") }}"#,
                "MX",
                minijinja::Value::from("999.995"),
                "$1,000.00",
            ),
            (
                r#"{{ v | money("MXN") }}"#,
                "MX",
                minijinja::Value::from("-12.3"),
                "-$12.30",
            ),
            (
                r#"{{ v | money("XYZ") }}"#,
                "MX",
                minijinja::Value::from("7"),
                "7.00 XYZ",
            ),
        ];
        for (template, country, value, expected) in cases {
            assert_eq!(
                render(template, country, value.clone()).unwrap(),
                expected,
                "{template} {value}"
            );
        }
        assert!(
            render(
                r#"{{ v | money("MXN") }}"#,
                "MX",
                minijinja::Value::from("12abc")
            )
            .is_err()
        );
    }

    #[test]
    fn dates_use_the_account_time_zone_and_language() {
        let instant = minijinja::Value::from("2026-11-29T20:05:00Z");
        assert_eq!(
            render("{{ v | date }}", "MX", instant.clone()).unwrap(),
            "29/11/2026 14:05"
        );
        assert_eq!(
            render(r#"{{ v | date("long") }}"#, "MX", instant.clone()).unwrap(),
            "29 de noviembre de 2026, 14:05"
        );
        assert_eq!(
            render(r#"{{ v | date("long") }}"#, "US", instant.clone()).unwrap(),
            "November 29, 2026, 14:05"
        );
        assert_eq!(
            render(
                r#"{{ v | date("time") }}"#,
                "MX",
                minijinja::Value::from(1_764_446_700)
            )
            .unwrap(),
            "14:05"
        );
        assert!(render("{{ v | date }}", "MX", minijinja::Value::from("yesterday")).is_err());
    }

    #[test]
    fn first_name_takes_the_first_word() {
        assert_eq!(
            render(
                "{{ v | first_name }}",
                "MX",
                minijinja::Value::from("ALE ruiz")
            )
            .unwrap(),
            "Ale"
        );
        assert_eq!(
            render("{{ v | first_name }}", "MX", minijinja::Value::from("  ")).unwrap(),
            ""
        );
        // `default(x, true)` also replaces null and empty values from payloads.
        assert_eq!(
            render(
                r#"{{ v | default("amigo", true) }}"#,
                "MX",
                minijinja::Value::from(())
            )
            .unwrap(),
            "amigo"
        );
    }
}
