//! Amounts as the account's country writes them: its decimal and grouping
//! marks, and the currency's symbol where the currency is the country's own
//! (`$1,234.50` for MXN in Mexico, `1.234,50 €` for EUR in Spain); any other
//! currency keeps its code, so a foreign amount is never mistaken for a local
//! one (`0.0075 USD` in Mexico). Providers report prices as decimal text;
//! they are reformatted digit by digit, never through floating point.

/// How a country writes numbers and where its currency symbol goes.
struct Style {
    decimal: char,
    group: char,
    symbol_after: bool,
}

const POINT: Style = Style {
    decimal: '.',
    group: ',',
    symbol_after: false,
};
const COMMA_BEFORE: Style = Style {
    decimal: ',',
    group: '.',
    symbol_after: false,
};
const COMMA_AFTER: Style = Style {
    decimal: ',',
    group: '.',
    symbol_after: true,
};

fn style(country: &str) -> &'static Style {
    match country {
        "AR" | "BR" | "CL" | "CO" | "UY" | "PY" | "VE" | "EC" | "BO" => &COMMA_BEFORE,
        "ES" | "DE" | "FR" | "IT" | "PT" | "NL" | "BE" | "AT" | "FI" | "IE" | "GR" => &COMMA_AFTER,
        _ => &POINT,
    }
}

/// The country's own currency and its symbol.
fn local_currency(country: &str) -> Option<(&'static str, &'static str)> {
    Some(match country {
        "MX" => ("MXN", "$"),
        "US" => ("USD", "$"),
        "CA" => ("CAD", "$"),
        "AR" => ("ARS", "$"),
        "CL" => ("CLP", "$"),
        "CO" => ("COP", "$"),
        "UY" => ("UYU", "$"),
        "EC" | "SV" | "PR" => ("USD", "$"),
        "BR" => ("BRL", "R$"),
        "PE" => ("PEN", "S/"),
        "GT" => ("GTQ", "Q"),
        "GB" => ("GBP", "£"),
        "ES" | "DE" | "FR" | "IT" | "PT" | "NL" | "BE" | "AT" | "FI" | "IE" | "GR" => ("EUR", "€"),
        _ => return None,
    })
}

/// `{{ price|money(currency, country) }}`. Text that is not a decimal number
/// is shown as it came, with its currency.
pub fn format_money(amount: String, currency: String, country: String) -> String {
    let currency = currency.trim().to_ascii_uppercase();
    let country = country.trim().to_ascii_uppercase();
    let style = style(&country);
    let Some(number) = format_number(amount.trim(), style) else {
        return format!("{} {currency}", amount.trim()).trim().to_owned();
    };
    match local_currency(&country) {
        Some((local, symbol)) if local == currency => {
            let (sign, digits) = match number.strip_prefix('-') {
                Some(digits) => ("-", digits),
                None => ("", number.as_str()),
            };
            if style.symbol_after {
                format!("{sign}{digits}\u{a0}{symbol}")
            } else {
                format!("{sign}{symbol}{digits}")
            }
        }
        _ if currency.is_empty() => number,
        _ => format!("{number}\u{a0}{currency}"),
    }
}

/// A decimal number (`-1234.5`) in `style`, with at least two decimals and
/// no trailing zeros beyond them.
fn format_number(amount: &str, style: &Style) -> Option<String> {
    let (sign, unsigned) = match amount.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", amount.strip_prefix('+').unwrap_or(amount)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |text: &str| text.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let mut fraction = fraction.trim_end_matches('0').to_owned();
    while fraction.len() < 2 {
        fraction.push('0');
    }
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(style.group);
        }
        grouped.push(digit);
    }
    Some(format!("{sign}{grouped}{}{fraction}", style.decimal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(amount: &str, currency: &str, country: &str) -> String {
        format_money(amount.to_owned(), currency.to_owned(), country.to_owned())
    }

    #[test]
    fn amounts_read_as_the_country_writes_them() {
        assert_eq!(money("1234.5", "MXN", "MX"), "$1,234.50");
        assert_eq!(money("1234.5", "mxn", "mx"), "$1,234.50");
        assert_eq!(money("1234567.125", "EUR", "ES"), "1.234.567,125\u{a0}€");
        assert_eq!(money("1234.5", "COP", "CO"), "$1.234,50");
        assert_eq!(money("0.00750", "USD", "MX"), "0.0075\u{a0}USD");
        assert_eq!(money("-0.0075", "USD", "US"), "-$0.0075");
        assert_eq!(money("12", "", "MX"), "12.00");
        assert_eq!(money("0012.3", "BRL", "BR"), "R$12,30");
    }

    #[test]
    fn text_that_is_not_a_number_is_shown_as_it_came() {
        assert_eq!(money("n/a", "USD", "MX"), "n/a USD");
        assert_eq!(money("1e3", "", "MX"), "1e3");
        assert_eq!(money(".5", "USD", "US"), ".5 USD");
    }
}
