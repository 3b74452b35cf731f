//! How Asaas writes money, dates and flags, and how we read and write them.
//!
//! Money: JSON numbers in BRL with decimals (`197.0`, `94.51`) ⇄ integer cents. Reading goes
//! through the number's shortest decimal text, so `94.51` is 9451 (not 9450 from a float
//! multiplication), and a third decimal rounds half away from zero.
//!
//! Dates: `yyyy-MM-dd` in the REST API, `dd/MM/yyyy` in the documented SUBSCRIPTION_* webhook
//! example; both are read, `yyyy-MM-dd` is written. A time part after the date is ignored.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};
use time::Date;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

const ISO_DATE: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");
const BR_DATE: &[BorrowedFormatItem<'static>] = format_description!("[day]/[month]/[year]");

/// Cents of a decimal text such as `94.51`, `-3`, `.5` or `197.0` (no exponent). A third
/// decimal rounds half away from zero. `None` when it is not a decimal or does not fit.
pub fn decimal_to_cents(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !is_digits(whole) || !is_digits(fraction) {
        return None;
    }
    let push = |acc: i64, digit: u8| -> Option<i64> {
        acc.checked_mul(10)?.checked_add(i64::from(digit - b'0'))
    };
    let mut cents = whole.bytes().try_fold(0i64, push)?;
    let mut rest = fraction.bytes();
    for _ in 0..2 {
        cents = push(cents, rest.next().unwrap_or(b'0'))?;
    }
    if rest.next().is_some_and(|digit| digit >= b'5') {
        cents = cents.checked_add(1)?;
    }
    Some(if negative { -cents } else { cents })
}

/// Cents of a JSON number in BRL.
pub fn f64_to_cents(value: f64) -> Option<i64> {
    if !value.is_finite() {
        return None;
    }
    // `Display` of an f64 is its shortest round-trip decimal, never in exponent form.
    decimal_to_cents(&value.to_string())
}

/// The BRL amount of `cents`, as the JSON number Asaas expects (`9451` → `94.51`). Exact for
/// every amount below 2^53 cents: both operands are exact and the division is correctly
/// rounded, so the result is the float nearest to the decimal.
pub fn cents_to_f64(cents: i64) -> f64 {
    (cents as f64) / 100.0
}

/// Reads a date in `yyyy-MM-dd` or `dd/MM/yyyy` (anything after the first ten characters,
/// such as a time, is ignored).
pub fn parse_date(text: &str) -> Option<Date> {
    let text = text.trim();
    let head = text.get(..10)?;
    let tail = text.get(10..).unwrap_or_default();
    if !(tail.is_empty() || tail.starts_with([' ', 'T'])) {
        return None;
    }
    Date::parse(head, ISO_DATE)
        .or_else(|_| Date::parse(head, BR_DATE))
        .ok()
}

/// `yyyy-MM-dd`.
pub fn format_date(date: Date) -> String {
    date.format(ISO_DATE).unwrap_or_default()
}

// ---------------------------------------------------------------- serde: money

struct CentsVisitor;

impl Visitor<'_> for CentsVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an amount in BRL")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        v.checked_mul(100)
            .ok_or_else(|| E::custom("amount out of range"))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v)
            .ok()
            .and_then(|v| v.checked_mul(100))
            .ok_or_else(|| E::custom("amount out of range"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        f64_to_cents(v).ok_or_else(|| E::custom("amount out of range"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        decimal_to_cents(v).ok_or_else(|| E::custom("amount is not a decimal number"))
    }
}

/// Reads a BRL amount (number, or numeric string) as cents.
pub fn de_cents<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    deserializer.deserialize_any(CentsVisitor)
}

/// Reads an optional BRL amount as cents (`null` or missing → `None`).
pub fn de_opt_cents<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    struct OptCents;
    impl<'de> Visitor<'de> for OptCents {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an amount in BRL or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            de_cents(d).map(Some)
        }
    }
    deserializer.deserialize_option(OptCents)
}

/// Writes cents as a BRL number.
pub fn ser_cents<S: Serializer>(cents: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(cents_to_f64(*cents))
}

/// Writes optional cents as a BRL number (`None` → `null`; callers skip `None`).
pub fn ser_opt_cents<S: Serializer>(cents: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
    match cents {
        Some(cents) => ser_cents(cents, serializer),
        None => serializer.serialize_none(),
    }
}

// ---------------------------------------------------------------- serde: dates

/// Reads a required date in either format.
pub fn de_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_date(&text).ok_or_else(|| de::Error::custom("not a date (yyyy-MM-dd or dd/MM/yyyy)"))
}

/// Reads an optional date in either format (`null`, missing or `""` → `None`).
pub fn de_opt_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Date>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => parse_date(&text)
            .map(Some)
            .ok_or_else(|| de::Error::custom("not a date (yyyy-MM-dd or dd/MM/yyyy)")),
    }
}

/// Writes `yyyy-MM-dd`.
pub fn ser_date<S: Serializer>(date: &Date, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_date(*date))
}

/// Writes an optional date as `yyyy-MM-dd` (`None` → `null`; callers skip `None`).
pub fn ser_opt_date<S: Serializer>(date: &Option<Date>, serializer: S) -> Result<S::Ok, S::Error> {
    match date {
        Some(date) => ser_date(date, serializer),
        None => serializer.serialize_none(),
    }
}

// ---------------------------------------------------------------- serde: lenient scalars

/// A boolean where `null` means `false`.
pub fn de_flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(deserializer)?.unwrap_or(false))
}

/// A string where `null` means empty.
pub fn de_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn decimal_text_to_cents() {
        for (text, cents) in [
            ("94.51", Some(9451)),
            ("197.0", Some(19700)),
            ("197", Some(19700)),
            ("0.1", Some(10)),
            (".5", Some(50)),
            ("5.", Some(500)),
            ("1.005", Some(101)),
            ("1.0049", Some(100)),
            ("-2.345", Some(-235)),
            ("+3", Some(300)),
            ("", None),
            (".", None),
            ("1e3", None),
            ("abc", None),
            ("1.2.3", None),
            ("99999999999999999999", None),
        ] {
            assert_eq!(decimal_to_cents(text), cents, "{text}");
        }
    }

    #[test]
    fn floats_to_cents_round_correctly() {
        // 94.51 * 100.0 is 9450.999…; the naive cast would give 9450.
        assert_eq!(f64_to_cents(94.51), Some(9451));
        assert_eq!(f64_to_cents(0.29), Some(29));
        assert_eq!(f64_to_cents(1.15), Some(115));
        assert_eq!(f64_to_cents(195.01), Some(19501));
        assert_eq!(f64_to_cents(197.0), Some(19700));
        assert_eq!(f64_to_cents(0.0), Some(0));
        assert_eq!(f64_to_cents(f64::NAN), None);
        assert_eq!(f64_to_cents(1e300), None);
        for cents in [0, 1, 29, 115, 9451, 19700, 19501, 123_456_789] {
            assert_eq!(f64_to_cents(cents_to_f64(cents)), Some(cents), "{cents}");
        }
        assert_eq!(serde_json::to_string(&cents_to_f64(9451)).unwrap(), "94.51");
    }

    #[test]
    fn dates_in_both_formats() {
        assert_eq!(parse_date("2025-03-15"), Some(date!(2025 - 03 - 15)));
        assert_eq!(parse_date("15/03/2025"), Some(date!(2025 - 03 - 15)));
        assert_eq!(
            parse_date("2025-03-14 19:04:36"),
            Some(date!(2025 - 03 - 14))
        );
        assert_eq!(parse_date("2025-02-30"), None);
        assert_eq!(parse_date("2025-03-15x"), None);
        assert_eq!(parse_date("15-03-2025"), None);
        assert_eq!(parse_date("2025-3-5"), None);
        assert_eq!(format_date(date!(2025 - 03 - 05)), "2025-03-05");
    }
}
