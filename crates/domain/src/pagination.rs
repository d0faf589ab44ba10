//! Keyset pagination: opaque cursors and bounded page sizes.
//!
//! A cursor names the last row of the previous page, so the next page is an
//! index range scan that costs the same on the millionth row as on the first
//! (an `OFFSET` would read and discard every row before it).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::DomainError;

/// Where the next page starts: after the row with this key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(i64);

const CURSOR_PREFIX: &str = "k1:";

impl Cursor {
    /// A cursor that continues after the row with key `key`.
    #[must_use]
    pub fn after(key: i64) -> Self {
        Self(key)
    }

    /// The key of the last row already seen.
    #[must_use]
    pub fn key(self) -> i64 {
        self.0
    }

    /// The opaque text handed to clients.
    #[must_use]
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{}", self.0))
    }

    /// # Errors
    ///
    /// Refuses text that [`Cursor::encode`] did not produce.
    pub fn decode(raw: &str) -> Result<Self, DomainError> {
        let invalid = || DomainError::new("cursor", "is not a cursor this server issued");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
        let key = text
            .strip_prefix(CURSOR_PREFIX)
            .and_then(|k| k.parse::<i64>().ok())
            .ok_or_else(invalid)?;
        Ok(Self(key))
    }
}

/// How many rows one page holds: 1 to [`PageSize::MAX`], [`PageSize::DEFAULT`] if unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u16);

impl PageSize {
    /// The largest page a client may ask for.
    pub const MAX: u16 = 1000;
    /// The page size when a client does not ask for one.
    pub const DEFAULT: u16 = 100;

    /// # Errors
    ///
    /// Refuses 0 and anything above [`PageSize::MAX`].
    pub fn parse(raw: Option<u32>) -> Result<Self, DomainError> {
        match raw {
            None => Ok(Self(Self::DEFAULT)),
            Some(n) if n >= 1 && n <= u32::from(Self::MAX) => {
                Ok(Self(u16::try_from(n).unwrap_or(Self::MAX)))
            }
            Some(_) => Err(DomainError::new(
                "limit",
                format!("must be between 1 and {}", Self::MAX),
            )),
        }
    }

    /// The size as a number of rows.
    #[must_use]
    pub fn get(self) -> i64 {
        i64::from(self.0)
    }
}

impl Default for PageSize {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_text_is_refused() {
        let cursor = Cursor::after(900_000);
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        assert!(Cursor::decode("not-a-cursor").is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode("k1:abc")).is_err());
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(PageSize::parse(None).unwrap().get(), 100);
        assert_eq!(PageSize::parse(Some(1000)).unwrap().get(), 1000);
        assert!(PageSize::parse(Some(0)).is_err());
        assert!(PageSize::parse(Some(1001)).is_err());
    }
}
