//! CSV imports: checking an upload's options and header, queueing its job,
//! cancelling it, and its report of bad rows.

use postino_db::imports::{self, Import, NewImport};
use postino_db::{DbError, PgPool, lists};
use postino_domain::{ImportMode, ImportStatus};
use postino_importer::store;
use postino_importer::{CsvRows, ImportError};
use uuid::Uuid;

use crate::exports::{CsvStream, import_errors_csv};
use crate::{Error, FieldError, Result};

/// Most lists one import may name.
pub const MAX_LISTS: usize = 100;

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The lists to act on; required for `subscribe` and `unsubscribe`.
    pub lists: Vec<Uuid>,
    /// `subscribe` when absent.
    pub mode: Option<ImportMode>,
    /// Overwrite names and merge attributes of existing subscribers.
    pub overwrite: bool,
    /// The addresses were confirmed elsewhere: double opt-in memberships
    /// arrive confirmed.
    pub confirmed: bool,
}

/// A stored upload: the file's name as sent and its size.
#[derive(Debug, Clone)]
pub struct Received {
    /// The name the client gave it; empty when sent as the whole body.
    pub name: String,
    /// Its size.
    pub bytes: u64,
}

/// Share of the job's file processed, 0 to 1.
#[must_use]
pub fn progress(job: &Import) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "a ratio for display")]
    if job.status == ImportStatus::Finished {
        1.0
    } else if job.file_bytes > 0 {
        (job.bytes_read as f64 / job.file_bytes as f64).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// The import `id`.
///
/// # Errors
///
/// [`Error::NotFound`] when there is none.
pub async fn get(db: &PgPool, id: Uuid) -> Result<Import> {
    let mut conn = db.acquire().await?;
    imports::get(&mut conn, id)
        .await
        .map_err(Error::not_found("import"))
}

/// Checks the options and the file's header, then queues the job.
///
/// # Errors
///
/// [`Error::Invalid`] naming the option or the file at fault.
pub async fn start(
    db: &PgPool,
    id: Uuid,
    path: &std::path::Path,
    params: &ImportOptions,
    upload: Received,
) -> Result<Import> {
    if upload.bytes == 0 {
        return Err(Error::invalid("file", "the file is empty"));
    }
    let mode = params.mode.unwrap_or_default();
    if params.lists.len() > MAX_LISTS {
        return Err(Error::invalid(
            "list",
            format!("at most {MAX_LISTS} lists per import"),
        ));
    }
    if mode.needs_lists() && params.lists.is_empty() {
        return Err(Error::invalid(
            "list",
            format!("a {mode} import needs at least one list"),
        ));
    }
    let mut conn = db.acquire().await?;
    let found = lists::resolve(&mut conn, &params.lists).await?;
    let mut list_ids = Vec::with_capacity(params.lists.len());
    let mut errors = Vec::new();
    for (i, uuid) in params.lists.iter().enumerate() {
        match found.iter().find(|(u, _, _)| u == uuid) {
            Some(&(_, list_id, _)) => list_ids.push(list_id),
            None => errors.push(FieldError::new(
                format!("list[{i}]"),
                format!("no list has id {uuid}"),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    // Refuse a file whose header cannot work now, rather than as a failed job.
    let check = path.to_owned();
    tokio::task::spawn_blocking(move || CsvRows::open(&check).map(|_| ()))
        .await
        .map_err(Error::internal)?
        .map_err(|e| match e {
            ImportError::Io(io) => Error::internal(io),
            other => Error::invalid("file", other.to_string()),
        })?;
    let job = imports::create(
        &mut conn,
        &NewImport {
            uuid: id,
            mode,
            overwrite: params.overwrite,
            confirmed: params.confirmed,
            list_ids,
            file_name: upload.name,
            file_path: path.to_string_lossy().into_owned(),
            owns_file: true,
            file_bytes: i64::try_from(upload.bytes).unwrap_or(i64::MAX),
        },
    )
    .await?;
    Ok(job)
}

/// Cancels a queued or running import and deletes its stored file.
/// Batches already committed stay (each is all-or-nothing).
///
/// # Errors
///
/// [`Error::NotFound`], [`Error::Conflict`] when it has already ended.
pub async fn cancel(db: &PgPool, id: Uuid) -> Result<Import> {
    let mut conn = db.acquire().await?;
    let job = match imports::cancel(&mut conn, id).await {
        Ok(job) => job,
        Err(DbError::Conflict { .. }) => {
            return Err(Error::conflict("status", "the import has already ended"));
        }
        Err(e) => return Err(Error::not_found("import")(e)),
    };
    if job.owns_file {
        store::discard(std::path::Path::new(&job.file_path)).await;
    }
    Ok(job)
}

/// Import `id`'s bad rows as CSV: `line,reason,original`.
///
/// # Errors
///
/// [`Error::NotFound`] when there is no such import.
pub async fn error_report(db: &PgPool, id: Uuid) -> Result<CsvStream> {
    let job = get(db, id).await?;
    Ok(import_errors_csv(db.clone(), job.id))
}
