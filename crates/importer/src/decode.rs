//! Character encodings: which one a file is in, and a reader that turns it
//! into UTF-8 as it streams.
//!
//! Spreadsheet tools write UTF-8 (often with a byte-order mark), UTF-16 with
//! a mark (Excel's "Unicode text"), or the Windows code page, which for
//! Western European users is Windows-1252 (a superset of Latin-1 in the
//! printable range). A file without a mark is UTF-8 if every byte of it
//! decodes as UTF-8; text in a single-byte code page almost never does
//! (any accented letter followed by ASCII is invalid UTF-8), so one invalid
//! sequence anywhere makes it Windows-1252. The whole file is checked, not a
//! prefix, because exports often put the first accented name thousands of
//! rows in.

use std::io::{self, Read};

use encoding_rs::{Decoder, Encoding, UTF_8, WINDOWS_1252};

const CHUNK: usize = 64 * 1024;

/// Reads `input` to the end and says which encoding it is in.
///
/// # Errors
///
/// If reading fails.
pub fn detect(mut input: impl Read) -> io::Result<&'static Encoding> {
    let mut buf = vec![0u8; CHUNK];
    // Bytes of an incomplete UTF-8 sequence carried over between chunks.
    let mut carry: Vec<u8> = Vec::with_capacity(4);
    let mut first = true;
    loop {
        let n = read_full(&mut input, &mut buf)?;
        if first {
            first = false;
            if let Some((encoding, _)) = Encoding::for_bom(&buf[..n]) {
                return Ok(encoding);
            }
        }
        if n == 0 {
            // A truncated sequence at the very end is not UTF-8 either.
            return Ok(if carry.is_empty() {
                UTF_8
            } else {
                WINDOWS_1252
            });
        }
        let mut chunk = std::mem::take(&mut carry);
        chunk.extend_from_slice(&buf[..n]);
        match std::str::from_utf8(&chunk) {
            Ok(_) => {}
            Err(e) if e.error_len().is_none() => {
                // The chunk ends inside a sequence: keep its start for the next one.
                carry = chunk[e.valid_up_to()..].to_vec();
            }
            Err(_) => return Ok(WINDOWS_1252),
        }
    }
}

/// Fills `buf` as far as the input allows (short reads only at the end), so
/// the byte-order mark check sees the file's first bytes.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A reader that decodes `inner` from `encoding` to UTF-8, dropping a
/// byte-order mark. Memory is two fixed buffers, whatever the input's size.
pub struct DecodeReader<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    output: Vec<u8>,
    out_start: usize,
    out_end: usize,
    inner_done: bool,
    finished: bool,
}

impl<R> std::fmt::Debug for DecodeReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeReader")
            .field("encoding", &self.decoder.encoding().name())
            .finish_non_exhaustive()
    }
}

impl<R: Read> DecodeReader<R> {
    /// Decodes `inner`, which is in `encoding`.
    pub fn new(inner: R, encoding: &'static Encoding) -> Self {
        Self {
            inner,
            decoder: encoding.new_decoder_with_bom_removal(),
            input: vec![0; CHUNK],
            in_start: 0,
            in_end: 0,
            // Room for the worst case of one input chunk (3 bytes of UTF-8
            // per input byte), so every decode call makes progress.
            output: vec![0; CHUNK * 3 + 16],
            out_start: 0,
            out_end: 0,
            inner_done: false,
            finished: false,
        }
    }
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_start < self.out_end {
                let n = buf.len().min(self.out_end - self.out_start);
                buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
                self.out_start += n;
                return Ok(n);
            }
            if self.finished {
                return Ok(0);
            }
            if self.in_start == self.in_end && !self.inner_done {
                let n = loop {
                    match self.inner.read(&mut self.input) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        other => break other?,
                    }
                };
                self.in_start = 0;
                self.in_end = n;
                self.inner_done = n == 0;
            }
            let last = self.inner_done;
            let (result, read, written, _) = self.decoder.decode_to_utf8(
                &self.input[self.in_start..self.in_end],
                &mut self.output,
                last,
            );
            self.in_start += read;
            self.out_start = 0;
            self.out_end = written;
            if last && result == encoding_rs::CoderResult::InputEmpty {
                self.finished = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> String {
        let encoding = detect(bytes).unwrap();
        let mut out = String::new();
        DecodeReader::new(bytes, encoding)
            .read_to_string(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn utf8_with_and_without_a_bom_is_read_as_is() {
        assert_eq!(decode("Zoë,Ålesund\n".as_bytes()), "Zoë,Ålesund\n");
        assert_eq!(decode(b"\xEF\xBB\xBFemail\n"), "email\n");
    }

    #[test]
    fn windows_1252_is_detected_and_decoded() {
        // "Zoë, €5" in Windows-1252.
        assert_eq!(decode(b"Zo\xEB, \x805\n"), "Zoë, €5\n");
    }

    #[test]
    fn utf16_with_a_bom_is_decoded() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "é,x\n".encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(decode(&bytes), "é,x\n");
    }

    #[test]
    fn a_late_invalid_byte_still_makes_the_file_windows_1252() {
        let mut bytes = "a,b\n".repeat(50_000).into_bytes();
        bytes.extend_from_slice(b"Jos\xE9\n");
        assert_eq!(detect(&bytes[..]).unwrap(), WINDOWS_1252);
        assert!(decode(&bytes).ends_with("José\n"));
    }

    #[test]
    fn a_multibyte_character_across_chunk_boundaries_is_still_utf8() {
        let mut bytes = vec![b'a'; CHUNK - 1];
        bytes.extend_from_slice("é\n".as_bytes());
        assert_eq!(detect(&bytes[..]).unwrap(), UTF_8);
    }
}
