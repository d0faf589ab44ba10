//! CSV import jobs, their error reports, and the set-based statements that
//! apply one batch of parsed rows.
//!
//! A batch is applied in one transaction: the rows are `COPY`ed into a
//! session-local staging table, then a handful of `INSERT … SELECT` /
//! `UPDATE … FROM` statements apply them all at once, and the job's progress
//! is written in the same transaction. So a batch is either wholly in the
//! database with its progress, or not at all, and a restarted job resumes
//! right after the last committed batch.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use postino_domain::{ImportMode, ImportStatus, OptIn, SubscriberStatus};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// An import job as stored.
#[derive(Debug, Clone)]
pub struct Import {
    /// Internal key.
    pub id: i64,
    /// Public id.
    pub uuid: Uuid,
    /// Where the job stands.
    pub status: ImportStatus,
    /// What it does with each address.
    pub mode: ImportMode,
    /// Overwrite names and merge attributes of existing subscribers.
    pub overwrite: bool,
    /// Memberships of double opt-in lists arrive confirmed.
    pub confirmed: bool,
    /// Internal keys of the lists it acts on.
    pub list_ids: Vec<i64>,
    /// The file's name as uploaded.
    pub file_name: String,
    /// Where the file is.
    pub file_path: String,
    /// Whether the file is ours to delete when the job ends.
    pub owns_file: bool,
    /// The file's size.
    pub file_bytes: i64,
    /// Bytes of the file behind the last committed batch.
    pub bytes_read: i64,
    /// Data rows behind the last committed batch (good and bad).
    pub rows_read: i64,
    /// Subscribers created.
    pub imported: i64,
    /// Existing subscribers changed (data or memberships).
    pub updated: i64,
    /// Good rows that changed nothing.
    pub skipped: i64,
    /// Bad rows, listed in the error report.
    pub failed: i64,
    /// Why the whole job failed.
    pub error: Option<String>,
    /// The holder's claim; see [`claim_next`].
    pub lease_token: Option<Uuid>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a worker first took it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

struct ImportRow {
    id: i64,
    uuid: Uuid,
    status: String,
    mode: String,
    overwrite: bool,
    confirmed: bool,
    list_ids: Vec<i64>,
    file_name: String,
    file_path: String,
    owns_file: bool,
    file_bytes: i64,
    bytes_read: i64,
    rows_read: i64,
    imported: i64,
    updated: i64,
    skipped: i64,
    failed: i64,
    error: Option<String>,
    lease_token: Option<Uuid>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<ImportRow> for Import {
    type Error = DbError;
    fn try_from(r: ImportRow) -> Result<Self, DbError> {
        Ok(Self {
            id: r.id,
            uuid: r.uuid,
            status: r.status.parse()?,
            mode: r.mode.parse()?,
            overwrite: r.overwrite,
            confirmed: r.confirmed,
            list_ids: r.list_ids,
            file_name: r.file_name,
            file_path: r.file_path,
            owns_file: r.owns_file,
            file_bytes: r.file_bytes,
            bytes_read: r.bytes_read,
            rows_read: r.rows_read,
            imported: r.imported,
            updated: r.updated,
            skipped: r.skipped,
            failed: r.failed,
            error: r.error,
            lease_token: r.lease_token,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        })
    }
}

/// A job to create.
#[derive(Debug, Clone)]
pub struct NewImport {
    /// Public id; also names the stored upload.
    pub uuid: Uuid,
    /// What it does.
    pub mode: ImportMode,
    /// Overwrite existing subscribers' data.
    pub overwrite: bool,
    /// Double opt-in memberships arrive confirmed.
    pub confirmed: bool,
    /// Lists (internal keys).
    pub list_ids: Vec<i64>,
    /// Name as uploaded.
    pub file_name: String,
    /// Where the file is.
    pub file_path: String,
    /// Delete the file when the job ends.
    pub owns_file: bool,
    /// Size in bytes.
    pub file_bytes: i64,
}

/// Creates a queued job.
///
/// # Errors
///
/// [`DbError::Database`] if the insert fails.
pub async fn create(conn: &mut PgConnection, new: &NewImport) -> Result<Import, DbError> {
    let row = sqlx::query_as!(
        ImportRow,
        r#"INSERT INTO imports (uuid, mode, overwrite, confirmed, list_ids, file_name,
                                file_path, owns_file, file_bytes)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           RETURNING id, uuid, status, mode, overwrite, confirmed, list_ids, file_name,
                     file_path, owns_file, file_bytes, bytes_read, rows_read, imported,
                     updated, skipped, failed, error, lease_token, created_at, started_at,
                     finished_at"#,
        new.uuid,
        new.mode.as_str(),
        new.overwrite,
        new.confirmed,
        &new.list_ids,
        new.file_name,
        new.file_path,
        new.owns_file,
        new.file_bytes,
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// One job by public id.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such job.
pub async fn get(conn: &mut PgConnection, uuid: Uuid) -> Result<Import, DbError> {
    let row = sqlx::query_as!(
        ImportRow,
        r#"SELECT id, uuid, status, mode, overwrite, confirmed, list_ids, file_name,
                  file_path, owns_file, file_bytes, bytes_read, rows_read, imported,
                  updated, skipped, failed, error, lease_token, created_at, started_at,
                  finished_at
           FROM imports WHERE uuid = $1"#,
        uuid
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// The most recent jobs, newest first.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn recent(conn: &mut PgConnection, limit: i64) -> Result<Vec<Import>, DbError> {
    let rows = sqlx::query_as!(
        ImportRow,
        r#"SELECT id, uuid, status, mode, overwrite, confirmed, list_ids, file_name,
                  file_path, owns_file, file_bytes, bytes_read, rows_read, imported,
                  updated, skipped, failed, error, lease_token, created_at, started_at,
                  finished_at
           FROM imports ORDER BY id DESC LIMIT $1"#,
        limit
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Import::try_from).collect()
}

/// Claims the oldest job that is queued, or running under a lease that
/// expired (its process died), for `lease_secs` seconds under a fresh token.
///
/// `SKIP LOCKED` lets any number of processes claim concurrently without
/// waiting on each other; the partial index `imports_claimable` keeps the
/// scan to live jobs.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn claim_next(
    conn: &mut PgConnection,
    lease_secs: f64,
) -> Result<Option<Import>, DbError> {
    let row = sqlx::query_as!(
        ImportRow,
        r#"UPDATE imports SET status = 'running', lease_token = $1,
                  lease_until = now() + make_interval(secs => $2),
                  started_at = COALESCE(started_at, now()), updated_at = now()
           WHERE id = (SELECT id FROM imports
                       WHERE status = 'queued' OR (status = 'running' AND lease_until < now())
                       ORDER BY created_at, id LIMIT 1
                       FOR UPDATE SKIP LOCKED)
           RETURNING id, uuid, status, mode, overwrite, confirmed, list_ids, file_name,
                     file_path, owns_file, file_bytes, bytes_read, rows_read, imported,
                     updated, skipped, failed, error, lease_token, created_at, started_at,
                     finished_at"#,
        Uuid::new_v4(),
        lease_secs,
    )
    .fetch_optional(conn)
    .await?;
    row.map(Import::try_from).transpose()
}

/// Claims one given job if it is still queued (the command line creates
/// its job and runs it at once).
///
/// # Errors
///
/// [`DbError::NotFound`] if it is not queued.
pub async fn claim(conn: &mut PgConnection, id: i64, lease_secs: f64) -> Result<Import, DbError> {
    let row = sqlx::query_as!(
        ImportRow,
        r#"UPDATE imports SET status = 'running', lease_token = $2,
                  lease_until = now() + make_interval(secs => $3),
                  started_at = COALESCE(started_at, now()), updated_at = now()
           WHERE id = $1 AND status = 'queued'
           RETURNING id, uuid, status, mode, overwrite, confirmed, list_ids, file_name,
                     file_path, owns_file, file_bytes, bytes_read, rows_read, imported,
                     updated, skipped, failed, error, lease_token, created_at, started_at,
                     finished_at"#,
        id,
        Uuid::new_v4(),
        lease_secs,
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// What one batch did, added to the job's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Subscribers created.
    pub imported: i64,
    /// Existing subscribers changed.
    pub updated: i64,
    /// Good rows that changed nothing.
    pub skipped: i64,
    /// Bad rows.
    pub failed: i64,
}

/// Records progress after a batch and extends the lease, inside the batch's
/// transaction. Returns false if the job is no longer held under `token`
/// (cancelled, or taken over): the caller must then roll back.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn commit_progress(
    conn: &mut PgConnection,
    id: i64,
    token: Uuid,
    bytes_read: i64,
    rows_read: i64,
    counts: BatchCounts,
    lease_secs: f64,
) -> Result<bool, DbError> {
    let result = sqlx::query!(
        r#"UPDATE imports SET bytes_read = $3, rows_read = $4,
                  imported = imported + $5, updated = updated + $6,
                  skipped = skipped + $7, failed = failed + $8,
                  lease_until = now() + make_interval(secs => $9), updated_at = now()
           WHERE id = $1 AND lease_token = $2 AND status = 'running'"#,
        id,
        token,
        bytes_read,
        rows_read,
        counts.imported,
        counts.updated,
        counts.skipped,
        counts.failed,
        lease_secs,
    )
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Ends a held job as `status` (finished or failed) with an optional reason.
/// Returns false if the job was no longer held under `token`.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn finish(
    conn: &mut PgConnection,
    id: i64,
    token: Uuid,
    status: ImportStatus,
    error: Option<&str>,
) -> Result<bool, DbError> {
    let result = sqlx::query!(
        r#"UPDATE imports SET status = $3, error = $4, finished_at = now(),
                  lease_token = NULL, lease_until = NULL, updated_at = now(),
                  bytes_read = CASE WHEN $3 = 'finished' THEN file_bytes ELSE bytes_read END
           WHERE id = $1 AND lease_token = $2 AND status = 'running'"#,
        id,
        token,
        status.as_str(),
        error,
    )
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Cancels a queued or running job. A running job's worker notices at its
/// next batch, which it rolls back; batches committed before stay.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such job; [`DbError::Conflict`] on
/// `imports_status` if it had already ended.
pub async fn cancel(conn: &mut PgConnection, uuid: Uuid) -> Result<Import, DbError> {
    let row = sqlx::query_as!(
        ImportRow,
        r#"UPDATE imports SET status = 'cancelled', finished_at = now(), lease_token = NULL,
                  lease_until = NULL, updated_at = now()
           WHERE uuid = $1 AND status IN ('queued', 'running')
           RETURNING id, uuid, status, mode, overwrite, confirmed, list_ids, file_name,
                     file_path, owns_file, file_bytes, bytes_read, rows_read, imported,
                     updated, skipped, failed, error, lease_token, created_at, started_at,
                     finished_at"#,
        uuid
    )
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => row.try_into(),
        None => {
            // Tell "no such job" from "already over".
            get(conn, uuid).await?;
            Err(DbError::Conflict {
                constraint: "imports_status".to_owned(),
            })
        }
    }
}

/// Puts a held job back in the queue with its progress, for any process to
/// resume (a worker stopping for shutdown).
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn release(conn: &mut PgConnection, id: i64, token: Uuid) -> Result<(), DbError> {
    sqlx::query!(
        r#"UPDATE imports SET status = 'queued', lease_token = NULL, lease_until = NULL,
                  updated_at = now()
           WHERE id = $1 AND lease_token = $2 AND status = 'running'"#,
        id,
        token
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The opt-in of each list that still exists among `ids`.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn list_opt_ins(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<Vec<(i64, OptIn)>, DbError> {
    let rows = sqlx::query!(
        "SELECT id, opt_in FROM lists WHERE id = ANY($1) ORDER BY id",
        ids
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| Ok((r.id, r.opt_in.parse()?)))
        .collect()
}

/// The list named exactly `name` (the command line takes names), if one
/// list has that name.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn list_id_by_name(conn: &mut PgConnection, name: &str) -> Result<Option<i64>, DbError> {
    let ids = sqlx::query_scalar!("SELECT id FROM lists WHERE name = $1 LIMIT 2", name)
        .fetch_all(conn)
        .await?;
    Ok(match ids.as_slice() {
        [one] => Some(*one),
        _ => None,
    })
}

/// A row an import could not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Line of the file where the row starts (1 is the header).
    pub line: i64,
    /// The row as read.
    pub original: String,
    /// Why it was refused.
    pub reason: String,
}

/// Records bad rows, in the batch's transaction.
///
/// # Errors
///
/// [`DbError::Database`] if the insert fails.
pub async fn record_errors(
    conn: &mut PgConnection,
    import_id: i64,
    errors: &[RowError],
) -> Result<(), DbError> {
    if errors.is_empty() {
        return Ok(());
    }
    let lines: Vec<i64> = errors.iter().map(|e| e.line).collect();
    let originals: Vec<String> = errors.iter().map(|e| e.original.clone()).collect();
    let reasons: Vec<String> = errors.iter().map(|e| e.reason.clone()).collect();
    sqlx::query!(
        r#"INSERT INTO import_errors (import_id, line, original, reason)
           SELECT $1, e.line, e.original, e.reason
           FROM unnest($2::bigint[], $3::text[], $4::text[]) AS e(line, original, reason)
           ON CONFLICT (import_id, line) DO NOTHING"#,
        import_id,
        &lines,
        &originals,
        &reasons,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Bad rows of a job after `after_line`, in line order (keyset pages, so a
/// report of millions of rows streams in constant memory).
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn errors_after(
    conn: &mut PgConnection,
    import_id: i64,
    after_line: i64,
    limit: i64,
) -> Result<Vec<RowError>, DbError> {
    Ok(sqlx::query_as!(
        RowError,
        r#"SELECT line, original, reason FROM import_errors
           WHERE import_id = $1 AND line > $2 ORDER BY line LIMIT $3"#,
        import_id,
        after_line,
        limit
    )
    .fetch_all(conn)
    .await?)
}

// ---------------------------------------------------------------------------
// Applying a batch.
//
// These statements run against `import_staging`, a temporary table private to
// the session, so they are checked at run time rather than by `query!` (a
// temporary table does not exist when the crate is compiled).

/// Creates the session's staging table if needed. It empties itself at every
/// commit, so each batch starts clean.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn prepare_staging(conn: &mut PgConnection) -> Result<(), DbError> {
    sqlx::raw_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS import_staging (
             line       bigint NOT NULL,
             uuid       uuid NOT NULL,
             email      text NOT NULL,
             -- As the unique index subscribers_email_key compares.
             email_key  text GENERATED ALWAYS AS (lower(email)) STORED,
             name       text,
             attributes jsonb
         ) ON COMMIT DELETE ROWS",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Tells the planner, for the rest of the batch's transaction, to probe
/// `subscribers` through its unique btree on `lower(email)` for each staged
/// row, whatever the statistics say. Measured on this schema:
///
/// - with a hash join, every batch reads every subscriber (380 ms per
///   10,000-row batch at 300,000 subscribers, growing with the table; by
///   index, 65 ms, flat);
/// - right after a large import, before autovacuum has analysed the table,
///   the planner took the trigram GIN index (`subscribers_email_trgm`) for
///   the equality, and each probe then rechecked thousands of rows sharing
///   `@example.com`: a batch did not finish in 14 minutes. GIN indexes are
///   only reachable through bitmap scans, so turning those off rules it out.
/// - on the first batch into a new database, with no statistics at all, the
///   planner took `subscribers` for tiny and joined it by sequential scan in
///   a nested loop: 3.7 s for 5,000 rows, quadratic in the batch. With
///   `no_seqscan`, sequential scans are discouraged too (the staging table,
///   which has no index, is still read sequentially). The caller sets it
///   for imports that insert, not for overwrites: on the 1,000,000-row
///   benchmark it doubled the overwrite path (64 s without, 124 s with, in
///   consecutive runs), whose `UPDATE … FROM` does better with its own plan.
///
/// `SET LOCAL` ends with the transaction.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn prefer_index_probes(conn: &mut PgConnection, no_seqscan: bool) -> Result<(), DbError> {
    sqlx::raw_sql(
        "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off;
         SET LOCAL enable_bitmapscan = off",
    )
    .execute(&mut *conn)
    .await?;
    if no_seqscan {
        sqlx::raw_sql("SET LOCAL enable_seqscan = off")
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Loads one batch into the staging table with `COPY` (text format): one
/// line per row, columns as in [`prepare_staging`], built by
/// [`push_copy_field`].
///
/// # Errors
///
/// [`DbError::Database`] if the copy fails.
pub async fn copy_into_staging(conn: &mut PgConnection, data: Vec<u8>) -> Result<u64, DbError> {
    let mut copy = conn
        .copy_in_raw("COPY import_staging (line, uuid, email, name, attributes) FROM STDIN")
        .await?;
    copy.send(data).await?;
    Ok(copy.finish().await?)
}

/// Appends one field in `COPY` text format: `None` is NULL, and backslash,
/// tab, newline and carriage return are escaped.
pub fn push_copy_field(buf: &mut Vec<u8>, value: Option<&str>) {
    let Some(value) = value else {
        buf.extend_from_slice(b"\\N");
        return;
    };
    for &b in value.as_bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            other => buf.push(other),
        }
    }
}

/// Staged rows whose attributes, merged into the existing subscriber's,
/// would break the attribute limits (100 keys, 16 KiB); they are taken out of
/// the batch and returned as (line, e-mail) so the caller reports them.
///
/// PostgreSQL's text form of jsonb has a space after each `:` and `,`, so the
/// size check is slightly stricter than the domain's; it errs on refusing.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn take_oversized_merges(conn: &mut PgConnection) -> Result<Vec<(i64, String)>, DbError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "DELETE FROM import_staging st USING subscribers s
         WHERE lower(s.email) = st.email_key AND st.attributes IS NOT NULL
           AND (length((s.attributes || st.attributes)::text) > 16384
                OR (SELECT count(*) FROM jsonb_object_keys(s.attributes || st.attributes)) > 100)
         RETURNING st.line, st.email",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

/// Overwrites existing subscribers' names (where the row has one) and merges
/// their attributes key by key (`||`: keys in the file win, others stay).
/// Returns the ids actually changed.
async fn overwrite_existing(conn: &mut PgConnection) -> Result<Vec<i64>, DbError> {
    Ok(sqlx::query_scalar(
        "UPDATE subscribers s
         SET name = COALESCE(st.name, s.name),
             attributes = s.attributes || COALESCE(st.attributes, '{}'),
             updated_at = now()
         FROM import_staging st
         WHERE lower(s.email) = st.email_key
           AND (COALESCE(st.name, s.name) <> s.name
                OR s.attributes || COALESCE(st.attributes, '{}') <> s.attributes)
         RETURNING s.id",
    )
    .fetch_all(conn)
    .await?)
}

/// Creates the staged addresses that are not subscribers yet, with `status`.
/// Returns the new ids. `ON CONFLICT DO NOTHING` also covers an address
/// created by someone else since the batch was staged.
async fn insert_new(
    conn: &mut PgConnection,
    status: SubscriberStatus,
) -> Result<Vec<i64>, DbError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO subscribers (uuid, email, name, attributes, status)
         SELECT st.uuid, st.email, COALESCE(st.name, ''), COALESCE(st.attributes, '{}'), $1
         FROM import_staging st
         ON CONFLICT ((lower(email))) DO NOTHING
         RETURNING id",
    )
    .bind(status.as_str())
    .fetch_all(conn)
    .await?)
}

/// What applying a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Subscribers created.
    pub imported: i64,
    /// Existing subscribers changed.
    pub updated: i64,
}

/// How a batch is applied.
#[derive(Debug, Clone)]
pub struct ApplyPlan {
    /// What to do.
    pub mode: ImportMode,
    /// Overwrite names and merge attributes of existing subscribers.
    pub overwrite: bool,
    /// For subscribe: each list with the status a new membership gets.
    pub lists: Vec<(i64, postino_domain::MembershipStatus)>,
}

/// Applies the staged batch. Call inside the batch's transaction, after
/// [`copy_into_staging`] (and [`take_oversized_merges`] when overwriting).
///
/// # Errors
///
/// [`DbError::Database`] if a statement fails.
pub async fn apply_staged(conn: &mut PgConnection, plan: &ApplyPlan) -> Result<Applied, DbError> {
    let mut changed: HashSet<i64> = HashSet::new();
    if plan.overwrite {
        changed.extend(overwrite_existing(conn).await?);
    }
    let list_ids: Vec<i64> = plan.lists.iter().map(|(id, _)| *id).collect();
    let inserted: Vec<i64> = match plan.mode {
        ImportMode::Subscribe => {
            let inserted = insert_new(conn, SubscriberStatus::Enabled).await?;
            let statuses: Vec<&str> = plan.lists.iter().map(|(_, s)| s.as_str()).collect();
            // New memberships get the list's status. An existing one is left
            // alone, except that "unconfirmed" becomes "confirmed" when the
            // caller vouches for it: an import never re-subscribes someone
            // who unsubscribed, and never touches a blocklisted subscriber.
            let members: Vec<i64> = sqlx::query_scalar(
                "INSERT INTO subscriber_lists AS sl (list_id, subscriber_id, status)
                 SELECT l.list_id, s.id, l.status
                 FROM import_staging st
                 JOIN subscribers s ON lower(s.email) = st.email_key
                 CROSS JOIN unnest($1::bigint[], $2::text[]) AS l(list_id, status)
                 WHERE s.status = 'enabled'
                 ON CONFLICT (list_id, subscriber_id) DO UPDATE
                     SET status = 'confirmed', updated_at = now()
                     WHERE sl.status = 'unconfirmed' AND excluded.status = 'confirmed'
                 RETURNING subscriber_id",
            )
            .bind(&list_ids)
            .bind(&statuses)
            .fetch_all(&mut *conn)
            .await?;
            changed.extend(members);
            inserted
        }
        ImportMode::Unsubscribe => {
            let left: Vec<i64> = sqlx::query_scalar(
                "UPDATE subscriber_lists sl SET status = 'unsubscribed', updated_at = now()
                 FROM import_staging st JOIN subscribers s ON lower(s.email) = st.email_key
                 WHERE sl.subscriber_id = s.id AND sl.list_id = ANY($1)
                   AND sl.status <> 'unsubscribed'
                 RETURNING sl.subscriber_id",
            )
            .bind(&list_ids)
            .fetch_all(&mut *conn)
            .await?;
            changed.extend(left);
            Vec::new()
        }
        ImportMode::Blocklist => {
            // Blocklisting also unsubscribes from every list, as the bulk
            // action does; unknown addresses are created blocklisted so a
            // later sign-up cannot bring them back.
            let blocked: Vec<i64> = sqlx::query_scalar(
                "WITH hit AS (
                     UPDATE subscribers s SET status = 'blocklisted', updated_at = now()
                     FROM import_staging st
                     WHERE lower(s.email) = st.email_key AND s.status <> 'blocklisted'
                     RETURNING s.id),
                 unsubscribed AS (
                     UPDATE subscriber_lists SET status = 'unsubscribed', updated_at = now()
                     WHERE subscriber_id IN (SELECT id FROM hit) AND status <> 'unsubscribed')
                 SELECT id FROM hit",
            )
            .fetch_all(&mut *conn)
            .await?;
            changed.extend(blocked);
            insert_new(conn, SubscriberStatus::Blocklisted).await?
        }
    };
    for id in &inserted {
        changed.remove(id);
    }
    Ok(Applied {
        imported: i64::try_from(inserted.len()).unwrap_or(i64::MAX),
        updated: i64::try_from(changed.len()).unwrap_or(i64::MAX),
    })
}
