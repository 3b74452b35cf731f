//! Small helpers: random ids, Brazil-local dates and timestamps, cycles, query strings.

use rand::RngExt;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, Duration, Month, OffsetDateTime, UtcOffset};

const ISO_DATE: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");
const BR_DATE: &[BorrowedFormatItem<'static>] = format_description!("[day]/[month]/[year]");
const TIMESTAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// Brasília time (UTC−3, no daylight saving since 2019): Asaas dates are local.
fn brazil_now() -> OffsetDateTime {
    let offset = UtcOffset::from_hms(-3, 0, 0).unwrap_or(UtcOffset::UTC);
    OffsetDateTime::now_utc().to_offset(offset)
}

/// Today in Brazil.
pub(crate) fn today() -> Date {
    brazil_now().date()
}

/// Now as `yyyy-MM-dd HH:mm:ss`, Brazil local time (webhook `dateCreated`).
pub(crate) fn timestamp_now() -> String {
    brazil_now().format(TIMESTAMP).unwrap_or_default()
}

/// `yyyy-MM-dd`.
pub(crate) fn iso(date: Date) -> String {
    date.format(ISO_DATE).unwrap_or_default()
}

/// `dd/MM/yyyy`.
pub(crate) fn br(date: Date) -> String {
    date.format(BR_DATE).unwrap_or_default()
}

/// Parses `yyyy-MM-dd` (the only format the REST API accepts).
pub(crate) fn parse_iso(text: &str) -> Option<Date> {
    Date::parse(text, ISO_DATE).ok()
}

/// `n` random characters from `alphabet`.
fn random_from(alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| {
            let i = rng.random_range(0..alphabet.len());
            char::from(alphabet.get(i).copied().unwrap_or(b'0'))
        })
        .collect()
}

/// Lower-case letters and digits, like the suffix of `sub_…` and `pay_…` ids.
pub(crate) fn lower_alnum(n: usize) -> String {
    random_from(b"abcdefghijklmnopqrstuvwxyz0123456789", n)
}

/// Lower-case hex digits.
pub(crate) fn hex(n: usize) -> String {
    random_from(b"0123456789abcdef", n)
}

/// A random number in `range`.
pub(crate) fn number(range: std::ops::Range<u64>) -> u64 {
    rand::rng().random_range(range)
}

/// `date` moved by `months`, the day clamped to the target month's length (Jan 31 + 1
/// month = Feb 28/29).
pub(crate) fn add_months(date: Date, months: i32) -> Option<Date> {
    let index = date.year() * 12 + i32::from(u8::from(date.month())) - 1 + months;
    let year = index.div_euclid(12);
    let month = Month::try_from(u8::try_from(index.rem_euclid(12) + 1).ok()?).ok()?;
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).ok()
}

/// The due date one `cycle` after `date` (`None` for an unknown cycle).
pub(crate) fn add_cycle(date: Date, cycle: &str) -> Option<Date> {
    match cycle {
        "WEEKLY" => date.checked_add(Duration::days(7)),
        "BIWEEKLY" => date.checked_add(Duration::days(14)),
        "MONTHLY" => add_months(date, 1),
        "BIMONTHLY" => add_months(date, 2),
        "QUARTERLY" => add_months(date, 3),
        "SEMIANNUALLY" => add_months(date, 6),
        "YEARLY" => add_months(date, 12),
        _ => None,
    }
}

/// `value` rounded to centavos.
pub(crate) fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Decodes a query string into pairs (`+` is a space, `%XX` escapes).
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key, true), decode(value, true))
        })
        .collect()
}

/// Percent-decodes `text`; with `plus_is_space`, `+` becomes a space (query strings).
pub(crate) fn decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let escaped = (byte == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (byte, escaped) {
            (_, Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b'+', None) if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            (other, None) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn months_clamp_the_day() {
        assert_eq!(
            add_months(date!(2025 - 01 - 31), 1),
            Some(date!(2025 - 02 - 28))
        );
        assert_eq!(
            add_months(date!(2024 - 01 - 31), 1),
            Some(date!(2024 - 02 - 29))
        );
        assert_eq!(
            add_months(date!(2025 - 11 - 15), 3),
            Some(date!(2026 - 02 - 15))
        );
        assert_eq!(
            add_cycle(date!(2025 - 03 - 15), "YEARLY"),
            Some(date!(2026 - 03 - 15))
        );
        assert_eq!(
            add_cycle(date!(2025 - 03 - 15), "BIWEEKLY"),
            Some(date!(2025 - 03 - 29))
        );
        assert_eq!(add_cycle(date!(2025 - 03 - 15), "DAILY"), None);
    }

    #[test]
    fn formats() {
        assert_eq!(iso(date!(2025 - 03 - 05)), "2025-03-05");
        assert_eq!(br(date!(2025 - 03 - 05)), "05/03/2025");
        assert_eq!(parse_iso("2025-03-05"), Some(date!(2025 - 03 - 05)));
        assert_eq!(parse_iso("05/03/2025"), None);
        assert_eq!(timestamp_now().len(), "2025-03-10 09:12:44".len());
        assert_eq!(round2(197.0 - 1.99), 195.01);
    }

    #[test]
    fn query_decoding() {
        assert_eq!(
            query_pairs("externalReference=tenant+1%26x%3Dy&limit=5&flag&bad=%zz"),
            vec![
                ("externalReference".into(), "tenant 1&x=y".into()),
                ("limit".into(), "5".into()),
                ("flag".into(), String::new()),
                ("bad".into(), "%zz".into()),
            ]
        );
        assert_eq!(decode("a+b%2Fc", false), "a+b/c");
    }

    #[test]
    fn random_ids() {
        let id = lower_alnum(16);
        assert_eq!(id.len(), 16);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert!(hex(32).chars().all(|c| c.is_ascii_hexdigit()));
    }
}
