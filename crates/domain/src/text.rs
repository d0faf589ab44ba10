//! Shared checks for short free-text values (names, descriptions, tags).

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
    if trimmed.chars().any(char::is_control) {
        return Err(DomainError::new(
            what,
            "must not contain control characters such as line breaks",
        ));
    }
    Ok(trimmed.to_owned())
}
