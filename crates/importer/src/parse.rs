//! Reading a subscriber CSV: encoding, delimiter, header, and each row turned
//! into validated values or a reason it was refused.
//!
//! The reader streams: it holds the decoder's buffers, the CSV reader's
//! buffer and one record, plus one 16-byte entry per distinct address for the
//! duplicate check (a 64-bit hash and a line number; about 34 MB at a million
//! addresses). A 64-bit hash may in theory collide; at a million addresses
//! the chance that any two collide is about 3 in 100 million, and a collision
//! would report a row as a duplicate, never import a wrong one.
//!
//! One record is capped at `import.max_record_bytes` (1 MiB by default): a
//! quote that is never closed would otherwise make the rest of the file one
//! record, held whole in memory. The cap and cancelling are enforced by
//! [`Guard`], the reader the CSV parser pulls from, because the parser gives
//! no control back while it reads one record.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use postino_domain::text::from_csv_cell;
use postino_domain::{Attributes, EmailAddress, SubscriberName};
use serde_json::{Map, Number, Value};

use crate::ImportError;
use crate::decode::{self, DecodeReader};

/// What a header column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// The e-mail address.
    Email,
    /// The whole name.
    Name,
    /// First name, joined with [`Column::LastName`] when there is no name column.
    FirstName,
    /// Last name.
    LastName,
    /// A JSON object of attributes.
    Attributes,
    /// Any other column: an attribute under this key.
    Attribute(String),
    /// A column without a header: ignored.
    Ignored,
}

/// Recognises a header cell, case-insensitively and ignoring spaces,
/// hyphens and underscores: `Email Address`, `e-mail` and `EMAIL` are all the
/// address.
#[must_use]
pub fn classify(header: &str) -> Column {
    let trimmed = header.trim();
    let key: String = trimmed
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    match key.as_str() {
        "email" | "emailaddress" | "mail" | "emailaddr" => Column::Email,
        "name" | "fullname" | "displayname" => Column::Name,
        "firstname" | "givenname" | "forename" => Column::FirstName,
        "lastname" | "surname" | "familyname" => Column::LastName,
        "attributes" | "attribs" => Column::Attributes,
        _ if trimmed.is_empty() => Column::Ignored,
        _ => Column::Attribute(trimmed.to_owned()),
    }
}

/// The columns of a file, from its header row.
#[derive(Debug, Clone)]
pub struct Header {
    /// One entry per column.
    pub columns: Vec<Column>,
    /// The detected delimiter.
    pub delimiter: u8,
}

impl Header {
    fn from_cells(cells: &csv::StringRecord, delimiter: u8) -> Result<Self, ImportError> {
        let mut columns: Vec<Column> = cells.iter().map(classify).collect();
        // Only the first column of each special kind counts; a second
        // "email" column is kept as an attribute rather than guessed between.
        for kind in [
            Column::Email,
            Column::Name,
            Column::FirstName,
            Column::LastName,
            Column::Attributes,
        ] {
            let mut seen = false;
            for (i, column) in columns.iter_mut().enumerate() {
                if *column == kind {
                    if seen {
                        *column = Column::Attribute(cells[i].trim().to_owned());
                    }
                    seen = true;
                }
            }
        }
        if !columns.contains(&Column::Email) {
            return Err(ImportError::NoEmailColumn);
        }
        Ok(Self { columns, delimiter })
    }
}

/// Picks the delimiter that occurs most often, outside quotes, in the header
/// line; a comma when none does.
#[must_use]
pub fn detect_delimiter(first_line: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in first_line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let mut best = 0;
    for i in 1..3 {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    candidates[best]
}

/// A valid row, ready to import.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Line where the row starts.
    pub line: u64,
    /// The address.
    pub email: EmailAddress,
    /// The name, when the file has a non-empty one.
    pub name: Option<SubscriberName>,
    /// The attributes, when the file has any for this row.
    pub attributes: Option<Attributes>,
}

/// A row refused, with the line it starts on, the row as read and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Line where the row starts.
    pub line: u64,
    /// The row's fields, written back as one CSV line.
    pub original: String,
    /// Why it was refused.
    pub reason: String,
}

/// Counts bytes read from the file, for progress.
#[derive(Debug)]
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Source = Guard<BufReader<DecodeReader<Counting<Box<dyn Read + Send>>>>>;

/// Why [`Guard`] stopped the parser, carried inside an `io::Error` through
/// the CSV reader and told apart again by [`csv_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Stop {
    #[error("the record is too long")]
    RecordTooLong,
    #[error("cancelled")]
    Cancelled,
}

/// What the reading is allowed: the largest record, and a flag that stops
/// it from another thread.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most bytes one record (one row, with its quoted line breaks) may take.
    pub max_record_bytes: u64,
    /// Set to stop reading: the next read of the file fails with
    /// [`ImportError::Cancelled`], even in the middle of one record.
    pub cancel: Arc<AtomicBool>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_record_bytes: crate::DEFAULT_MAX_RECORD_BYTES,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The CSV parser's input. It counts the bytes handed to the parser and
/// refuses to hand more once the record in progress (which started at
/// `record_start`, as the parser counts bytes) is over the limit: a record
/// within the limit is always read whole, because the parser asks for more
/// only while it is inside one. It also checks the cancel flag on every
/// read, at most 256 KiB apart.
struct Guard<R> {
    inner: R,
    delivered: u64,
    record_start: u64,
    limits: Limits,
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.limits.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other(Stop::Cancelled));
        }
        if self.delivered.saturating_sub(self.record_start) > self.limits.max_record_bytes {
            return Err(io::Error::other(Stop::RecordTooLong));
        }
        let n = self.inner.read(buf)?;
        self.delivered += n as u64;
        Ok(n)
    }
}

/// Reads rows from a subscriber CSV, one at a time.
pub struct CsvRows {
    reader: csv::Reader<Source>,
    header: Header,
    record: csv::StringRecord,
    seen: HashMap<u64, u32>,
    bytes: Arc<AtomicU64>,
    encoding: &'static encoding_rs::Encoding,
    /// The line the next record starts on, for an error about a record
    /// that could not be read whole.
    next_line: u64,
}

impl std::fmt::Debug for CsvRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvRows")
            .field("header", &self.header)
            .field("encoding", &self.encoding.name())
            .finish_non_exhaustive()
    }
}

impl CsvRows {
    /// Opens a file: detects its encoding (reading it once), then its
    /// delimiter and header.
    ///
    /// # Errors
    ///
    /// [`ImportError::Io`] if it cannot be read; [`ImportError::NoEmailColumn`]
    /// or [`ImportError::Empty`] if its header is unusable.
    pub fn open(path: &Path) -> Result<Self, ImportError> {
        Self::open_with(path, Limits::default())
    }

    /// As [`CsvRows::open`], within `limits`.
    ///
    /// # Errors
    ///
    /// As [`CsvRows::open`], and [`ImportError::RecordTooLong`] or
    /// [`ImportError::Cancelled`] while reading the header.
    pub fn open_with(path: &Path, limits: Limits) -> Result<Self, ImportError> {
        let mut file = File::open(path)?;
        let encoding = decode::detect(BufReader::new(&mut file))?;
        file.rewind()?;
        Self::new(Box::new(file), encoding, limits)
    }

    /// Reads rows from bytes in memory (tests, small inputs).
    ///
    /// # Errors
    ///
    /// As [`CsvRows::open`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ImportError> {
        let encoding = decode::detect(&bytes[..])?;
        Self::new(
            Box::new(io::Cursor::new(bytes)),
            encoding,
            Limits::default(),
        )
    }

    /// Reads rows from any reader known to be in `encoding` (a stream that
    /// cannot be read twice to detect it).
    ///
    /// # Errors
    ///
    /// As [`CsvRows::open_with`].
    pub fn from_reader(
        input: Box<dyn Read + Send>,
        encoding: &'static encoding_rs::Encoding,
        limits: Limits,
    ) -> Result<Self, ImportError> {
        Self::new(input, encoding, limits)
    }

    fn new(
        input: Box<dyn Read + Send>,
        encoding: &'static encoding_rs::Encoding,
        limits: Limits,
    ) -> Result<Self, ImportError> {
        let bytes = Arc::new(AtomicU64::new(0));
        let counting = Counting {
            inner: input,
            count: Arc::clone(&bytes),
        };
        let mut source =
            BufReader::with_capacity(256 * 1024, DecodeReader::new(counting, encoding));
        let first = source.fill_buf()?;
        let line_end = first
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(first.len());
        let delimiter = detect_delimiter(&first[..line_end]);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            // Rows with the wrong number of fields are reported, not fatal.
            .flexible(true)
            // Records end at LF only; the CR of a CRLF is trimmed off with the
            // other surrounding whitespace. (With CRLF terminators the reader
            // counts lines wrongly, and line numbers are what users act on.)
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(256 * 1024)
            .from_reader(Guard {
                inner: source,
                delivered: 0,
                record_start: 0,
                limits,
            });
        let mut cells = csv::StringRecord::new();
        loop {
            let line = reader.position().line();
            if !read_guarded(&mut reader, &mut cells, line)? {
                return Err(ImportError::Empty);
            }
            cells.trim();
            if !is_blank(&cells) {
                break;
            }
        }
        let header = Header::from_cells(&cells, delimiter)?;
        let next_line = reader.position().line();
        Ok(Self {
            reader,
            header,
            record: csv::StringRecord::new(),
            seen: HashMap::new(),
            bytes,
            encoding,
            next_line,
        })
    }

    /// The file's columns.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file's encoding, e.g. `UTF-8` or `windows-1252`.
    #[must_use]
    pub fn encoding(&self) -> &'static str {
        self.encoding.name()
    }

    /// Bytes of the file read so far (ahead of the rows returned by the
    /// reader's buffers; good enough for progress).
    #[must_use]
    pub fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The next row, good or bad; `None` at the end of the file.
    ///
    /// # Errors
    ///
    /// [`ImportError::Io`] if the file cannot be read further.
    pub fn next_row(&mut self) -> Result<Option<Result<Row, BadRow>>, ImportError> {
        loop {
            if !read_guarded(&mut self.reader, &mut self.record, self.next_line)? {
                return Ok(None);
            }
            self.next_line = self.reader.position().line();
            self.record.trim();
            if !is_blank(&self.record) {
                break;
            }
        }
        let line = self.record.position().map_or(0, csv::Position::line);
        Ok(Some(match self.parse_record(line) {
            Ok(row) => Ok(row),
            Err(reason) => Err(BadRow {
                line,
                original: self.original(),
                reason,
            }),
        }))
    }

    /// The record written back as one CSV line, for the error report. A NUL
    /// (refused in every value) becomes U+FFFD: PostgreSQL cannot store it,
    /// and the report must keep the row.
    fn original(&self) -> String {
        let mut writer = csv::WriterBuilder::new()
            .delimiter(self.header.delimiter)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        if writer.write_record(&self.record).is_err() {
            return self
                .record
                .iter()
                .collect::<Vec<_>>()
                .join(",")
                .replace('\0', "\u{FFFD}");
        }
        let bytes = writer.into_inner().unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .trim_end_matches('\n')
            .replace('\0', "\u{FFFD}")
    }

    fn parse_record(&mut self, line: u64) -> Result<Row, String> {
        let record = &self.record;
        if record.len() != self.header.columns.len() {
            return Err(format!(
                "has {} fields; the header has {}",
                record.len(),
                self.header.columns.len()
            ));
        }
        let mut email = None;
        let mut name: Option<&str> = None;
        let mut first: Option<&str> = None;
        let mut last: Option<&str> = None;
        let mut map: Option<Map<String, Value>> = None;
        for (column, cell) in self.header.columns.iter().zip(record.iter()) {
            // A cell Postino's own export protected against spreadsheets
            // reads back as it was.
            let cell = from_csv_cell(cell);
            match column {
                Column::Email => email = Some(cell),
                Column::Name => name = Some(cell),
                Column::FirstName => first = Some(cell),
                Column::LastName => last = Some(cell),
                Column::Attributes => {
                    let text = cell.trim();
                    if !text.is_empty() {
                        match serde_json::from_str::<Value>(text) {
                            Ok(Value::Object(object)) => {
                                let map = map.get_or_insert_with(Map::new);
                                // Values from other columns (below) win over the JSON.
                                for (k, v) in object {
                                    map.entry(k).or_insert(v);
                                }
                            }
                            Ok(_) => return Err("attributes: must be a JSON object".to_owned()),
                            Err(e) => return Err(format!("attributes: not valid JSON ({e})")),
                        }
                    }
                }
                Column::Attribute(key) => {
                    if let Some(value) = typed(cell) {
                        map.get_or_insert_with(Map::new).insert(key.clone(), value);
                    }
                }
                Column::Ignored => {}
            }
        }
        let email = EmailAddress::parse(email.unwrap_or_default()).map_err(|e| e.to_string())?;
        let name = match name {
            Some(name) => name.trim().to_owned(),
            None => {
                let parts: Vec<&str> = [first, last]
                    .into_iter()
                    .flatten()
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .collect();
                parts.join(" ")
            }
        };
        let name = if name.is_empty() {
            None
        } else {
            Some(SubscriberName::parse(&name).map_err(|e| e.to_string())?)
        };
        let attributes = map
            .map(|m| Attributes::parse(Value::Object(m)))
            .transpose()
            .map_err(|e| e.to_string())?;
        // Register the address only once the row is known good, so a row
        // fixed further down the file still imports.
        let key = address_key(&email);
        let line32 = u32::try_from(line).unwrap_or(u32::MAX);
        if let Some(earlier) = self.seen.get(&key) {
            return Err(format!(
                "invalid e-mail address: {email} already appears on line {earlier}"
            ));
        }
        self.seen.insert(key, line32);
        Ok(Row {
            line,
            email,
            name,
            attributes,
        })
    }
}

/// A blank line reads as one empty field; it is skipped, not reported.
fn is_blank(record: &csv::StringRecord) -> bool {
    record.len() == 1 && record[0].is_empty()
}

/// The address as the database compares it (case-insensitively), hashed.
fn address_key(email: &EmailAddress) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    email.as_str().to_lowercase().hash(&mut hasher);
    hasher.finish()
}

/// Reads the next record, telling [`Guard`] where it starts; a record
/// stopped for its size is reported as starting on `line`.
fn read_guarded(
    reader: &mut csv::Reader<Source>,
    record: &mut csv::StringRecord,
    line: u64,
) -> Result<bool, ImportError> {
    let start = reader.position().byte();
    reader.get_mut().record_start = start;
    reader.read_record(record).map_err(|e| csv_error(e, line))
}

fn csv_error(e: csv::Error, line: u64) -> ImportError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => match io.get_ref().and_then(|e| e.downcast_ref::<Stop>()) {
            Some(Stop::RecordTooLong) => ImportError::RecordTooLong { line },
            Some(Stop::Cancelled) => ImportError::Cancelled,
            None => ImportError::Io(io),
        },
        other => ImportError::Unreadable(format!("{other:?}")),
    }
}

/// A cell as an attribute value: nothing when empty; `true`/`false` as
/// booleans; numbers written plainly as numbers; anything else as text.
///
/// Numbers with a leading zero (`007`, postcodes), a plus sign or an
/// exponent stay text, because turning them into numbers would change them.
#[must_use]
pub fn typed(cell: &str) -> Option<Value> {
    let text = cell.trim();
    if text.is_empty() {
        return None;
    }
    if text.eq_ignore_ascii_case("true") {
        return Some(Value::Bool(true));
    }
    if text.eq_ignore_ascii_case("false") {
        return Some(Value::Bool(false));
    }
    if plain_number(text) {
        if let Ok(n) = text.parse::<i64>() {
            return Some(Value::Number(n.into()));
        }
        if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Some(Value::Number(n));
        }
    }
    Some(Value::String(text.to_owned()))
}

fn plain_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(int) && (int == "0" || !int.starts_with('0')) && frac.is_none_or(all_digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(text: &[u8]) -> Vec<Result<Row, BadRow>> {
        let mut reader = CsvRows::from_bytes(text.to_vec()).unwrap();
        let mut out = Vec::new();
        while let Some(row) = reader.next_row().unwrap() {
            out.push(row);
        }
        out
    }

    fn good(text: &[u8]) -> Vec<Row> {
        rows(text)
            .into_iter()
            .map(|r| r.expect("a good row"))
            .collect()
    }

    #[test]
    fn common_header_names_are_recognised_whatever_their_case() {
        for h in [
            "email",
            "E-Mail",
            "Email Address",
            "EMAIL_ADDRESS",
            " e-mail ",
        ] {
            assert_eq!(classify(h), Column::Email, "{h}");
        }
        assert_eq!(classify("First Name"), Column::FirstName);
        assert_eq!(classify("last_name"), Column::LastName);
        assert_eq!(classify("Attributes"), Column::Attributes);
        assert_eq!(classify(" City "), Column::Attribute("City".to_owned()));
    }

    #[test]
    fn first_and_last_name_are_joined_and_other_columns_become_typed_attributes() {
        let rows = good(b"Email Address,First Name,Last Name,plan,score,vip,zip\njane@example.com,Jane,Doe,pro,42,TRUE,01234\n");
        assert_eq!(rows[0].name.as_ref().unwrap().as_str(), "Jane Doe");
        assert_eq!(
            Value::from(rows[0].attributes.clone().unwrap()),
            json!({"plan": "pro", "score": 42, "vip": true, "zip": "01234"})
        );
    }

    #[test]
    fn the_attributes_column_is_a_json_object_merged_with_other_columns() {
        let rows = good(b"email,attributes,city\na@example.com,\"{\"\"city\"\":\"\"Oslo\"\",\"\"n\"\":1}\",Rome\n");
        assert_eq!(
            Value::from(rows[0].attributes.clone().unwrap()),
            json!({"city": "Rome", "n": 1})
        );
    }

    #[test]
    fn semicolons_and_tabs_are_detected_as_delimiters() {
        let rows = good(b"email;name;note\na@example.com;Ann;\"x;y\"\n");
        assert_eq!(rows[0].name.as_ref().unwrap().as_str(), "Ann");
        assert_eq!(
            Value::from(rows[0].attributes.clone().unwrap()),
            json!({"note": "x;y"})
        );
        let rows = good(b"name\temail\nBob\tb@example.com\n");
        assert_eq!(rows[0].email.as_str(), "b@example.com");
    }

    #[test]
    fn quoted_fields_keep_delimiters_quotes_and_newlines() {
        let rows = good(
            b"email,note\r\na@example.com,\"one, \"\"two\"\"\r\nthree\"\r\nb@example.com,x\r\n",
        );
        assert_eq!(
            Value::from(rows[0].attributes.clone().unwrap()),
            json!({"note": "one, \"two\"\r\nthree"})
        );
        // The second record starts on line 4: the quoted newline counts.
        assert_eq!(rows[1].line, 4);
    }

    #[test]
    fn crlf_and_lf_line_ends_read_the_same() {
        let lf = good(b"email,name\na@example.com,Ann\n");
        let crlf = good(b"email,name\r\na@example.com,Ann\r\n");
        assert_eq!(lf, crlf);
    }

    #[test]
    fn a_bom_is_dropped_and_latin1_names_survive() {
        let rows = good(b"\xEF\xBB\xBFemail,name\na@example.com,Zo\xC3\xAB\n");
        assert_eq!(rows[0].name.as_ref().unwrap().as_str(), "Zoë");
        let rows = good(b"email,name\na@example.com,Fran\xE7ois M\xFCller\n");
        assert_eq!(rows[0].name.as_ref().unwrap().as_str(), "François Müller");
    }

    #[test]
    fn bad_rows_are_reported_with_line_and_reason_and_good_ones_still_read() {
        let all = rows(b"email,name,attributes\nnot-an-address,X,\ngood@example.com,G,\nb@example.com,B,{oops\nc@example.com,C\nGOOD@example.com,again,\nd@example.com,D,[1]\n");
        let bad: Vec<(u64, &str)> = all
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|b| (b.line, b.reason.as_str()))
            .collect();
        assert_eq!(bad.len(), 5, "{bad:?}");
        assert_eq!(bad[0].0, 2);
        assert!(bad[0].1.contains("e-mail address"));
        assert_eq!(bad[1].0, 4);
        assert!(bad[1].1.contains("not valid JSON"));
        assert_eq!(bad[2].0, 5);
        assert!(bad[2].1.contains("has 2 fields; the header has 3"));
        assert_eq!(bad[3].0, 6);
        assert!(bad[3].1.contains("already appears on line 3"));
        assert!(bad[4].1.contains("JSON object"));
        let first_bad = all[0].as_ref().unwrap_err();
        assert_eq!(first_bad.original, "not-an-address,X,");
        assert_eq!(all.iter().filter(|r| r.is_ok()).count(), 1);
    }

    #[test]
    fn a_file_without_an_email_column_is_refused() {
        assert!(matches!(
            CsvRows::from_bytes(b"name,city\nAnn,Rome\n".to_vec()),
            Err(ImportError::NoEmailColumn)
        ));
        assert!(matches!(
            CsvRows::from_bytes(Vec::new()),
            Err(ImportError::Empty)
        ));
    }

    #[test]
    fn values_are_typed_only_when_that_loses_nothing() {
        assert_eq!(typed("12"), Some(json!(12)));
        assert_eq!(typed("-1.5"), Some(json!(-1.5)));
        assert_eq!(typed("0"), Some(json!(0)));
        assert_eq!(typed("007"), Some(json!("007")));
        assert_eq!(typed("+44"), Some(json!("+44")));
        assert_eq!(typed("1e3"), Some(json!("1e3")));
        assert_eq!(typed("False"), Some(json!(false)));
        assert_eq!(typed("  "), None);
    }

    /// A file that never ends: `prefix`, then `x` forever. Says on
    /// `deep` once it has handed out a mebibyte past the prefix.
    struct Endless {
        prefix: io::Cursor<Vec<u8>>,
        filled: usize,
        deep: Option<std::sync::mpsc::Sender<()>>,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.prefix.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            buf.fill(b'x');
            self.filled += buf.len();
            if self.filled > 1024 * 1024
                && let Some(deep) = self.deep.take()
            {
                let _ = deep.send(());
            }
            Ok(buf.len())
        }
    }

    fn endless(
        prefix: &[u8],
        limits: Limits,
        deep: Option<std::sync::mpsc::Sender<()>>,
    ) -> CsvRows {
        let input = Endless {
            prefix: io::Cursor::new(prefix.to_vec()),
            filled: 0,
            deep,
        };
        CsvRows::from_reader(Box::new(input), encoding_rs::UTF_8, limits).unwrap()
    }

    #[test]
    fn an_unclosed_quote_stops_at_the_record_limit_naming_the_line_it_opened_on() {
        // Arrange: without the limit this record would never end.
        let mut reader = endless(
            b"email,note\na@example.com,fine\nb@example.com,\"never closed\n",
            Limits {
                max_record_bytes: 64 * 1024,
                ..Limits::default()
            },
            None,
        );

        // Act
        let first = reader.next_row().unwrap();
        let second = reader.next_row();

        // Assert
        assert!(matches!(first, Some(Ok(_))));
        match second {
            Err(ImportError::RecordTooLong { line }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        let message = ImportError::RecordTooLong { line: 3 }.to_string();
        assert!(message.starts_with("line 3:"), "{message}");
        assert!(message.contains("never"), "{message}");
    }

    #[test]
    fn rows_up_to_the_record_limit_are_read_whole() {
        let note = "y".repeat(60 * 1024);
        // An unnamed column is ignored, so no attribute limit applies to it.
        let file = format!("email,\na@example.com,\"{note}\"\nb@example.com,z\n");
        let mut reader = CsvRows::from_reader(
            Box::new(io::Cursor::new(file.into_bytes())),
            encoding_rs::UTF_8,
            Limits {
                max_record_bytes: 64 * 1024,
                ..Limits::default()
            },
        )
        .unwrap();
        let first = reader.next_row().unwrap().unwrap().unwrap();
        assert_eq!(first.email.as_str(), "a@example.com");
        assert!(matches!(reader.next_row(), Ok(Some(Ok(_)))));
        assert!(matches!(reader.next_row(), Ok(None)));
    }

    #[test]
    fn cancelling_stops_the_reader_inside_a_record_that_never_ends() {
        // Arrange: no record limit to speak of, so only the flag can stop it.
        let cancel = Arc::new(AtomicBool::new(false));
        let (deep_tx, deep_rx) = std::sync::mpsc::channel();
        let mut reader = endless(
            b"email,note\na@example.com,\"",
            Limits {
                max_record_bytes: u64::MAX,
                cancel: Arc::clone(&cancel),
            },
            Some(deep_tx),
        );
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let parsing = std::thread::spawn(move || {
            let outcome = reader.next_row();
            let _ = done_tx.send(());
            outcome
        });
        // Wait until the parser is a mebibyte into the record.
        deep_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the parser reads on into the record");

        // Act
        cancel.store(true, Ordering::Relaxed);

        // Assert: it stops promptly, with the reason.
        done_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the parser stops once cancelled");
        assert!(matches!(
            parsing.join().unwrap(),
            Err(ImportError::Cancelled)
        ));
    }

    #[test]
    fn a_nul_in_a_cell_refuses_that_row_only_and_the_report_can_hold_it() {
        let all = rows(b"email,name,city\na@example.com,Ann,Rome\nb@example.com,B\0b,Oslo\nc@example.com,C,Ly\0on\nd@example.com,D,Nice\n");
        let bad: Vec<&BadRow> = all.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(all.iter().filter(|r| r.is_ok()).count(), 2);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert_eq!(bad[0].line, 3);
        assert!(bad[0].reason.contains("NUL"), "{}", bad[0].reason);
        assert_eq!(bad[1].line, 4);
        assert!(bad[1].reason.contains("NUL"), "{}", bad[1].reason);
        assert!(!bad[0].original.contains('\0'));
        assert_eq!(bad[0].original, "b@example.com,B\u{FFFD}b,Oslo");
    }

    proptest::proptest! {
        #[test]
        fn any_name_written_as_csv_reads_back_the_same(name in "[\\p{L}\\p{N} ,;\"'-]{1,40}") {
            let trimmed = name.trim();
            proptest::prop_assume!(!trimmed.is_empty());
            proptest::prop_assume!(SubscriberName::parse(trimmed).is_ok());
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(["email", "name"]).unwrap();
            writer.write_record(["p@example.com", &name]).unwrap();
            let bytes = writer.into_inner().unwrap();
            let rows = good(&bytes);
            proptest::prop_assert_eq!(rows[0].name.as_ref().map(SubscriberName::as_str), Some(trimmed));
        }
    }
}
