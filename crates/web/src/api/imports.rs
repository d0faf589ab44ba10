//! `/api/v1/imports`: CSV uploads that become background import jobs, their
//! progress, their error reports, and cancelling them.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use postino_db::imports::{self, Import, NewImport};
use postino_db::{DbError, PgPool, lists};
use postino_domain::text::{csv_cell, excerpt};
use postino_domain::{ImportMode, ImportStatus};
use postino_importer::store::{self, StoreError};
use postino_importer::{CsvRows, ImportError};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{FieldError, Problem, WebError};
use crate::extract::IdPath;

/// Error rows per database read while streaming a report.
const ERROR_BATCH: i64 = 5_000;
/// Most lists one import may name.
const MAX_LISTS: usize = 100;
/// Largest multipart field besides the file: a hundred list ids fit with
/// room to spare.
const MAX_FIELD_BYTES: usize = 8 * 1024;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // The upload is streamed to disk under its own limit,
        // import.max_upload_bytes, counted by the handler; the API-wide
        // body limit is for JSON and must not apply here.
        .routes(routes!(create_import, list_imports))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .routes(routes!(get_import, cancel_import))
        .routes(routes!(import_errors))
}

/// An import job.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportResponse {
    id: Uuid,
    status: ImportStatus,
    mode: ImportMode,
    /// Existing subscribers' names are overwritten and attributes merged.
    overwrite: bool,
    /// Double opt-in memberships arrive confirmed.
    confirmed: bool,
    file_name: String,
    file_bytes: i64,
    /// Data rows read so far (good and bad).
    rows_read: i64,
    /// Subscribers created.
    imported: i64,
    /// Existing subscribers changed.
    updated: i64,
    /// Good rows that changed nothing (already on the lists, blocklisted, …).
    skipped: i64,
    /// Bad rows; see `errors_url`.
    failed: i64,
    /// Share of the file processed, 0 to 1.
    progress: f64,
    /// Why the whole import failed, if it did.
    error: Option<String>,
    /// The bad rows as CSV: line, reason, original row.
    errors_url: String,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

/// Share of the job's file processed, 0 to 1.
pub(crate) fn progress(job: &Import) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "a ratio for display")]
    if job.status == ImportStatus::Finished {
        1.0
    } else if job.file_bytes > 0 {
        (job.bytes_read as f64 / job.file_bytes as f64).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

impl From<Import> for ImportResponse {
    fn from(job: Import) -> Self {
        let progress = progress(&job);
        Self {
            errors_url: format!("/api/v1/imports/{}/errors", job.uuid),
            id: job.uuid,
            status: job.status,
            mode: job.mode,
            overwrite: job.overwrite,
            confirmed: job.confirmed,
            file_name: job.file_name,
            file_bytes: job.file_bytes,
            rows_read: job.rows_read,
            imported: job.imported,
            updated: job.updated,
            skipped: job.skipped,
            failed: job.failed,
            progress,
            error: job.error,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        }
    }
}

/// Recent imports, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportList {
    items: Vec<ImportResponse>,
}

/// How to import; as query parameters, or as multipart fields beside `file`.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ImportParams {
    /// A list to act on; repeat the parameter, or separate ids with commas.
    /// Required for `subscribe` and `unsubscribe`.
    #[param(value_type = Option<Vec<Uuid>>)]
    pub(crate) list: Vec<Uuid>,
    /// `subscribe` (default), `unsubscribe` or `blocklist`.
    #[param(value_type = Option<ImportMode>, inline)]
    pub(crate) mode: Option<ImportMode>,
    /// Overwrite names and merge attributes of existing subscribers (default false).
    #[param(value_type = Option<bool>)]
    pub(crate) overwrite: bool,
    /// The addresses were confirmed elsewhere: double opt-in memberships
    /// arrive confirmed (default false).
    #[param(value_type = Option<bool>)]
    pub(crate) confirmed: bool,
}

impl ImportParams {
    fn set(&mut self, key: &str, value: &str) -> Result<(), WebError> {
        match key {
            "list" | "lists" | "list[]" | "lists[]" => {
                for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let id = Uuid::parse_str(part).map_err(|_| {
                        WebError::invalid("list", format!("{} is not a list id", excerpt(part)))
                    })?;
                    self.list.push(id);
                }
            }
            "mode" => {
                self.mode = Some(value.trim().parse().map_err(
                    |e: postino_domain::DomainError| WebError::invalid("mode", e.reason),
                )?);
            }
            "overwrite" => self.overwrite = flag("overwrite", value)?,
            "confirmed" => self.confirmed = flag("confirmed", value)?,
            other => {
                return Err(WebError::invalid(
                    field_name(other),
                    "is not a parameter of an import",
                ));
            }
        }
        Ok(())
    }
}

fn flag(field: &str, value: &str) -> Result<bool, WebError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(WebError::invalid(field, "must be true or false")),
    }
}

fn store_error<E: std::fmt::Display>(e: StoreError<E>) -> WebError {
    match e {
        StoreError::Import(ImportError::TooLarge(_)) => WebError::PayloadTooLarge,
        StoreError::Import(other) => WebError::Internal(Box::new(other)),
        StoreError::Source(e) => WebError::Malformed(format!("reading the upload failed: {e}")),
    }
}

/// Upload a CSV file and start importing it.
///
/// Send the file as the body with `Content-Type: text/csv` and the options
/// as query parameters, or as `multipart/form-data` with the file in a field
/// named `file` and the options as query parameters or further fields. The
/// file is checked for a usable header at once; rows are imported in the
/// background: follow the job at the returned `Location`.
#[utoipa::path(post, path = "/imports", tag = "imports", params(ImportParams),
    request_body(content = String, content_type = "text/csv",
                 description = "The CSV file (or multipart/form-data with a `file` field)"),
    responses((status = 202, description = "Accepted", body = ImportResponse),
              (status = 400, description = "Response", body = Problem, content_type = "application/problem+json"),
              (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn create_import(
    State(state): State<AppState>,
    request: Request,
) -> Result<(StatusCode, HeaderMap, Json<ImportResponse>), WebError> {
    let mut params = ImportParams::default();
    for (key, value) in form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
    {
        params.set(&key, &value)?;
    }
    let job = upload(&state, request, &mut params, &[]).await?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/imports/{}", job.uuid)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::ACCEPTED, headers, Json(job.into())))
}

/// Stores the request's file and queues its import job; the API and the
/// dashboard's upload form both start imports here.
///
/// `params` starts with any options already read (the API's query string)
/// and gains the multipart fields as they are read, so a caller can show
/// the choices again when the upload is refused. Multipart fields named in
/// `ignore` are skipped (the dashboard's CSRF token).
pub(crate) async fn upload(
    state: &AppState,
    request: Request,
    params: &mut ImportParams,
    ignore: &[&str],
) -> Result<Import, WebError> {
    let id = Uuid::now_v7();
    let settings = &state.service.imports;
    let (path, mut file) = store::create(&settings.dir, id)
        .await
        .map_err(|e| WebError::Internal(Box::new(e)))?;
    let stored = receive(state, request, &mut file, params, ignore).await;
    drop(file);
    let result = match stored {
        Ok(upload) => start(&state.db, id, &path, params, upload).await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        store::discard(&path).await;
    }
    result
}

/// What was received: the file's name and size.
struct Upload {
    name: String,
    bytes: u64,
}

/// Streams the request's file into `file`, collecting multipart options.
async fn receive(
    state: &AppState,
    request: Request,
    file: &mut tokio::fs::File,
    params: &mut ImportParams,
    ignore: &[&str],
) -> Result<Upload, WebError> {
    let limit = state.service.imports.max_upload_bytes;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok());
    let multipart = content_type
        .as_ref()
        .is_some_and(|m| m.type_() == mime::MULTIPART && m.subtype() == mime::FORM_DATA);
    if multipart {
        let mut form = Multipart::from_request(request, state)
            .await
            .map_err(|e| WebError::Malformed(e.body_text()))?;
        let mut upload: Option<Upload> = None;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| WebError::Malformed(e.body_text()))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            if name == "file" {
                if upload.is_some() {
                    return Err(WebError::invalid("file", "send one file per import"));
                }
                let file_name = field.file_name().unwrap_or_default().to_owned();
                let bytes = store::append_stream(file, field, 0, limit)
                    .await
                    .map_err(store_error)?;
                upload = Some(Upload {
                    name: file_name,
                    bytes,
                });
            } else if !ignore.contains(&name.as_str()) {
                let checked = match small_field(&name, field, limit).await {
                    Ok(value) => params.set(&name, &value),
                    Err(e) => Err(e),
                };
                if let Err(e) = checked {
                    // Read the rest (discarding it, up to the upload limit)
                    // so the client, still sending, gets the answer rather
                    // than a reset connection.
                    drain(&mut form, limit).await;
                    return Err(e);
                }
            }
        }
        upload.ok_or_else(|| WebError::invalid("file", "the form has no field named file"))
    } else {
        let csv_like = content_type.as_ref().is_some_and(|m| {
            (m.type_() == mime::TEXT && (m.subtype() == "csv" || m.subtype() == mime::PLAIN))
                || m.essence_str() == "application/octet-stream"
                || m.essence_str() == "application/vnd.ms-excel"
        });
        if !csv_like {
            return Err(WebError::Malformed(
                "send the file with Content-Type: text/csv, or as multipart/form-data \
                 with a field named file"
                    .to_owned(),
            ));
        }
        let body = request.into_body().into_data_stream();
        let bytes = store::append_stream(file, body, 0, limit)
            .await
            .map_err(store_error)?;
        Ok(Upload {
            name: String::new(),
            bytes,
        })
    }
}

/// Reads a multipart field other than the file, refusing it once it passes
/// [`MAX_FIELD_BYTES`]: the upload route has no body limit (the file is
/// streamed to disk under its own), so a field read whole could be as large
/// as the request. The rest of a refused field is read and dropped (up to
/// `limit` bytes), never kept. The error names the field, cut short, and
/// never echoes the value.
async fn small_field(
    name: &str,
    mut field: axum::extract::multipart::Field<'_>,
    limit: u64,
) -> Result<String, WebError> {
    let mut value = Vec::new();
    let mut total: u64 = 0;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| WebError::Malformed(e.body_text()))?
    {
        total += chunk.len() as u64;
        if total > limit {
            break;
        }
        if value.len() + chunk.len() <= MAX_FIELD_BYTES {
            value.extend_from_slice(&chunk);
        } else {
            value = Vec::new();
        }
    }
    if total > MAX_FIELD_BYTES as u64 {
        return Err(WebError::invalid(
            field_name(name),
            format!("must be at most {MAX_FIELD_BYTES} bytes"),
        ));
    }
    String::from_utf8(value).map_err(|_| WebError::invalid(field_name(name), "must be UTF-8 text"))
}

/// Reads and drops what is left of a refused multipart body, up to `limit`
/// bytes (a client may send that much for the file anyway).
async fn drain(form: &mut Multipart, limit: u64) {
    let mut total: u64 = 0;
    while let Ok(Some(mut field)) = form.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            total += chunk.len() as u64;
            if total > limit {
                return;
            }
        }
    }
}

/// A multipart field's name as an error may name it: its name is as much
/// the client's as its value, so a long one is cut.
fn field_name(name: &str) -> String {
    match name.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_owned(),
    }
}

/// Checks the options and the file's header, then queues the job.
async fn start(
    db: &PgPool,
    id: Uuid,
    path: &std::path::Path,
    params: &ImportParams,
    upload: Upload,
) -> Result<Import, WebError> {
    if upload.bytes == 0 {
        return Err(WebError::invalid("file", "the file is empty"));
    }
    let mode = params.mode.unwrap_or_default();
    if params.list.len() > MAX_LISTS {
        return Err(WebError::invalid(
            "list",
            format!("at most {MAX_LISTS} lists per import"),
        ));
    }
    if mode.needs_lists() && params.list.is_empty() {
        return Err(WebError::invalid(
            "list",
            format!("a {mode} import needs at least one list"),
        ));
    }
    let mut conn = db.acquire().await?;
    let found = lists::resolve(&mut conn, &params.list).await?;
    let mut list_ids = Vec::with_capacity(params.list.len());
    let mut errors = Vec::new();
    for (i, uuid) in params.list.iter().enumerate() {
        match found.iter().find(|(u, _, _)| u == uuid) {
            Some(&(_, list_id, _)) => list_ids.push(list_id),
            None => errors.push(FieldError::new(
                format!("list[{i}]"),
                format!("no list has id {uuid}"),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(WebError::Invalid(errors));
    }
    // Refuse a file whose header cannot work now, rather than as a failed job.
    let check = path.to_owned();
    tokio::task::spawn_blocking(move || CsvRows::open(&check).map(|_| ()))
        .await
        .map_err(|e| WebError::Internal(Box::new(e)))?
        .map_err(|e| match e {
            ImportError::Io(io) => WebError::Internal(Box::new(io)),
            other => WebError::invalid("file", other.to_string()),
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

/// Recent imports, newest first (up to 100).
#[utoipa::path(get, path = "/imports", tag = "imports",
    responses((status = 200, description = "OK", body = ImportList)))]
async fn list_imports(State(state): State<AppState>) -> Result<Json<ImportList>, WebError> {
    let mut conn = state.db.acquire().await?;
    let items = imports::recent(&mut conn, 100).await?;
    Ok(Json(ImportList {
        items: items.into_iter().map(ImportResponse::from).collect(),
    }))
}

/// One import: status, counters and progress.
#[utoipa::path(get, path = "/imports/{id}", tag = "imports", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = ImportResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn get_import(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<ImportResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let job = imports::get(&mut conn, id)
        .await
        .map_err(postino_service::Error::not_found("import"))?;
    Ok(Json(job.into()))
}

/// Cancel an import that is queued or running. Batches already committed
/// stay (each batch is all-or-nothing); the rest of the file is not read.
#[utoipa::path(delete, path = "/imports/{id}", tag = "imports", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = ImportResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn cancel_import(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<ImportResponse>, WebError> {
    Ok(Json(cancel(&state.db, id).await?.into()))
}

/// Cancels a queued or running import and deletes its stored file.
pub(crate) async fn cancel(db: &PgPool, id: Uuid) -> Result<Import, WebError> {
    let mut conn = db.acquire().await?;
    let job = match imports::cancel(&mut conn, id).await {
        Ok(job) => job,
        Err(DbError::Conflict { .. }) => {
            return Err(WebError::Conflict {
                field: "status".to_owned(),
                message: "the import has already ended".to_owned(),
            });
        }
        Err(e) => return Err(postino_service::Error::not_found("import")(e).into()),
    };
    if job.owns_file {
        store::discard(std::path::Path::new(&job.file_path)).await;
    }
    Ok(job)
}

/// The rows an import could not take, as CSV: `line,reason,original`.
#[utoipa::path(get, path = "/imports/{id}/errors", tag = "imports", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = String, content_type = "text/csv"),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn import_errors(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Response, WebError> {
    error_report(&state.db, id).await
}

/// An import's bad rows as a streamed CSV download: `line,reason,original`.
pub(crate) async fn error_report(db: &PgPool, id: Uuid) -> Result<Response, WebError> {
    let mut conn = db.acquire().await?;
    let job = imports::get(&mut conn, id)
        .await
        .map_err(postino_service::Error::not_found("import"))?;
    drop(conn);
    let start = ErrorStream {
        pool: db.clone(),
        import_id: job.id,
        after: 0,
        started: false,
        done: false,
    };
    let stream = futures_util::stream::try_unfold(start, |mut st| async move {
        if st.done {
            return Ok::<_, std::io::Error>(None);
        }
        let mut writer = csv::Writer::from_writer(Vec::new());
        if !st.started {
            st.started = true;
            writer.write_record(["line", "reason", "original"])?;
        }
        let mut conn = st.pool.acquire().await.map_err(std::io::Error::other)?;
        let rows = imports::errors_after(&mut conn, st.import_id, st.after, ERROR_BATCH)
            .await
            .map_err(std::io::Error::other)?;
        drop(conn);
        st.done = rows.len() < usize::try_from(ERROR_BATCH).unwrap_or(usize::MAX);
        for row in rows {
            // The original row is whatever the file held, and the reason
            // may quote it: neither may run as a formula.
            writer.write_record([
                row.line.to_string().as_str(),
                &csv_cell(&row.reason),
                &csv_cell(&row.original),
            ])?;
            st.after = row.line;
        }
        let bytes = writer
            .into_inner()
            .map_err(csv::IntoInnerError::into_error)?;
        Ok(Some((Bytes::from(bytes), st)))
    });
    Ok(csv_response(
        Body::from_stream(stream),
        &format!("import-{id}-errors.csv"),
    ))
}

struct ErrorStream {
    pool: PgPool,
    import_id: i64,
    after: i64,
    started: bool,
    done: bool,
}

/// A streamed CSV download.
pub(crate) fn csv_response(body: Body, file_name: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
