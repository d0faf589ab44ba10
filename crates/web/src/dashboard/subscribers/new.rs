//! `/subscribers/new`: adding one person by hand, with their lists, through
//! the same function as `POST /api/v1/subscribers`. Their status on each
//! list is the list's default (confirmed on single opt-in lists, waiting for
//! confirmation on double opt-in ones) unless the editor says they already
//! confirmed.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use postino_db::PgConnection;
use postino_db::lists;
use postino_db::subscribers::NewSubscriber;
use postino_domain::{MembershipStatus, OptIn, Role, SubscriberStatus};
use uuid::Uuid;

use super::profile::EditForm;
use crate::AppState;
use crate::dashboard::page::{Layout, PageError, SignedIn, render};
use postino_service::Error;
use postino_service::subscribers as service;

#[derive(Template)]
#[template(path = "dashboard/subscribers/new.html")]
struct NewSubscriberPage {
    layout: Layout,
    form: EditForm,
    /// Every list: id, name, whether it is double opt-in.
    lists: Vec<(Uuid, String, bool)>,
    /// The lists ticked.
    ticked: Vec<Uuid>,
    /// "They already confirmed" ticked.
    confirmed: bool,
    /// A problem with no field of its own, in words.
    problem: Option<String>,
}

impl NewSubscriberPage {
    fn is_ticked(&self, id: &Uuid) -> bool {
        self.ticked.contains(id)
    }
}

/// The form's fields as typed: the person, the ticked lists (a field that
/// repeats, which is why this is not a serde form), and the confirmation.
struct Typed {
    form: EditForm,
    ticked: Vec<Uuid>,
    confirmed: bool,
}

fn parse(body: &[u8]) -> Typed {
    let mut typed = Typed {
        form: EditForm::default(),
        ticked: Vec::new(),
        confirmed: false,
    };
    for (key, value) in form_urlencoded::parse(body) {
        match key.as_ref() {
            "email" => typed.form.email = value.into_owned(),
            "name" => typed.form.name = value.into_owned(),
            "attributes" => typed.form.attributes = value.into_owned(),
            "confirmed" => typed.confirmed = true,
            // An id that does not parse names no list: it is dropped, and
            // the page comes back with the remaining lists ticked.
            "lists" => typed.ticked.extend(value.parse::<Uuid>().ok()),
            _ => {}
        }
    }
    typed
}

async fn page(
    conn: &mut PgConnection,
    signed_in: &SignedIn,
    typed: Typed,
    problem: Option<String>,
) -> Result<NewSubscriberPage, PageError> {
    let lists = lists::choices(conn)
        .await?
        .into_iter()
        .map(|(id, name, opt_in)| (id, name, opt_in == OptIn::Double))
        .collect();
    Ok(NewSubscriberPage {
        layout: signed_in.layout("subscribers", "Add a subscriber"),
        form: typed.form,
        lists,
        ticked: typed.ticked,
        confirmed: typed.confirmed,
        problem,
    })
}

pub(crate) async fn new(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut conn = state.db.acquire().await?;
    let blank = Typed {
        form: EditForm::default(),
        ticked: Vec::new(),
        confirmed: false,
    };
    let page = page(&mut conn, &signed_in, blank, None).await?;
    Ok(render(StatusCode::OK, &page))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    body: Bytes,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let typed = parse(&body);
    let shown = typed.form.clone();
    let mut conn = state.db.acquire().await?;
    let edited = match typed.form.clone().parse() {
        Ok(edited) => edited,
        Err(form) => {
            let again = Typed {
                form: *form,
                ..typed
            };
            let page = page(&mut conn, &signed_in, again, None).await?;
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let new = NewSubscriber {
        email: edited.email,
        name: edited.name,
        attributes: edited.attributes,
        status: SubscriberStatus::Enabled,
    };
    let status = typed.confirmed.then_some(MembershipStatus::Confirmed);
    let mut tx = state.db.begin().await?;
    let refusal = match service::create(&mut tx, &new, &typed.ticked, status).await {
        Ok(s) => {
            tx.commit().await?;
            return Ok(
                Redirect::to(&format!("/subscribers/{}?notice=created", s.uuid)).into_response(),
            );
        }
        Err(Error::Conflict { .. }) => Typed {
            form: shown.with_error(
                "email",
                "Someone with this address is already in Postino. Search for them to change their lists.",
            ),
            ..typed
        },
        Err(Error::Invalid(_)) => {
            drop(tx);
            let page = page(
                &mut conn,
                &signed_in,
                typed,
                Some("One of the lists no longer exists; tick the lists again.".to_owned()),
            )
            .await?;
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
        Err(e) => return Err(e.into()),
    };
    drop(tx);
    let page = page(&mut conn, &signed_in, refusal, None).await?;
    Ok(render(StatusCode::CONFLICT, &page))
}
