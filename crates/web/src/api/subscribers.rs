//! `/api/v1/subscribers`: subscribers, their list memberships, search, bulk
//! actions, export and erasure.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use postino_db::PgConnection;
use postino_db::subscribers::{self, NewSubscriber, SubscriberChanges, SubscriberFilter};
use postino_domain::{
    Attributes, Cursor, EmailAddress, MembershipStatus, PageSize, SubscriberName, SubscriberStatus,
};
use postino_service::subscribers::{self as service, BulkKind, Conditions};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::documents::{SubscriberExport, SubscriberResponse, subscriber_export};
use crate::error::{Problem, WebError};
use crate::extract::{ApiJson, ApiQuery, IdPath, IdPath2};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_subscribers, create_subscriber))
        .routes(routes!(
            get_subscriber,
            update_subscriber,
            delete_subscriber
        ))
        .routes(routes!(add_to_lists))
        .routes(routes!(remove_from_list))
        .routes(routes!(bulk_action))
        .routes(routes!(export_subscriber))
        .routes(routes!(erase_subscriber))
}

/// A new subscriber.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateSubscriber {
    #[schema(value_type = String, format = Email)]
    email: EmailAddress,
    #[serde(default)]
    #[schema(value_type = String, max_length = 200)]
    name: SubscriberName,
    /// A JSON object.
    #[serde(default)]
    #[schema(value_type = Object)]
    attributes: Attributes,
    #[serde(default)]
    status: SubscriberStatus,
    /// Lists to add them to.
    #[serde(default)]
    lists: Vec<Uuid>,
    /// Their status on those lists. Defaults to `confirmed` on single opt-in
    /// lists and `unconfirmed` on double opt-in ones.
    list_status: Option<MembershipStatus>,
}

/// Changes to a subscriber; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateSubscriber {
    #[schema(value_type = Option<String>, format = Email)]
    email: Option<EmailAddress>,
    #[schema(value_type = Option<String>, max_length = 200)]
    name: Option<SubscriberName>,
    /// Replaces all attributes.
    #[schema(value_type = Option<Object>)]
    attributes: Option<Attributes>,
    /// `blocklisted` also unsubscribes them from every list.
    status: Option<SubscriberStatus>,
}

/// Lists to add a subscriber to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddToLists {
    lists: Vec<Uuid>,
    /// With a status, existing memberships take it too; without one, new
    /// memberships get the list's default and existing ones are left alone.
    status: Option<MembershipStatus>,
}

/// Search conditions; all must hold.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchParams {
    /// Member of this list.
    list: Option<Uuid>,
    /// With this status on `list`.
    #[param(inline)]
    list_status: Option<MembershipStatus>,
    #[param(inline)]
    status: Option<SubscriberStatus>,
    /// Address contains this text (case-insensitive).
    email: Option<String>,
    /// A JSON object; matches subscribers whose attributes have these keys
    /// with these values, e.g. `{"city":"Rome"}`.
    attributes: Option<String>,
    /// Created at or after (RFC 3339).
    created_after: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    created_before: Option<DateTime<Utc>>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<u32>,
}

/// The same conditions as the search, in a JSON body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterBody {
    pub(crate) list: Option<Uuid>,
    pub(crate) list_status: Option<MembershipStatus>,
    pub(crate) status: Option<SubscriberStatus>,
    pub(crate) email: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub(crate) attributes: Option<Value>,
    pub(crate) created_after: Option<DateTime<Utc>>,
    pub(crate) created_before: Option<DateTime<Utc>>,
}

/// One page of subscribers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubscriberPage {
    items: Vec<SubscriberResponse>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// What a bulk request does.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BulkActionKind {
    Blocklist,
    Delete,
    AddToList,
    RemoveFromList,
}

/// One action on many subscribers, named by `ids` or by `filter` (exactly one).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkAction {
    pub(crate) action: BulkActionKind,
    /// Up to 10,000 subscriber ids; unknown ids are ignored.
    pub(crate) ids: Option<Vec<Uuid>>,
    /// Everyone matching; must have at least one condition.
    pub(crate) filter: Option<FilterBody>,
    /// The list, for `add_to_list` and `remove_from_list`.
    pub(crate) list: Option<Uuid>,
    /// For `add_to_list`: the membership status (default: the list's default).
    pub(crate) status: Option<MembershipStatus>,
}

/// How many subscribers a bulk action changed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkResult {
    affected: u64,
}

/// Receipt for an erasure.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErasureReceipt {
    id: Uuid,
    erased_at: DateTime<Utc>,
}

/// The search conditions as query parameters, shared by the search and the
/// CSV export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct FilterParams {
    /// Member of this list.
    list: Option<Uuid>,
    /// With this status on `list`.
    #[param(inline)]
    list_status: Option<MembershipStatus>,
    #[param(inline)]
    status: Option<SubscriberStatus>,
    /// Address contains this text (case-insensitive).
    email: Option<String>,
    /// A JSON object; matches subscribers whose attributes have these keys
    /// with these values, e.g. `{"city":"Rome"}`.
    attributes: Option<String>,
    /// Created at or after (RFC 3339).
    created_after: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    created_before: Option<DateTime<Utc>>,
}

impl FilterParams {
    /// Checks the conditions and resolves the list.
    pub(crate) async fn resolve(
        self,
        conn: &mut PgConnection,
    ) -> Result<SubscriberFilter, WebError> {
        let conditions = Conditions {
            list: self.list,
            list_status: self.list_status,
            status: self.status,
            email: self.email,
            attributes: service::parse_attributes(self.attributes.as_deref())?,
            created_after: self.created_after,
            created_before: self.created_before,
        };
        Ok(service::filter(conn, "", conditions).await?)
    }
}

impl From<FilterBody> for Conditions {
    fn from(b: FilterBody) -> Self {
        Self {
            list: b.list,
            list_status: b.list_status,
            status: b.status,
            email: b.email,
            attributes: b.attributes,
            created_after: b.created_after,
            created_before: b.created_before,
        }
    }
}

impl From<BulkActionKind> for BulkKind {
    fn from(k: BulkActionKind) -> Self {
        match k {
            BulkActionKind::Blocklist => BulkKind::Blocklist,
            BulkActionKind::Delete => BulkKind::Delete,
            BulkActionKind::AddToList => BulkKind::AddToList,
            BulkActionKind::RemoveFromList => BulkKind::RemoveFromList,
        }
    }
}

impl From<BulkAction> for service::BulkAction {
    fn from(b: BulkAction) -> Self {
        Self {
            action: b.action.into(),
            ids: b.ids,
            filter: b.filter.map(Conditions::from),
            list: b.list,
            status: b.status,
        }
    }
}

/// Search subscribers, one page at a time, in creation order.
#[utoipa::path(get, path = "/subscribers", tag = "subscribers", params(SearchParams),
    responses((status = 200, description = "OK", body = SubscriberPage),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn search_subscribers(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SubscriberPage>, WebError> {
    let limit = PageSize::parse(params.limit).map_err(|e| WebError::invalid("limit", e.reason))?;
    let cursor = params
        .cursor
        .as_deref()
        .map(Cursor::decode)
        .transpose()
        .map_err(|e| WebError::invalid("cursor", e.reason))?;
    let mut conn = state.db.acquire().await?;
    let filter = FilterParams {
        list: params.list,
        list_status: params.list_status,
        status: params.status,
        email: params.email,
        attributes: params.attributes,
        created_after: params.created_after,
        created_before: params.created_before,
    }
    .resolve(&mut conn)
    .await?;
    let page = subscribers::search(&mut conn, &filter, cursor, limit).await?;
    Ok(Json(SubscriberPage {
        items: page
            .items
            .into_iter()
            .map(SubscriberResponse::from)
            .collect(),
        next_cursor: page.next.map(Cursor::encode),
    }))
}

/// Create a subscriber, optionally on some lists.
#[utoipa::path(post, path = "/subscribers", tag = "subscribers", request_body = CreateSubscriber,
    responses((status = 201, description = "Created", body = SubscriberResponse),
              (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn create_subscriber(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateSubscriber>,
) -> Result<(StatusCode, Json<SubscriberResponse>), WebError> {
    let mut tx = state.db.begin().await?;
    let new = NewSubscriber {
        email: body.email,
        name: body.name,
        attributes: body.attributes,
        status: body.status,
    };
    let subscriber = service::create(&mut tx, &new, &body.lists, body.list_status).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(subscriber.into())))
}

/// Get one subscriber.
#[utoipa::path(get, path = "/subscribers/{id}", tag = "subscribers", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = SubscriberResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn get_subscriber(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<SubscriberResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let subscriber = service::get(&mut conn, id).await?;
    Ok(Json(subscriber.into()))
}

/// Change a subscriber.
#[utoipa::path(patch, path = "/subscribers/{id}", tag = "subscribers", params(("id" = Uuid, Path)),
    request_body = UpdateSubscriber,
    responses((status = 200, description = "OK", body = SubscriberResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn update_subscriber(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<UpdateSubscriber>,
) -> Result<Json<SubscriberResponse>, WebError> {
    let changes = SubscriberChanges {
        email: body.email,
        name: body.name,
        attributes: body.attributes,
        status: body.status,
    };
    let mut tx = state.db.begin().await?;
    let subscriber = service::update(&mut tx, id, &changes).await?;
    tx.commit().await?;
    Ok(Json(subscriber.into()))
}

/// Delete a subscriber and their memberships.
#[utoipa::path(delete, path = "/subscribers/{id}", tag = "subscribers", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Done; no content"),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn delete_subscriber(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<StatusCode, WebError> {
    let mut conn = state.db.acquire().await?;
    service::erase(&mut conn, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a subscriber to lists.
#[utoipa::path(post, path = "/subscribers/{id}/lists", tag = "subscribers", params(("id" = Uuid, Path)),
    request_body = AddToLists,
    responses((status = 200, description = "OK", body = SubscriberResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn add_to_lists(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<AddToLists>,
) -> Result<Json<SubscriberResponse>, WebError> {
    let mut tx = state.db.begin().await?;
    let subscriber = service::add_to_lists(&mut tx, id, &body.lists, body.status).await?;
    tx.commit().await?;
    Ok(Json(subscriber.into()))
}

/// Remove a subscriber from one list.
#[utoipa::path(delete, path = "/subscribers/{id}/lists/{list_id}", tag = "subscribers",
    params(("id" = Uuid, Path), ("list_id" = Uuid, Path)),
    responses((status = 204, description = "Done; no content"),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn remove_from_list(
    State(state): State<AppState>,
    IdPath2(id, list): IdPath2,
) -> Result<StatusCode, WebError> {
    let mut conn = state.db.acquire().await?;
    service::remove_from_list(&mut conn, id, list).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Blocklist, delete, add to or remove from a list many subscribers at once.
#[utoipa::path(post, path = "/subscribers/bulk", tag = "subscribers", request_body = BulkAction,
    responses((status = 200, description = "OK", body = BulkResult),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn bulk_action(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BulkAction>,
) -> Result<Json<BulkResult>, WebError> {
    let mut tx = state.db.begin().await?;
    let affected = service::bulk(&mut tx, body.into()).await?;
    tx.commit().await?;
    Ok(Json(BulkResult { affected }))
}

/// Download everything held on one subscriber, as JSON.
#[utoipa::path(get, path = "/subscribers/{id}/export", tag = "subscribers", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = SubscriberExport),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn export_subscriber(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<(HeaderMap, Json<SubscriberExport>), WebError> {
    let mut conn = state.db.acquire().await?;
    let subscriber = service::get(&mut conn, id).await?;
    Ok(subscriber_export(subscriber, id))
}

/// Erase a subscriber: remove every record Postino holds on them (GDPR art. 17).
#[utoipa::path(post, path = "/subscribers/{id}/erase", tag = "subscribers", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = ErasureReceipt),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn erase_subscriber(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<ErasureReceipt>, WebError> {
    let mut conn = state.db.acquire().await?;
    service::erase(&mut conn, id).await?;
    Ok(Json(ErasureReceipt {
        id,
        erased_at: Utc::now(),
    }))
}
