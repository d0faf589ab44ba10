//! Files through HTTP: CSV uploads streamed to disk (the API's and the
//! dashboard's import forms share this) and CSV downloads streamed from the
//! service.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use postino_db::imports::Import;
use postino_domain::ImportMode;
use postino_domain::text::excerpt;
use postino_importer::ImportError;
use postino_importer::store::{self, StoreError};
use postino_service::exports::CsvStream;
use postino_service::imports::{self, ImportOptions, Received};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::AppState;
use crate::error::WebError;

/// Largest multipart field besides the file: a hundred list ids fit with
/// room to spare.
const MAX_FIELD_BYTES: usize = 8 * 1024;

/// A streamed CSV download named `file_name`.
pub(crate) fn csv_response(stream: CsvStream, file_name: &str) -> Response {
    let mut response = Body::from_stream(stream).into_response();
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
    /// The options as the service takes them.
    pub(crate) fn options(&self) -> ImportOptions {
        ImportOptions {
            lists: self.list.clone(),
            mode: self.mode,
            overwrite: self.overwrite,
            confirmed: self.confirmed,
        }
    }

    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<(), WebError> {
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
        Ok(upload) => imports::start(&state.db, id, &path, &params.options(), upload)
            .await
            .map_err(WebError::from),
        Err(e) => Err(e),
    };
    if result.is_err() {
        store::discard(&path).await;
    }
    result
}

/// Streams the request's file into `file`, collecting multipart options.
async fn receive(
    state: &AppState,
    request: Request,
    file: &mut tokio::fs::File,
    params: &mut ImportParams,
    ignore: &[&str],
) -> Result<Received, WebError> {
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
        let mut upload: Option<Received> = None;
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
                upload = Some(Received {
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
        Ok(Received {
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
