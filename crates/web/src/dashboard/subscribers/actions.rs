//! What editors change on a subscriber's page: their details, blocklisting,
//! their lists, and deleting them. Each goes through the same function as
//! its `/api/v1/subscribers` counterpart, and each checks the role first.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use postino_db::subscribers::SubscriberChanges;
use postino_domain::{MembershipStatus, Role, SubscriberStatus};
use serde::Deserialize;
use uuid::Uuid;

use super::profile::{EditForm, Extras, page};
use crate::AppState;
use crate::dashboard::page::{PageError, PageForm, SignedIn};
use crate::dashboard::page::{PageId, PageId2};
use postino_service::Error;
use postino_service::subscribers as service;

fn back(id: Uuid, notice: &str) -> Response {
    Redirect::to(&format!("/subscribers/{id}?notice={notice}")).into_response()
}

/// `POST /subscribers/{id}`: name, address and attributes.
pub(crate) async fn update(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    PageForm(form): PageForm<EditForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let shown = form.clone();
    let edited = match form.parse() {
        Ok(edited) => edited,
        Err(form) => return again(&state, &signed_in, id, *form).await,
    };
    let changes = SubscriberChanges {
        email: Some(edited.email),
        name: Some(edited.name),
        attributes: Some(edited.attributes),
        status: None,
    };
    let mut tx = state.db.begin().await?;
    match service::update(&mut tx, id, &changes).await {
        Ok(_) => {}
        Err(Error::Conflict { .. }) => {
            let form = shown.with_error(
                "email",
                "Another subscriber already has this address. Open theirs instead, or delete one of the two.",
            );
            return again(&state, &signed_in, id, form).await;
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(back(id, "saved"))
}

/// The page again with the form as typed and its problems named (422).
async fn again(
    state: &AppState,
    signed_in: &SignedIn,
    id: Uuid,
    form: EditForm,
) -> Result<Response, PageError> {
    let extras = Extras {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        form: Some(form),
        notice: None,
        problem: None,
    };
    page(state, signed_in, id, extras).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatusForm {
    status: String,
}

/// `POST /subscribers/{id}/status`: blocklist (which also unsubscribes them
/// from every list) or enable again.
pub(crate) async fn set_status(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    PageForm(form): PageForm<StatusForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let status = form
        .status
        .parse::<SubscriberStatus>()
        .map_err(|_| PageError::BadForm)?;
    let changes = SubscriberChanges {
        status: Some(status),
        ..SubscriberChanges::default()
    };
    let mut tx = state.db.begin().await?;
    service::update(&mut tx, id, &changes).await?;
    tx.commit().await?;
    Ok(back(id, status.as_str()))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AddForm {
    #[serde(default)]
    list: String,
    /// Empty for the list's own default.
    #[serde(default)]
    status: String,
}

/// `POST /subscribers/{id}/lists`: add them to one list.
pub(crate) async fn add_to_list(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    PageForm(form): PageForm<AddForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let Ok(list) = Uuid::parse_str(form.list.trim()) else {
        return refused(&state, &signed_in, id, "Choose a list to add them to.").await;
    };
    let status = match form.status.as_str() {
        "" => None,
        raw => Some(
            raw.parse::<MembershipStatus>()
                .map_err(|_| PageError::BadForm)?,
        ),
    };
    let mut tx = state.db.begin().await?;
    match service::add_to_lists(&mut tx, id, &[list], status).await {
        Ok(_) => {}
        Err(Error::Invalid(_)) => {
            return refused(
                &state,
                &signed_in,
                id,
                "That list no longer exists. Reload the page to see the current lists.",
            )
            .await;
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(back(id, "added"))
}

/// `POST /subscribers/{id}/lists/{list}/unsubscribe`: they stay on the list
/// as unsubscribed, so a later import cannot quietly add them back.
pub(crate) async fn unsubscribe(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId2(id, list): PageId2,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut tx = state.db.begin().await?;
    service::add_to_lists(&mut tx, id, &[list], Some(MembershipStatus::Unsubscribed))
        .await
        .map_err(|e| match e {
            Error::Invalid(_) => Error::NotFound("list"),
            other => other,
        })?;
    tx.commit().await?;
    Ok(back(id, "unsubscribed"))
}

/// `POST /subscribers/{id}/lists/{list}/remove`: off the list, no trace.
pub(crate) async fn remove_from_list(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId2(id, list): PageId2,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut conn = state.db.acquire().await?;
    service::remove_from_list(&mut conn, id, list).await?;
    Ok(back(id, "removed"))
}

/// `POST /subscribers/{id}/delete`: the API's erasure; back to the table.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut conn = state.db.acquire().await?;
    service::erase(&mut conn, id).await?;
    Ok(Redirect::to("/subscribers?notice=deleted").into_response())
}

async fn refused(
    state: &AppState,
    signed_in: &SignedIn,
    id: Uuid,
    problem: &str,
) -> Result<Response, PageError> {
    let extras = Extras {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        form: None,
        notice: None,
        problem: Some(problem.to_owned()),
    };
    page(state, signed_in, id, extras).await
}

/// `GET /subscribers/{id}/export.json`: everything held on them, as the
/// API's export gives it, for a request under data-protection law.
pub(crate) async fn export(
    State(state): State<AppState>,
    Extension(_signed_in): Extension<SignedIn>,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let subscriber = service::get(&mut conn, id).await?;
    Ok(crate::documents::subscriber_export(subscriber, id).into_response())
}
