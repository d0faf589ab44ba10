//! Line endings of a message on the wire.
//!
//! SMTP lines end in CRLF, and a lone `.` line ends the message. A bare CR
//! or bare LF inside a message is read differently by different receivers;
//! a receiver that takes `<CR>.<CR><LF>` or `<LF>.<LF>` as the end of data
//! lets whatever follows be read as a second, smuggled message (SMTP
//! smuggling). Every message Postino signs or sends has its line endings
//! made CRLF first, so no such sequence survives to be dot-stuffed wrongly.

use std::borrow::Cow;

/// `message` with every bare CR and bare LF turned into CRLF. Borrows when
/// there is nothing to change, which is the common case.
#[must_use]
pub fn crlf_line_endings(message: &[u8]) -> Cow<'_, [u8]> {
    if !has_bare_line_ending(message) {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                // A CRLF pair is kept as one line ending.
                if message.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            byte => out.push(byte),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// Whether `message` holds a CR not followed by LF or an LF not preceded by CR.
#[must_use]
pub fn has_bare_line_ending(message: &[u8]) -> bool {
    let mut i = 0;
    while let Some(offset) = message[i..].iter().position(|&b| b == b'\r' || b == b'\n') {
        let at = i + offset;
        match message[at] {
            b'\r' if message.get(at + 1) == Some(&b'\n') => i = at + 2,
            _ => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_cr_and_bare_lf_become_crlf_and_crlf_stays() {
        assert_eq!(&*crlf_line_endings(b"a\r\nb\r\n"), b"a\r\nb\r\n");
        assert!(matches!(crlf_line_endings(b"a\r\nb"), Cow::Borrowed(_)));
        assert_eq!(&*crlf_line_endings(b"x\r.\r\ny"), b"x\r\n.\r\ny");
        assert_eq!(&*crlf_line_endings(b"x\n.\ny"), b"x\r\n.\r\ny");
        assert_eq!(&*crlf_line_endings(b"\r\r\n\n"), b"\r\n\r\n\r\n");
        assert_eq!(&*crlf_line_endings(b"end\r"), b"end\r\n");
        assert_eq!(&*crlf_line_endings(b"\n"), b"\r\n");
    }

    #[test]
    fn only_pairs_count_as_clean() {
        assert!(!has_bare_line_ending(b""));
        assert!(!has_bare_line_ending(b"a\r\n\r\nb"));
        assert!(has_bare_line_ending(b"a\rb"));
        assert!(has_bare_line_ending(b"a\nb"));
        assert!(has_bare_line_ending(b"a\n\rb"));
        assert!(has_bare_line_ending(b"a\r"));
    }
}
