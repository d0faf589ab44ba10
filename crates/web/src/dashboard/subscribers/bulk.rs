//! `POST /subscribers/bulk`: one action on the subscribers ticked in the
//! table (blocklist, delete, add to or remove from a list), through the
//! API's own bulk function, then back to the same page of the same search.

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use postino_domain::Role;
use uuid::Uuid;

use crate::AppState;
use crate::dashboard::page::{PageError, SignedIn};
use crate::dashboard::session::safe_next;
use postino_service::Error;
use postino_service::subscribers::{self as service, BulkAction, BulkKind};

/// The bulk form: `ids` repeats, which the derive-based form reader cannot
/// take, so it is read pair by pair.
struct BulkForm {
    ids: Vec<Uuid>,
    action: String,
    list: String,
    back: String,
}

impl BulkForm {
    fn read(body: &[u8]) -> Result<Self, PageError> {
        let mut form = Self {
            ids: Vec::new(),
            action: String::new(),
            list: String::new(),
            back: String::new(),
        };
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "ids" => form
                    .ids
                    .push(Uuid::parse_str(&value).map_err(|_| PageError::BadForm)?),
                "action" => form.action = value.into_owned(),
                "list" => form.list = value.into_owned(),
                "back" => form.back = value.into_owned(),
                _ => {}
            }
        }
        Ok(form)
    }

    /// Where to go afterwards: the search it came from, never elsewhere.
    fn back(&self, notice: &str, affected: Option<u64>) -> Response {
        let back = safe_next(&self.back);
        let back = if back.starts_with("/subscribers") && !back.contains('#') {
            back
        } else {
            "/subscribers"
        };
        let join = if back.contains('?') { '&' } else { '?' };
        let mut to = format!("{back}{join}notice={notice}");
        if let Some(n) = affected {
            to.push_str(&format!("&affected={n}"));
        }
        Redirect::to(&to).into_response()
    }
}

pub(crate) async fn apply(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    body: Bytes,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let form = BulkForm::read(&body)?;
    if form.ids.is_empty() {
        return Ok(form.back("none-ticked", None));
    }
    let (action, done) = match form.action.as_str() {
        "blocklist" => (BulkKind::Blocklist, "bulk-blocklisted"),
        "delete" => (BulkKind::Delete, "bulk-deleted"),
        "add_to_list" => (BulkKind::AddToList, "bulk-added"),
        "remove_from_list" => (BulkKind::RemoveFromList, "bulk-removed"),
        _ => return Err(PageError::BadForm),
    };
    let list = match action {
        BulkKind::AddToList | BulkKind::RemoveFromList => {
            if form.list.trim().is_empty() {
                return Ok(form.back("choose-list", None));
            }
            Some(Uuid::parse_str(form.list.trim()).map_err(|_| PageError::BadForm)?)
        }
        BulkKind::Blocklist | BulkKind::Delete => None,
    };
    let request = BulkAction {
        action,
        ids: Some(form.ids.clone()),
        filter: None,
        list,
        status: None,
    };
    let mut tx = state.db.begin().await?;
    let affected = match service::bulk(&mut tx, request).await {
        Ok(n) => n,
        // The list was deleted since the page was drawn.
        Err(Error::Invalid(_)) => return Err(PageError::NotFound("list")),
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok(form.back(done, Some(affected)))
}
