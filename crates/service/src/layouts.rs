//! Layouts: HTML with a `{{ content }}` slot that wraps campaign bodies.
//! Each is checked when saved by compiling it around sample content in the
//! template sandbox, so a broken layout is refused then, not at send time.

use postino_compose::{CampaignSource, Recipient};
use postino_db::templates::{self, Layout};
use postino_db::{DbError, PgConnection};
use postino_domain::BodyFormat;
use postino_sandbox::{Sandbox, Template};
use uuid::Uuid;

use crate::{Context, Error, Result};

/// Largest layout accepted.
const MAX_LAYOUT_BYTES: usize = 512 * 1024;

/// Sample campaign content, for checking and previewing a layout.
const SAMPLE_CONTENT: &str = "<h1>Your campaign's content</h1>\n\
    <p>Hello {{ subscriber.name }}, this is where each campaign's text goes.</p>";

/// A layout as written.
#[derive(Debug, Clone)]
pub struct LayoutDraft {
    /// 1 to 200 characters.
    pub name: String,
    /// HTML with a `{{ content }}` slot.
    pub body: String,
}

/// A layout around the sample content, as campaigns will use it.
fn sample_source(body: &str) -> CampaignSource<'_> {
    CampaignSource {
        uuid: Uuid::nil(),
        name: "sample",
        subject: "sample",
        body: SAMPLE_CONTENT,
        format: BodyFormat::Html,
        text_body: None,
        layout: Some(body),
    }
}

/// A layout's error, named by its line, on the `body` field.
fn layout_error(e: postino_sandbox::Error) -> Error {
    match e {
        postino_sandbox::Error::Template(e) => {
            let line = e.line.map(|l| format!("line {l}: ")).unwrap_or_default();
            Error::invalid("body", format!("{line}{}", e.reason))
        }
        e @ postino_sandbox::Error::Unavailable(_) => Error::internal(e),
    }
}

async fn compile(sandbox: &Sandbox, body: &str) -> Result<Template> {
    if body.len() > MAX_LAYOUT_BYTES {
        return Err(Error::invalid("body", "must be at most 512 KiB"));
    }
    sandbox
        .compile(&sample_source(body))
        .await
        .map_err(layout_error)
}

/// Checks the name and that the layout compiles and renders around a
/// sample body; returns the name as stored.
///
/// # Errors
///
/// [`Error::Invalid`] naming the field (and the line) at fault.
pub async fn validate(ctx: &Context, draft: &LayoutDraft) -> Result<String> {
    let name = postino_domain::ListName::parse(&draft.name)
        .map_err(|e| Error::invalid("name", e.reason))?;
    compile(&ctx.templates, &draft.body).await?;
    Ok(name.as_str().to_owned())
}

/// The layout around sample content for a sample person, as HTML.
///
/// # Errors
///
/// [`Error::Invalid`] naming the line at fault, as saving would.
pub async fn sample(ctx: &Context, body: &str) -> Result<String> {
    let rendered = compile(&ctx.templates, body)
        .await?
        .render(&Recipient::sample(), "#unsubscribe")
        .await
        .map_err(layout_error)?;
    Ok(rendered.html.unwrap_or_default())
}

/// Whether `body` compiles around the sample content, in this process: for
/// checks of built-in layouts, never of user input.
///
/// # Errors
///
/// The template's error.
pub fn sample_in_process(body: &str) -> Result<(), postino_compose::TemplateError> {
    postino_compose::CompiledCampaign::compile(&sample_source(body)).map(|_| ())
}

/// Every layout.
///
/// # Errors
///
/// A database failure.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<Layout>> {
    Ok(templates::all(conn).await?)
}

/// The layout `id`.
///
/// # Errors
///
/// [`Error::NotFound`] when there is none.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Layout> {
    templates::get(conn, id)
        .await
        .map_err(Error::not_found("template"))
}

/// Checks and stores a new layout.
///
/// # Errors
///
/// [`Error::Invalid`] naming the field at fault.
pub async fn create(ctx: &Context, conn: &mut PgConnection, draft: LayoutDraft) -> Result<Layout> {
    let name = validate(ctx, &draft).await?;
    Ok(templates::create(conn, &name, &draft.body).await?)
}

/// Checks and replaces layout `id`.
///
/// # Errors
///
/// [`Error::NotFound`], [`Error::Invalid`] naming the field at fault.
pub async fn update(
    ctx: &Context,
    conn: &mut PgConnection,
    id: Uuid,
    draft: LayoutDraft,
) -> Result<Layout> {
    let name = validate(ctx, &draft).await?;
    templates::update(conn, id, &name, &draft.body)
        .await
        .map_err(Error::not_found("template"))
}

/// Deletes a layout that no campaign uses.
///
/// # Errors
///
/// [`Error::NotFound`], [`Error::Conflict`] while campaigns use it.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<()> {
    match templates::delete(conn, id).await {
        Ok(()) => Ok(()),
        Err(DbError::MissingReference { .. }) => Err(Error::conflict(
            "",
            "campaigns still use this template; change their template first",
        )),
        Err(e) => Err(Error::not_found("template")(e)),
    }
}
