//! `/api/v1/subscribers`: subscribers, their list memberships, search, bulk
//! actions, export and erasure.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use chrono::{DateTime, Utc};
use postino_db::subscribers::{
    self, Existing, MembershipChange, NewSubscriber, Selection, Subscriber, SubscriberChanges,
    SubscriberFilter,
};
use postino_db::{PgConnection, lists};
use postino_domain::{
    Attributes, Cursor, EmailAddress, MembershipStatus, OptIn, PageSize, SubscriberName,
    SubscriberStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{FieldError, Problem, WebError};
use crate::extract::{ApiJson, ApiQuery, IdPath, IdPath2};

/// Most ids one bulk request may name; larger sets go by filter.
const MAX_BULK_IDS: usize = 10_000;
/// Most lists one request may add a subscriber to.
const MAX_LISTS_PER_REQUEST: usize = 100;

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

/// A subscriber with their list memberships.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubscriberResponse {
    id: Uuid,
    email: String,
    name: String,
    #[schema(value_type = Object)]
    attributes: Value,
    status: SubscriberStatus,
    lists: Vec<MembershipResponse>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// One list a subscriber is on.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MembershipResponse {
    /// The list's id.
    id: Uuid,
    name: String,
    status: MembershipStatus,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Subscriber> for SubscriberResponse {
    fn from(s: Subscriber) -> Self {
        Self {
            id: s.uuid,
            email: s.email.into(),
            name: s.name.into(),
            attributes: s.attributes.into(),
            status: s.status,
            lists: s
                .memberships
                .into_iter()
                .map(|m| MembershipResponse {
                    id: m.list_uuid,
                    name: m.list_name,
                    status: m.status,
                    created_at: m.created_at,
                    updated_at: m.updated_at,
                })
                .collect(),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
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

/// Everything Postino holds on one subscriber.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubscriberExport {
    subscriber: SubscriberResponse,
    exported_at: DateTime<Utc>,
}

/// Receipt for an erasure.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErasureReceipt {
    id: Uuid,
    erased_at: DateTime<Utc>,
}

/// Resolves list ids to memberships to write, reporting unknown ids under `field`.
async fn membership_changes(
    conn: &mut PgConnection,
    field: &str,
    uuids: &[Uuid],
    status: Option<MembershipStatus>,
) -> Result<Vec<MembershipChange>, WebError> {
    if uuids.len() > MAX_LISTS_PER_REQUEST {
        return Err(WebError::invalid(
            field,
            format!("at most {MAX_LISTS_PER_REQUEST} lists per request"),
        ));
    }
    let found = lists::resolve(conn, uuids).await?;
    let mut changes = Vec::with_capacity(uuids.len());
    let mut errors = Vec::new();
    for (i, uuid) in uuids.iter().enumerate() {
        match found.iter().find(|(u, _, _)| u == uuid) {
            Some(&(_, list_id, opt_in)) => changes.push(MembershipChange {
                list_id,
                status: status.unwrap_or(default_status(opt_in)),
            }),
            None => errors.push(FieldError::new(
                format!("{field}[{i}]"),
                format!("no list has id {uuid}"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(WebError::Invalid(errors))
    }
}

fn default_status(opt_in: OptIn) -> MembershipStatus {
    match opt_in {
        OptIn::Single => MembershipStatus::Confirmed,
        OptIn::Double => MembershipStatus::Unconfirmed,
    }
}

async fn list_id(
    conn: &mut PgConnection,
    field: &str,
    uuid: Uuid,
) -> Result<(i64, OptIn), WebError> {
    lists::resolve(conn, &[uuid])
        .await?
        .first()
        .map(|&(_, id, opt_in)| (id, opt_in))
        .ok_or_else(|| WebError::invalid(field, format!("no list has id {uuid}")))
}

/// Validates the free-form filter fields and resolves the list.
pub(crate) async fn filter_from(
    conn: &mut PgConnection,
    prefix: &str,
    body: FilterBody,
) -> Result<SubscriberFilter, WebError> {
    let field = |name: &str| format!("{prefix}{name}");
    let list_id = match body.list {
        Some(uuid) => Some(list_id(conn, &field("list"), uuid).await?.0),
        None => None,
    };
    if body.list_status.is_some() && list_id.is_none() {
        return Err(WebError::invalid(
            field("list_status"),
            "needs list as well",
        ));
    }
    if let Some(email) = &body.email {
        let len = email.chars().count();
        if len == 0 || len > 254 {
            return Err(WebError::invalid(
                field("email"),
                "must be 1 to 254 characters",
            ));
        }
    }
    if body.attributes.as_ref().is_some_and(|a| !a.is_object()) {
        return Err(WebError::invalid(
            field("attributes"),
            "must be a JSON object",
        ));
    }
    Ok(SubscriberFilter {
        list_id,
        list_status: body.list_status,
        status: body.status,
        email_contains: body.email,
        attributes: body.attributes,
        created_after: body.created_after,
        created_before: body.created_before,
    })
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
        let attributes = self
            .attributes
            .as_deref()
            .map(serde_json::from_str::<Value>)
            .transpose()
            .map_err(|_| {
                WebError::invalid(
                    "attributes",
                    "must be a JSON object, e.g. {\"city\":\"Rome\"}",
                )
            })?;
        let body = FilterBody {
            list: self.list,
            list_status: self.list_status,
            status: self.status,
            email: self.email,
            attributes,
            created_after: self.created_after,
            created_before: self.created_before,
        };
        filter_from(conn, "", body).await
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
    let subscriber = create(&mut tx, &new, &body.lists, body.list_status).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(subscriber.into())))
}

/// Creates subscriber `new` on `lists` (with `list_status`, or each list's
/// default); an address already taken is a conflict naming `email`.
pub(crate) async fn create(
    conn: &mut PgConnection,
    new: &NewSubscriber,
    lists: &[Uuid],
    list_status: Option<MembershipStatus>,
) -> Result<Subscriber, WebError> {
    let memberships = membership_changes(conn, "lists", lists, list_status).await?;
    Ok(subscribers::create(conn, new, &memberships).await?)
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
    let subscriber = get(&mut conn, id).await?;
    Ok(Json(subscriber.into()))
}

/// Subscriber `id` with their memberships.
pub(crate) async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Subscriber, WebError> {
    subscribers::get(conn, id)
        .await
        .map_err(postino_service::Error::not_found("subscriber"))
        .map_err(WebError::from)
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
    let subscriber = update(&mut tx, id, &changes).await?;
    tx.commit().await?;
    Ok(Json(subscriber.into()))
}

/// Applies `changes` to subscriber `id`; blocklisting also unsubscribes them
/// from every list, so run it in a transaction.
pub(crate) async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    changes: &SubscriberChanges,
) -> Result<Subscriber, WebError> {
    subscribers::update(conn, id, changes)
        .await
        .map_err(postino_service::Error::not_found("subscriber"))
        .map_err(WebError::from)
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
    erase(&mut conn, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes subscriber `id` with everything Postino holds on them.
pub(crate) async fn erase(conn: &mut PgConnection, id: Uuid) -> Result<(), WebError> {
    // Every table holding personal data references subscribers with ON DELETE
    // CASCADE, so deleting the row erases all of it in one statement.
    subscribers::delete(conn, id)
        .await
        .map_err(postino_service::Error::not_found("subscriber"))
        .map_err(WebError::from)
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
    let subscriber = add_to_lists_with(&mut tx, id, &body.lists, body.status).await?;
    tx.commit().await?;
    Ok(Json(subscriber.into()))
}

/// Adds subscriber `id` to `lists`. With a status, existing memberships take
/// it too (this is how someone is unsubscribed from one list); without one,
/// new memberships get each list's default and existing ones are left alone.
pub(crate) async fn add_to_lists_with(
    conn: &mut PgConnection,
    id: Uuid,
    lists: &[Uuid],
    status: Option<MembershipStatus>,
) -> Result<Subscriber, WebError> {
    if lists.is_empty() {
        return Err(WebError::invalid("lists", "must name at least one list"));
    }
    let subscriber_id = subscribers::id_of(conn, id)
        .await
        .map_err(postino_service::Error::not_found("subscriber"))?;
    let changes = membership_changes(conn, "lists", lists, status).await?;
    let existing = if status.is_some() {
        Existing::Overwrite
    } else {
        Existing::Keep
    };
    subscribers::set_memberships(conn, subscriber_id, &changes, existing).await?;
    Ok(subscribers::get(conn, id).await?)
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
    remove_from_list_with(&mut conn, id, list).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Takes subscriber `id` off `list` altogether (no unsubscribed trace kept).
pub(crate) async fn remove_from_list_with(
    conn: &mut PgConnection,
    id: Uuid,
    list: Uuid,
) -> Result<(), WebError> {
    let subscriber_id = subscribers::id_of(conn, id)
        .await
        .map_err(postino_service::Error::not_found("subscriber"))?;
    let Some(&(_, list_id, _)) = lists::resolve(conn, &[list]).await?.first() else {
        return Err(WebError::NotFound("list"));
    };
    let removed = subscribers::remove_memberships(conn, subscriber_id, &[list_id]).await?;
    if removed == 0 {
        return Err(WebError::NotFound("membership"));
    }
    Ok(())
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
    let affected = bulk(&mut tx, body).await?;
    tx.commit().await?;
    Ok(Json(BulkResult { affected }))
}

/// Checks and applies one bulk action; returns how many subscribers it
/// changed. Several statements: run it in a transaction.
pub(crate) async fn bulk(conn: &mut PgConnection, body: BulkAction) -> Result<u64, WebError> {
    let selection = match (body.ids, body.filter) {
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > MAX_BULK_IDS {
                return Err(WebError::invalid(
                    "ids",
                    format!("must hold 1 to {MAX_BULK_IDS} ids"),
                ));
            }
            Selection::Ids(ids)
        }
        (None, Some(filter)) => {
            let filter = filter_from(conn, "filter.", filter).await?;
            if filter.is_empty() {
                return Err(WebError::invalid(
                    "filter",
                    "must have at least one condition; an empty filter would select everyone",
                ));
            }
            Selection::Filter(filter)
        }
        _ => {
            return Err(WebError::invalid(
                "ids",
                "give either ids or filter, not both or neither",
            ));
        }
    };
    let needs_list = matches!(
        body.action,
        BulkActionKind::AddToList | BulkActionKind::RemoveFromList
    );
    let list = match (needs_list, body.list) {
        (true, Some(uuid)) => Some(list_id(conn, "list", uuid).await?),
        (true, None) => return Err(WebError::invalid("list", "is required for this action")),
        (false, Some(_)) => {
            return Err(WebError::invalid(
                "list",
                "is only used by add_to_list and remove_from_list",
            ));
        }
        (false, None) => None,
    };
    if body.status.is_some() && !matches!(body.action, BulkActionKind::AddToList) {
        return Err(WebError::invalid("status", "is only used by add_to_list"));
    }
    let affected = match (body.action, list) {
        (BulkActionKind::Blocklist, _) => subscribers::blocklist_many(conn, &selection).await?,
        (BulkActionKind::Delete, _) => subscribers::delete_many(conn, &selection).await?,
        (BulkActionKind::AddToList, Some((list_id, opt_in))) => {
            let existing = if body.status.is_some() {
                Existing::Overwrite
            } else {
                Existing::Keep
            };
            let status = body.status.unwrap_or(default_status(opt_in));
            subscribers::add_many_to_list(conn, &selection, list_id, status, existing).await?
        }
        (BulkActionKind::RemoveFromList, Some((list_id, _))) => {
            subscribers::remove_many_from_list(conn, &selection, list_id).await?
        }
        (BulkActionKind::AddToList | BulkActionKind::RemoveFromList, None) => {
            return Err(WebError::invalid("list", "is required for this action"));
        }
    };
    Ok(affected)
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
    export(&mut conn, id).await
}

/// Everything held on subscriber `id`, as a JSON download.
pub(crate) async fn export(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<(HeaderMap, Json<SubscriberExport>), WebError> {
    let subscriber = subscribers::get(conn, id)
        .await
        .map_err(postino_service::Error::not_found("subscriber"))?;
    let mut headers = HeaderMap::new();
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"subscriber-{id}.json\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok((
        headers,
        Json(SubscriberExport {
            subscriber: subscriber.into(),
            exported_at: Utc::now(),
        }),
    ))
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
    erase(&mut conn, id).await?;
    Ok(Json(ErasureReceipt {
        id,
        erased_at: Utc::now(),
    }))
}
