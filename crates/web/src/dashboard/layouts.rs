//! `/templates`: the layouts campaigns are wrapped in (HTML with a
//! `{{ content }}` slot). A table, an editor with a live preview, and
//! delete, checked and saved by the same functions as `/api/v1/templates`.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use postino_db::templates::{self, Layout as Stored};
use postino_domain::Role;
use serde::Deserialize;
use uuid::Uuid;

use super::page::{Layout, PageError, PageForm, SignedIn, render};
use crate::AppState;
use crate::dashboard::page::PageId;
use postino_service::layouts::{self, LayoutDraft};
use postino_service::{Context, Error};

/// What a new layout starts from: a centred column and the unsubscribe
/// link every campaign needs.
const STARTER: &str = r#"<!doctype html>
<html>
<body style="margin:0;padding:24px 12px;background:#f4f5f8;font-family:Arial,Helvetica,sans-serif;color:#1b2030">
  <div style="max-width:600px;margin:0 auto;background:#ffffff;border-radius:8px;padding:32px 28px">
    {{ content }}
  </div>
  <p style="max-width:600px;margin:16px auto 0;font-size:12px;color:#697086;text-align:center">
    You receive this e-mail because you subscribed.
    <a href="{{ unsubscribe_url }}" style="color:#697086">Unsubscribe</a>
  </p>
</body>
</html>
"#;

#[derive(Template)]
#[template(path = "dashboard/layouts.html")]
struct IndexPage {
    layout: Layout,
    rows: Vec<Row>,
    notice: Option<Notice>,
}

/// A layout as the table shows it.
struct Row {
    id: Uuid,
    name: String,
    changed: String,
    /// Campaigns that use it; it cannot be deleted while there are any.
    campaigns: i64,
}

impl Row {
    fn new(l: Stored, usage: &[(i64, i64)]) -> Self {
        Self {
            campaigns: usage
                .iter()
                .find(|(id, _)| *id == l.id)
                .map_or(0, |(_, n)| *n),
            id: l.uuid,
            name: l.name,
            changed: l.updated_at.format("%-d %b %Y, %H:%M UTC").to_string(),
        }
    }

    /// "Not used yet", "1 campaign", "12 campaigns".
    fn used_by(&self) -> String {
        match self.campaigns {
            0 => "Not used yet".to_owned(),
            1 => "1 campaign".to_owned(),
            n => format!("{} campaigns", super::page::grouped(n)),
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/layout_edit.html")]
struct EditPage {
    layout: Layout,
    /// `None` for a new layout.
    id: Option<Uuid>,
    form: LayoutForm,
    /// The sample rendered from what the form holds, if it renders.
    preview: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard/layout_preview.html")]
struct PreviewPart {
    form: LayoutForm,
    preview: Option<String>,
}

/// The form's fields as typed, and what is wrong with them.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct LayoutForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    body: String,
    #[serde(skip)]
    errors: Vec<(String, String)>,
}

impl LayoutForm {
    /// What is wrong with `field`, if anything.
    pub(crate) fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Takes the field errors of a refusal; other failures stay errors.
    fn absorb(&mut self, e: Error) -> Result<(), PageError> {
        match e {
            Error::Invalid(errors) => {
                self.errors
                    .extend(errors.into_iter().map(|f| (f.field, sentence(&f.message))));
                Ok(())
            }
            Error::Conflict { field, message } => {
                let field = if field.is_empty() {
                    "name".to_owned()
                } else {
                    field
                };
                self.errors.push((field, sentence(&message)));
                Ok(())
            }
            other => Err(other.into()),
        }
    }

    fn draft(&self) -> LayoutDraft {
        LayoutDraft {
            name: self.name.clone(),
            body: self.body.clone(),
        }
    }

    /// The sample rendering, or the body's error recorded.
    async fn preview(&mut self, ctx: &Context) -> Result<Option<String>, PageError> {
        match layouts::sample(ctx, &self.body).await {
            Ok(html) => Ok(Some(html)),
            Err(e) => {
                self.absorb(e)?;
                Ok(None)
            }
        }
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

/// A message above the table: fixed texts only, the query string is not
/// echoed into the page.
struct Notice {
    text: &'static str,
    ok: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

fn notice(key: &str) -> Option<Notice> {
    let (text, ok) = match key {
        "created" => ("The template was created.", true),
        "saved" => ("Your changes were saved.", true),
        "deleted" => ("The template was deleted.", true),
        "in-use" => (
            "That template was not deleted: campaigns still use it. Give them another template \
             first.",
            false,
        ),
        _ => return None,
    };
    Some(Notice { text, ok })
}

pub(crate) async fn index(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let rows = templates::all(&mut conn).await?;
    let usage = templates::usage(&mut conn).await?;
    let page = IndexPage {
        layout: signed_in.layout("templates", "Templates"),
        rows: rows.into_iter().map(|l| Row::new(l, &usage)).collect(),
        notice: notice(&query.notice),
    };
    Ok(render(StatusCode::OK, &page))
}

async fn edit_page(
    ctx: &Context,
    signed_in: &SignedIn,
    status: StatusCode,
    id: Option<Uuid>,
    mut form: LayoutForm,
) -> Result<Response, PageError> {
    let title = if id.is_some() {
        "Edit template"
    } else {
        "New template"
    };
    let preview = if form.error("body").is_some() {
        None
    } else {
        form.preview(ctx).await?
    };
    let page = EditPage {
        layout: signed_in.layout("templates", title),
        id,
        form,
        preview,
    };
    Ok(render(status, &page))
}

pub(crate) async fn new(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let form = LayoutForm {
        body: STARTER.to_owned(),
        ..LayoutForm::default()
    };
    edit_page(&state.service, &signed_in, StatusCode::OK, None, form).await
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageForm(mut form): PageForm<LayoutForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut conn = state.db.acquire().await?;
    if let Err(e) = layouts::create(&state.service, &mut conn, form.draft()).await {
        drop(conn);
        let status = refusal_status(&e);
        form.absorb(e)?;
        return edit_page(&state.service, &signed_in, status, None, form).await;
    }
    Ok(Redirect::to("/templates?notice=created").into_response())
}

/// The editor; viewers see it read-only.
pub(crate) async fn edit(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let stored = layouts::get(&mut conn, id).await?;
    let form = LayoutForm {
        name: stored.name,
        body: stored.body,
        errors: Vec::new(),
    };
    edit_page(&state.service, &signed_in, StatusCode::OK, Some(id), form).await
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    PageForm(mut form): PageForm<LayoutForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut conn = state.db.acquire().await?;
    match layouts::update(&state.service, &mut conn, id, form.draft()).await {
        Ok(_) => Ok(Redirect::to("/templates?notice=saved").into_response()),
        Err(e) => {
            drop(conn);
            let status = refusal_status(&e);
            form.absorb(e)?;
            edit_page(&state.service, &signed_in, status, Some(id), form).await
        }
    }
}

/// A refused save's status: bad fields are 422, a clash with stored data 409.
fn refusal_status(e: &Error) -> StatusCode {
    match e {
        Error::Conflict { .. } => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// The sample rendering of what the editor holds, storing nothing; errors
/// go next to their fields. A viewer may look too: it changes nothing.
pub(crate) async fn preview(
    State(state): State<AppState>,
    Extension(_signed_in): Extension<SignedIn>,
    PageForm(mut form): PageForm<LayoutForm>,
) -> Result<Response, PageError> {
    let preview = form.preview(&state.service).await?;
    Ok(render(StatusCode::OK, &PreviewPart { form, preview }))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut conn = state.db.acquire().await?;
    let notice = match layouts::delete(&mut conn, id).await {
        Ok(()) => "deleted",
        Err(Error::Conflict { .. }) => "in-use",
        Err(e) => return Err(e.into()),
    };
    Ok(Redirect::to(&format!("/templates?notice={notice}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_layout_is_valid() {
        assert!(layouts::sample_in_process(STARTER).is_ok());
    }
}
