//! `/api/v1/lists`: mailing lists.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use postino_domain::{ListName, ListVisibility, OptIn, Tags};
use postino_service::lists::{self, List, ListChanges, NewList};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{Problem, WebError};
use crate::extract::{ApiJson, IdPath};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_lists, create_list))
        .routes(routes!(get_list, update_list, delete_list))
}

/// A mailing list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ListResponse {
    id: Uuid,
    name: String,
    description: String,
    opt_in: OptIn,
    visibility: ListVisibility,
    tags: Vec<String>,
    subscriber_counts: SubscriberCounts,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// How many members a list has in each membership status.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubscriberCounts {
    unconfirmed: i64,
    confirmed: i64,
    unsubscribed: i64,
    total: i64,
}

impl From<List> for ListResponse {
    fn from(list: List) -> Self {
        let c = list.counts;
        Self {
            id: list.uuid,
            name: list.name.as_str().to_owned(),
            description: list.description,
            opt_in: list.opt_in,
            visibility: list.visibility,
            tags: list.tags.into(),
            subscriber_counts: SubscriberCounts {
                unconfirmed: c.unconfirmed,
                confirmed: c.confirmed,
                unsubscribed: c.unsubscribed,
                total: c.unconfirmed + c.confirmed + c.unsubscribed,
            },
            created_at: list.created_at,
            updated_at: list.updated_at,
        }
    }
}

/// Every list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ListsResponse {
    items: Vec<ListResponse>,
}

/// A new list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateList {
    /// 1 to 200 characters.
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    name: ListName,
    /// Up to 2,000 characters.
    #[serde(default)]
    description: String,
    #[serde(default)]
    opt_in: OptIn,
    #[serde(default)]
    visibility: ListVisibility,
    /// Up to 20 tags of 1 to 50 characters.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    tags: Tags,
}

/// Changes to a list; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateList {
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200)]
    name: Option<ListName>,
    description: Option<String>,
    opt_in: Option<OptIn>,
    visibility: Option<ListVisibility>,
    #[schema(value_type = Option<Vec<String>>)]
    tags: Option<Tags>,
}

/// List every list with its subscriber counts.
#[utoipa::path(get, path = "/lists", tag = "lists",
    responses((status = 200, description = "OK", body = ListsResponse)))]
async fn list_lists(State(state): State<AppState>) -> Result<Json<ListsResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let items = lists::all(&mut conn).await?;
    Ok(Json(ListsResponse {
        items: items.into_iter().map(ListResponse::from).collect(),
    }))
}

/// Create a list.
#[utoipa::path(post, path = "/lists", tag = "lists", request_body = CreateList,
    responses((status = 201, description = "Created", body = ListResponse),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn create_list(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateList>,
) -> Result<(StatusCode, Json<ListResponse>), WebError> {
    let new = NewList {
        name: body.name,
        description: body.description,
        opt_in: body.opt_in,
        visibility: body.visibility,
        tags: body.tags,
    };
    let mut conn = state.db.acquire().await?;
    let list = lists::create(&mut conn, new).await?;
    Ok((StatusCode::CREATED, Json(list.into())))
}

/// Get one list.
#[utoipa::path(get, path = "/lists/{id}", tag = "lists", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = ListResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn get_list(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<ListResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let list = lists::get(&mut conn, id).await?;
    Ok(Json(list.into()))
}

/// Change a list.
#[utoipa::path(patch, path = "/lists/{id}", tag = "lists", params(("id" = Uuid, Path)),
    request_body = UpdateList,
    responses((status = 200, description = "OK", body = ListResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn update_list(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<UpdateList>,
) -> Result<Json<ListResponse>, WebError> {
    let changes = ListChanges {
        name: body.name,
        description: body.description,
        opt_in: body.opt_in,
        visibility: body.visibility,
        tags: body.tags,
    };
    let mut conn = state.db.acquire().await?;
    let list = lists::update(&mut conn, id, changes).await?;
    Ok(Json(list.into()))
}

/// Delete a list and its memberships; its subscribers stay.
#[utoipa::path(delete, path = "/lists/{id}", tag = "lists", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Done; no content"),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn delete_list(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<StatusCode, WebError> {
    let mut conn = state.db.acquire().await?;
    lists::delete(&mut conn, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
