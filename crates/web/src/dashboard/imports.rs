//! `/import`: the upload form and the recent imports. An upload goes through
//! the API's own [`upload`], so the dashboard and `POST /api/v1/imports`
//! check files, lists and sizes alike and queue the same job.

use askama::Template;
use axum::Extension;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use postino_db::imports::{self, Import};
use postino_db::lists;
use postino_domain::{ImportMode, ImportStatus, OptIn, Role};
use uuid::Uuid;

use super::csrf;
use super::page::{Layout, PageError, SignedIn, grouped, render};
use crate::AppState;
use crate::error::WebError;
use crate::files::{ImportParams, upload};
use postino_service::imports::progress;

/// Imports shown under the form.
const RECENT: i64 = 20;

#[derive(Template)]
#[template(path = "dashboard/imports.html")]
struct ImportsPage {
    layout: Layout,
    lists: Vec<ListChoice>,
    modes: [Mode; 3],
    form: UploadForm,
    recent: Vec<ImportRow>,
    max_upload: String,
    /// For the browser's own check, before a too-large file is sent.
    max_upload_bytes: u64,
    too_large: String,
}

/// A list to tick.
struct ListChoice {
    id: Uuid,
    name: String,
    double: bool,
}

/// An import mode as the form offers it.
pub(crate) struct Mode {
    pub(crate) value: &'static str,
    pub(crate) label: &'static str,
    pub(crate) explanation: &'static str,
}

/// Every mode the API offers, in marketers' words.
pub(crate) const MODES: [Mode; 3] = [
    Mode {
        value: "subscribe",
        label: "Add to lists",
        explanation: "Everyone in the file joins the lists you tick; people new to Postino are \
                      created. Nobody is removed from anything.",
    },
    Mode {
        value: "unsubscribe",
        label: "Unsubscribe from lists",
        explanation: "Everyone in the file is unsubscribed from the lists you tick. Nobody new \
                      is added.",
    },
    Mode {
        value: "blocklist",
        label: "Blocklist",
        explanation: "Nobody in the file is ever mailed again, whatever list they are on. No \
                      list is needed.",
    },
];

/// The label of `mode`.
pub(crate) fn mode_label(mode: ImportMode) -> &'static str {
    MODES
        .iter()
        .find(|m| m.value == mode.as_str())
        .map_or("", |m| m.label)
}

/// Problems with the form, by field.
type FieldErrors = Vec<(&'static str, String)>;

/// The choices as sent, kept when the upload is refused, and what was wrong.
pub(crate) struct UploadForm {
    lists: Vec<Uuid>,
    mode: &'static str,
    overwrite: bool,
    confirmed: bool,
    errors: FieldErrors,
}

impl Default for UploadForm {
    fn default() -> Self {
        Self {
            lists: Vec::new(),
            mode: ImportMode::default().as_str(),
            overwrite: false,
            confirmed: false,
            errors: Vec::new(),
        }
    }
}

impl UploadForm {
    fn from_params(params: &ImportParams, errors: FieldErrors) -> Self {
        Self {
            lists: params.list.clone(),
            mode: params.mode.unwrap_or_default().as_str(),
            overwrite: params.overwrite,
            confirmed: params.confirmed,
            errors,
        }
    }

    /// What is wrong with `field`, if anything.
    pub(crate) fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    fn ticked(&self, id: &Uuid) -> bool {
        self.lists.contains(id)
    }
}

/// An import as the recent table shows it.
pub(crate) struct ImportRow {
    id: Uuid,
    file_name: String,
    when: String,
    status: &'static str,
    percent: i64,
    live: bool,
    imported: String,
    failed: String,
    has_failures: bool,
}

/// A job's file name, or words for a file sent without one.
pub(crate) fn file_name(job: &Import) -> String {
    if job.file_name.trim().is_empty() {
        "Uploaded file".to_owned()
    } else {
        job.file_name.clone()
    }
}

/// Share of the file processed, as a whole percentage.
pub(crate) fn percent(job: &Import) -> i64 {
    // The ratio is clamped to 0..=1, so the cast cannot overflow.
    #[allow(clippy::cast_possible_truncation, reason = "clamped to 0..=100")]
    let percent = (progress(job) * 100.0).round() as i64;
    percent
}

/// Whether the job may still move (and the page should keep asking).
pub(crate) fn is_live(status: ImportStatus) -> bool {
    !status.is_terminal()
}

impl From<&Import> for ImportRow {
    fn from(job: &Import) -> Self {
        Self {
            id: job.uuid,
            file_name: file_name(job),
            when: job.created_at.format("%-d %b %Y, %H:%M UTC").to_string(),
            status: job.status.as_str(),
            percent: percent(job),
            live: is_live(job.status),
            imported: grouped(job.imported + job.updated),
            failed: grouped(job.failed),
            has_failures: job.failed > 0,
        }
    }
}

/// Bytes as people read file sizes: 10 MB, 1 GB.
fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")];
    for (unit, name) in UNITS {
        if bytes >= unit {
            let whole = bytes / unit;
            let tenth = (bytes % unit) * 10 / unit;
            return if tenth == 0 {
                format!("{whole} {name}")
            } else {
                format!("{whole}.{tenth} {name}")
            };
        }
    }
    format!("{bytes} bytes")
}

async fn page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    form: UploadForm,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let lists = lists::all(&mut conn).await?;
    let recent = imports::recent(&mut conn, RECENT).await?;
    let page = ImportsPage {
        layout: signed_in.layout("import", "Import"),
        lists: lists
            .into_iter()
            .map(|l| ListChoice {
                id: l.uuid,
                name: l.name.as_str().to_owned(),
                double: l.opt_in == OptIn::Double,
            })
            .collect(),
        modes: MODES,
        form,
        recent: recent.iter().map(ImportRow::from).collect(),
        max_upload: size(state.service.imports.max_upload_bytes),
        max_upload_bytes: state.service.imports.max_upload_bytes,
        too_large: too_large(state.service.imports.max_upload_bytes),
    };
    Ok(render(status, &page))
}

pub(crate) async fn index(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
) -> Result<Response, PageError> {
    page(&state, &signed_in, StatusCode::OK, UploadForm::default()).await
}

/// Starts an import from the form (multipart; the session layer has already
/// checked its CSRF token, sent as the first part) and opens its page.
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    request: Request,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut params = ImportParams::default();
    match upload(&state, request, &mut params, &[csrf::FIELD]).await {
        Ok(job) => Ok(Redirect::to(&format!("/import/{}", job.uuid)).into_response()),
        Err(e) => {
            let (status, errors) = refusal(e, state.service.imports.max_upload_bytes)?;
            let form = UploadForm::from_params(&params, errors);
            page(&state, &signed_in, status, form).await
        }
    }
}

/// Why an upload was refused, per field of the form, in words; failures
/// that are not the upload's fault stay errors.
fn refusal(e: WebError, limit: u64) -> Result<(StatusCode, FieldErrors), PageError> {
    match e {
        WebError::Invalid(errors) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            errors
                .into_iter()
                .map(|f| in_words(&f.field, &f.message))
                .collect(),
        )),
        WebError::PayloadTooLarge => Ok((
            StatusCode::PAYLOAD_TOO_LARGE,
            vec![("file", too_large(limit))],
        )),
        WebError::Malformed(_) => Ok((
            StatusCode::BAD_REQUEST,
            vec![(
                "file",
                "The upload could not be read; it may have been interrupted. Choose the file \
                 again and retry."
                    .to_owned(),
            )],
        )),
        other => Err(other.into()),
    }
}

/// What a file over the upload limit is told, by the server or, before
/// sending, by the browser.
fn too_large(limit: u64) -> String {
    format!(
        "This file is larger than the {} limit. Split it into smaller files and import them \
         one after the other.",
        size(limit)
    )
}

/// The form field an API field error belongs to, and its message as a
/// marketer would want it.
fn in_words(field: &str, message: &str) -> (&'static str, String) {
    if field.starts_with("list") {
        let text = if message.contains("needs at least one list") {
            "Tick at least one list.".to_owned()
        } else if message.starts_with("no list has id") {
            "One of the lists you ticked was just deleted. Tick the lists again.".to_owned()
        } else {
            sentence(message)
        };
        return ("lists", text);
    }
    match field {
        "file" => {
            let text = if message.contains("empty") || message.contains("no field named file") {
                "This file is empty, or no file was chosen. Choose a CSV file whose first row \
                 names the columns, with one person per line."
                    .to_owned()
            } else if message.contains("no e-mail column") {
                "This file has no e-mail column. Its first row must name the columns, and one \
                 of them must be called email (or e-mail, or Email Address). A spreadsheet must \
                 first be saved as CSV."
                    .to_owned()
            } else if message.contains("cannot be read as CSV") {
                "This file cannot be read as CSV. Save it from your spreadsheet as “CSV \
                 (comma-separated)” and try again."
                    .to_owned()
            } else {
                sentence(message)
            };
            ("file", text)
        }
        "mode" => (
            "mode",
            "Choose what to do with the people in the file.".to_owned(),
        ),
        _ => ("form", sentence(message)),
    }
}

/// `message` with a capital and a full stop.
fn sentence(message: &str) -> String {
    let mut chars = message.trim().chars();
    let mut text: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_said_as_people_say_them() {
        assert_eq!(size(1024 * 1024 * 1024), "1 GB");
        assert_eq!(size(10 * 1024 * 1024), "10 MB");
        assert_eq!(size(1536), "1.5 KB");
        assert_eq!(size(200), "200 bytes");
    }

    #[test]
    fn api_refusals_are_put_in_words_next_to_their_field() {
        let (field, text) = in_words("file", "the file is empty");
        assert_eq!(field, "file");
        assert!(text.starts_with("This file is empty"), "{text}");
        let (field, text) = in_words("list", "a subscribe import needs at least one list");
        assert_eq!((field, text.as_str()), ("lists", "Tick at least one list."));
        assert_eq!(in_words("list[0]", "no list has id x").0, "lists");
        assert_eq!(in_words("other", "odd").1, "Odd.");
    }
}
