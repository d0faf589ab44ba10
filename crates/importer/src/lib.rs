//! CSV subscriber import: reading the messy files people bring, applying
//! them set-based, and running each import as a job that outlives requests
//! and processes.
//!
//! # Layout
//!
//! - [`decode`] — encoding detection (UTF-8 with or without BOM, UTF-16,
//!   Windows-1252) and a streaming decoder to UTF-8.
//! - [`parse`] — delimiter and header detection, each row to validated
//!   domain values or a line-numbered reason.
//! - [`store`] — where uploaded files wait for their job, and why on disk.
//! - [`engine`] — one job from file to database: a parsing thread feeds
//!   batches to a `COPY` + `INSERT … ON CONFLICT` pipeline, one transaction
//!   per batch with its progress.
//! - [`worker`] — the background loop in `postino serve` that claims jobs
//!   from the `imports` table.
//! - [`ImportSettings`], [`ImportError`].
//!
//! Dependency rule: depends on `postino-db` and `postino-domain`. The web
//! crate uses it to store and check uploads; the binary runs its worker and
//! the `postino import` command.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod decode;
pub mod engine;
pub mod parse;
pub mod store;
pub mod worker;

use std::path::PathBuf;

use postino_db::DbError;
use serde::Deserialize;

pub use engine::{Progress, run_job};
pub use parse::CsvRows;

/// `[import]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportSettings {
    /// Where uploaded files wait for their job. Every process that runs
    /// import jobs against the same database must see the same directory.
    pub dir: PathBuf,
    /// Largest upload accepted by `POST /api/v1/imports`, in bytes.
    pub max_upload_bytes: u64,
    /// Import jobs run at once by this process; 0 runs none (another
    /// process does).
    pub workers: usize,
    /// Rows per batch: per transaction and per `COPY`.
    pub batch_rows: usize,
    /// How long a worker's claim on a job lasts without progress before
    /// another process may take the job over (seconds).
    pub lease_secs: u64,
    /// How often an idle worker looks for new jobs, and a running one
    /// checks that its job was not cancelled (milliseconds).
    pub poll_ms: u64,
    /// Most bytes one CSV record may take. Past it the import stops as
    /// failed: such a record is almost always a quote that is never closed,
    /// after which the rest of the file cannot be read reliably.
    pub max_record_bytes: u64,
}

/// `import.max_record_bytes` by default: far beyond any real subscriber row
/// (attributes are capped at 16 KiB), small enough to hold in memory.
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 1024 * 1024;

impl Default for ImportSettings {
    fn default() -> Self {
        Self {
            dir: std::env::temp_dir().join("postino-imports"),
            max_upload_bytes: 1024 * 1024 * 1024,
            workers: 1,
            batch_rows: 10_000,
            lease_secs: 60,
            poll_ms: 500,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

/// An import failed as a whole (row problems are reported per row instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The header has no column recognised as the e-mail address.
    #[error(
        "the header row has no e-mail column (expected one named email, e-mail or Email Address)"
    )]
    NoEmailColumn,
    /// The file has no header row.
    #[error("the file is empty")]
    Empty,
    /// The file cannot be read as CSV.
    #[error("the file cannot be read as CSV: {0}")]
    Unreadable(String),
    /// The file cannot be read.
    #[error("reading the file failed")]
    Io(#[from] std::io::Error),
    /// The upload is larger than `import.max_upload_bytes`.
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    /// The job's file is gone (a process on another host, a cleaned-up directory).
    #[error("the import file is missing: {0}")]
    FileMissing(String),
    /// The job was cancelled or taken over while this worker ran it.
    #[error("the import was cancelled or taken over by another worker")]
    Lost,
    /// A database statement failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A record is longer than `import.max_record_bytes`.
    #[error(
        "line {line}: the row starting here is longer than the limit for one row \
         (import.max_record_bytes), most likely because a quote (\") opened on it is never \
         closed; the rest of the file cannot be read reliably after it, so the import \
         stopped there. Rows before line {line} were imported; fix the quote and import \
         the rest again"
    )]
    RecordTooLong {
        /// The line the record starts on.
        line: u64,
    },
    /// Reading was stopped from outside (the job was cancelled).
    #[error("reading the file was stopped")]
    Cancelled,
    /// The parsing thread stopped unexpectedly.
    #[error("the parsing thread failed: {0}")]
    Thread(String),
}

impl From<sqlx::Error> for ImportError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}
