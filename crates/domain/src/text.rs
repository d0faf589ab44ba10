//! Shared checks for free-text values (names, descriptions, tags), and how
//! a refused value is quoted back.

use crate::DomainError;

/// Trims `raw` and checks it is between `min` and `max` characters with no
/// control characters, which would corrupt CSV exports and mail headers.
pub(crate) fn short_text(
    raw: &str,
    what: &'static str,
    min: usize,
    max: usize,
) -> Result<String, DomainError> {
    let trimmed = raw.trim();
    let len = trimmed.chars().count();
    if len < min {
        return Err(DomainError::new(
            what,
            if min == 1 {
                "must not be empty".to_owned()
            } else {
                format!("must be at least {min} characters")
            },
        ));
    }
    if len > max {
        return Err(DomainError::new(
            what,
            format!("must be at most {max} characters"),
        ));
    }
    if has_unstorable(trimmed) {
        return Err(DomainError::new(what, NUL_REASON));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(DomainError::new(
            what,
            "must not contain control characters such as line breaks",
        ));
    }
    Ok(trimmed.to_owned())
}

/// `raw` quoted for an error message, cut to its first 40 characters: a
/// refused value is echoed so the user can find it, but a hostile one of
/// megabytes must not come back whole (in every error that names it).
#[must_use]
pub fn excerpt(raw: &str) -> String {
    const SHOWN: usize = 40;
    match raw.char_indices().nth(SHOWN) {
        None => format!("{raw:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &raw[..cut], raw.len()),
    }
}

/// What PostgreSQL cannot store: U+0000 is refused in `text` and in `jsonb`
/// strings and keys alike, so a value holding it would fail its whole
/// statement (and with it a whole import batch).
pub(crate) const NUL_REASON: &str =
    "must not contain the NUL character (U+0000), which cannot be stored";

/// Whether `s` holds a character PostgreSQL cannot store in text or jsonb.
#[must_use]
pub fn has_unstorable(s: &str) -> bool {
    s.contains('\0')
}

/// The characters that make a spreadsheet read a cell as a formula (or, for
/// tab and carriage return, that it strips before looking for one).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell made safe to open in a spreadsheet, as OWASP recommends against
/// CSV injection: a cell beginning with `=`, `+`, `-`, `@`, tab or carriage
/// return gets a single quote in front, so `=HYPERLINK(…)` from a sign-up
/// form shows as text instead of running when a marketer opens the export.
/// Every CSV Postino writes goes through here; [`from_csv_cell`] undoes it
/// when Postino reads such a file back.
#[must_use]
pub fn csv_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// A cell read from a CSV, without the quote [`csv_cell`] put in front of
/// it, so an export imports back unchanged. A quote before anything else
/// stays: only the exact form `csv_cell` writes is undone.
#[must_use]
pub fn from_csv_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_spreadsheets_run_as_formulas_get_a_quote_and_read_back_unchanged() {
        for cell in [
            "=HYPERLINK(\"http://evil.example\",\"x\")",
            "@SUM(A1:A9)",
            "+1 555",
            "-2+3",
            "\t=1",
            "\r=1",
        ] {
            let safe = csv_cell(cell);
            assert_eq!(safe, format!("'{cell}"));
            assert_eq!(from_csv_cell(&safe), cell);
        }
        for cell in ["ann@example.com", "Ann", "", "{\"a\":1}", "'quoted", "1-2"] {
            assert_eq!(csv_cell(cell), cell);
            assert_eq!(from_csv_cell(cell), cell);
        }
    }

    #[test]
    fn long_values_are_echoed_cut_short() {
        assert_eq!(excerpt("abc"), "\"abc\"");
        let long = "y".repeat(400 * 1024);
        let shown = excerpt(&long);
        assert!(shown.len() < 80, "{shown}");
        assert!(shown.contains("409600 bytes"), "{shown}");
    }
}
