//! `/lists`: every list with its counts by membership status; create, edit
//! and delete, with the same rules and database functions as
//! `/api/v1/lists`.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use postino_domain::{ListName, ListVisibility, OptIn, Role, Tags};
use postino_service::lists::{self, List, ListChanges, NewList};
use serde::Deserialize;

use super::page::{Layout, PageError, PageForm, SignedIn, grouped, render};
use crate::AppState;
use crate::dashboard::page::PageId;

#[derive(Template)]
#[template(path = "dashboard/lists.html")]
struct ListsPage {
    layout: Layout,
    lists: Vec<ListRow>,
    form: ListForm,
    notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "dashboard/list_edit.html")]
struct EditPage {
    layout: Layout,
    id: uuid::Uuid,
    form: ListForm,
}

/// A list as its table row shows it.
struct ListRow {
    id: uuid::Uuid,
    name: String,
    description: String,
    tags: Vec<String>,
    opt_in: &'static str,
    visibility: &'static str,
    confirmed: String,
    unconfirmed: String,
    unsubscribed: String,
    total: String,
}

impl From<List> for ListRow {
    fn from(list: List) -> Self {
        let c = list.counts;
        Self {
            id: list.uuid,
            name: list.name.as_str().to_owned(),
            description: list.description,
            tags: list.tags.into(),
            opt_in: list.opt_in.as_str(),
            visibility: list.visibility.as_str(),
            confirmed: grouped(c.confirmed),
            unconfirmed: grouped(c.unconfirmed),
            unsubscribed: grouped(c.unsubscribed),
            total: grouped(c.confirmed + c.unconfirmed + c.unsubscribed),
        }
    }
}

/// The list form's fields as typed, and what is wrong with them.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ListForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    opt_in: String,
    #[serde(default)]
    visibility: String,
    /// Comma-separated.
    #[serde(default)]
    tags: String,
    #[serde(skip)]
    errors: Vec<(&'static str, String)>,
}

impl Default for ListForm {
    fn default() -> Self {
        Self {
            name: String::new(),
            description: String::new(),
            opt_in: OptIn::Single.as_str().to_owned(),
            visibility: ListVisibility::Private.as_str().to_owned(),
            tags: String::new(),
            errors: Vec::new(),
        }
    }
}

impl From<&List> for ListForm {
    fn from(list: &List) -> Self {
        Self {
            name: list.name.as_str().to_owned(),
            description: list.description.clone(),
            opt_in: list.opt_in.as_str().to_owned(),
            visibility: list.visibility.as_str().to_owned(),
            tags: list.tags.as_slice().join(", "),
            errors: Vec::new(),
        }
    }
}

impl ListForm {
    /// What is wrong with `field`, if anything.
    pub(crate) fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    /// The validated list, or the form with every problem named.
    fn parse(mut self) -> Result<NewList, Box<Self>> {
        let name = ListName::parse(&self.name).map_err(|e| ("name", e.reason));
        let description = postino_domain::lists::parse_description(&self.description)
            .map_err(|e| ("description", e.reason));
        // Left out, they take the API's defaults.
        let opt_in = match self.opt_in.as_str() {
            "" => Ok(OptIn::default()),
            raw => raw
                .parse::<OptIn>()
                .map_err(|_| ("opt_in", "choose single or double opt-in".to_owned())),
        };
        let visibility = match self.visibility.as_str() {
            "" => Ok(ListVisibility::default()),
            raw => raw
                .parse::<ListVisibility>()
                .map_err(|_| ("visibility", "choose public or private".to_owned())),
        };
        let tags: Vec<&str> = self
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        let tags = Tags::parse(&tags).map_err(|e| ("tags", e.reason));
        match (name, description, opt_in, visibility, tags) {
            (Ok(name), Ok(description), Ok(opt_in), Ok(visibility), Ok(tags)) => Ok(NewList {
                name,
                description,
                opt_in,
                visibility,
                tags,
            }),
            (name, description, opt_in, visibility, tags) => {
                self.errors = [
                    name.err(),
                    description.err(),
                    opt_in.err(),
                    visibility.err(),
                    tags.err(),
                ]
                .into_iter()
                .flatten()
                .collect();
                Err(Box::new(self))
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

/// Fixed messages only: the query string is not echoed into the page.
fn notice(key: &str) -> Option<&'static str> {
    match key {
        "created" => Some("The list was created."),
        "saved" => Some("Your changes were saved."),
        "deleted" => Some("The list was deleted. Its subscribers are still in Postino."),
        _ => None,
    }
}

async fn page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    form: ListForm,
    notice: Option<&'static str>,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let lists = lists::all(&mut conn).await?;
    let page = ListsPage {
        layout: signed_in.layout("lists", "Lists"),
        lists: lists.into_iter().map(ListRow::from).collect(),
        form,
        notice,
    };
    Ok(render(status, &page))
}

pub(crate) async fn index(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    page(
        &state,
        &signed_in,
        StatusCode::OK,
        ListForm::default(),
        notice(&query.notice),
    )
    .await
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageForm(form): PageForm<ListForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let new = match form.parse() {
        Ok(new) => new,
        Err(form) => {
            return page(
                &state,
                &signed_in,
                StatusCode::UNPROCESSABLE_ENTITY,
                *form,
                None,
            )
            .await;
        }
    };
    let mut conn = state.db.acquire().await?;
    lists::create(&mut conn, new).await?;
    Ok(Redirect::to("/lists?notice=created").into_response())
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut conn = state.db.acquire().await?;
    let list = lists::get(&mut conn, id).await?;
    let page = EditPage {
        layout: signed_in.layout("lists", "Edit list"),
        id,
        form: ListForm::from(&list),
    };
    Ok(render(StatusCode::OK, &page))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    PageForm(form): PageForm<ListForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let new = match form.parse() {
        Ok(new) => new,
        Err(form) => {
            let page = EditPage {
                layout: signed_in.layout("lists", "Edit list"),
                id,
                form: *form,
            };
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let changes = ListChanges {
        name: Some(new.name),
        description: Some(new.description),
        opt_in: Some(new.opt_in),
        visibility: Some(new.visibility),
        tags: Some(new.tags),
    };
    let mut conn = state.db.acquire().await?;
    lists::update(&mut conn, id, changes).await?;
    Ok(Redirect::to("/lists?notice=saved").into_response())
}

/// Deletes a list. htmx asks with `HX-Request` and gets an empty 200, so the
/// row it targets disappears; a plain form is sent back to the table.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut conn = state.db.acquire().await?;
    lists::delete(&mut conn, id).await?;
    if headers.contains_key("hx-request") {
        return Ok(StatusCode::OK.into_response());
    }
    Ok(Redirect::to("/lists?notice=deleted").into_response())
}
