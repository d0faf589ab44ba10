//! `/settings/users`: who may sign in to the dashboard and with which role.
//! Creating a user checks the password as `postino user create` does;
//! changing a role or a password ends that user's sessions; the last admin
//! can be neither demoted nor deleted.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use postino_db::DbError;
use postino_db::users::{self, AdminGuard, User, UserListing};
use postino_domain::{EmailAddress, Password, Role};
use serde::Deserialize;
use uuid::Uuid;

use super::form::Errors;
use crate::AppState;
use crate::dashboard::page::PageId;
use crate::dashboard::page::{Layout, PageError, PageForm, SignedIn, render};

const LAST_ADMIN: &str = "This is the only admin. Make another user an admin first, so someone can always manage Postino's settings.";

#[derive(Template)]
#[template(path = "dashboard/settings/users.html")]
struct UsersPage {
    layout: Layout,
    tab: &'static str,
    users: Vec<UserRow>,
    form: UserForm,
    notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "dashboard/settings/user_edit.html")]
struct EditPage {
    layout: Layout,
    tab: &'static str,
    user: UserRow,
    /// Why the last change was refused, if it was.
    problem: Option<&'static str>,
    password_error: Option<String>,
}

struct UserRow {
    id: Uuid,
    name: String,
    email: String,
    role: &'static str,
    last_login: String,
    is_me: bool,
}

impl UserRow {
    fn new(user: &User, last_login_at: Option<chrono::DateTime<chrono::Utc>>, me: i64) -> Self {
        Self {
            id: user.uuid,
            name: user.name.clone(),
            email: user.email.as_str().to_owned(),
            role: user.role.as_str(),
            last_login: last_login_at.map_or_else(
                || "Never".to_owned(),
                |at| at.format("%-d %b %Y, %H:%M UTC").to_string(),
            ),
            is_me: user.id == me,
        }
    }
}

/// The new-user form as typed. The password is never rendered back, and no
/// `Debug` could print it.
#[derive(Clone, Deserialize)]
pub(crate) struct UserForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
    #[serde(skip)]
    errors: Errors,
}

impl Default for UserForm {
    fn default() -> Self {
        Self {
            name: String::new(),
            email: String::new(),
            role: Role::Editor.as_str().to_owned(),
            password: String::new(),
            errors: Errors::default(),
        }
    }
}

impl UserForm {
    pub(crate) fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }
}

#[derive(Deserialize)]
pub(crate) struct RoleForm {
    #[serde(default)]
    role: String,
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    password: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

fn notice(key: &str) -> Option<&'static str> {
    match key {
        "created" => Some(
            "The user was created. Give them their address and password; they can sign in now.",
        ),
        "role" => Some("The role was changed. The user was signed out and signs in again with it."),
        "role-unchanged" => Some("The role was already that one; nothing changed."),
        "password" => Some("The password was reset. The user was signed out everywhere."),
        "deleted" => Some("The user was deleted and signed out."),
        _ => None,
    }
}

/// Hashes off the runtime: argon2 takes a noticeable moment of CPU.
async fn hash(password: Password) -> Result<String, PageError> {
    tokio::task::spawn_blocking(move || password_auth::generate_hash(password.expose()))
        .await
        .map_err(|e| PageError::internal(&e))
}

async fn page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    form: UserForm,
    notice: Option<&'static str>,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let me = signed_in.0.user.id;
    let users = users::all(&mut conn).await?;
    let page = UsersPage {
        layout: signed_in.layout("settings", "Users"),
        tab: "users",
        users: users
            .iter()
            .map(
                |UserListing {
                     user,
                     last_login_at,
                 }| UserRow::new(user, *last_login_at, me),
            )
            .collect(),
        form,
        notice,
    };
    Ok(render(status, &page))
}

async fn edit_page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    id: Uuid,
    problem: Option<&'static str>,
    password_error: Option<String>,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let users = users::all(&mut conn).await?;
    let listing = users
        .iter()
        .find(|l| l.user.uuid == id)
        .ok_or(PageError::NotFound("user"))?;
    let page = EditPage {
        layout: signed_in.layout("settings", "Manage user"),
        tab: "users",
        user: UserRow::new(&listing.user, listing.last_login_at, signed_in.0.user.id),
        problem,
        password_error,
    };
    Ok(render(status, &page))
}

pub(crate) async fn index(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    page(
        &state,
        &signed_in,
        StatusCode::OK,
        UserForm::default(),
        notice(&query.notice),
    )
    .await
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageForm(mut form): PageForm<UserForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let password = std::mem::take(&mut form.password);
    let e = &mut form.errors;
    let name = form.name.trim().to_owned();
    if name.chars().count() > 200 || name.contains(['\r', '\n']) {
        e.add("name", "must be one line of at most 200 characters");
    }
    let email = EmailAddress::parse(&form.email)
        .map_err(|err| e.add("email", err.reason))
        .ok();
    let role = form
        .role
        .parse::<Role>()
        .map_err(|_| e.add("role", "choose viewer, editor or admin"))
        .ok();
    let password = Password::parse(&password)
        .map_err(|err| e.add("password", err.reason))
        .ok();
    if let (Some(email), Some(role), Some(password), true) =
        (email, role, password, form.errors.is_empty())
    {
        let hash = hash(password).await?;
        let mut conn = state.db.acquire().await?;
        match users::create(&mut conn, &email, &name, &hash, role).await {
            Ok(_) => return Ok(Redirect::to("/settings/users?notice=created").into_response()),
            Err(DbError::Conflict { .. }) => {
                form.errors
                    .add("email", "another user already signs in with this address");
            }
            Err(other) => return Err(other.into()),
        }
    }
    page(
        &state,
        &signed_in,
        StatusCode::UNPROCESSABLE_ENTITY,
        form,
        None,
    )
    .await
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    edit_page(&state, &signed_in, StatusCode::OK, id, None, None).await
}

pub(crate) async fn change_role(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    PageForm(form): PageForm<RoleForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let Ok(role) = form.role.parse::<Role>() else {
        return Err(PageError::BadForm);
    };
    let mut conn = state.db.acquire().await?;
    let user = users::get(&mut conn, id)
        .await
        .map_err(postino_service::Error::not_found("user"))?;
    if user.role == role {
        return Ok(Redirect::to("/settings/users?notice=role-unchanged").into_response());
    }
    let outcome = users::set_role(&mut conn, user.id, role)
        .await
        .map_err(postino_service::Error::not_found("user"))?;
    drop(conn);
    match outcome {
        AdminGuard::Done => Ok(Redirect::to("/settings/users?notice=role").into_response()),
        AdminGuard::LastAdmin => {
            edit_page(
                &state,
                &signed_in,
                StatusCode::CONFLICT,
                id,
                Some(LAST_ADMIN),
                None,
            )
            .await
        }
    }
}

pub(crate) async fn reset_password(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    PageForm(form): PageForm<PasswordForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let password = match Password::parse(&form.password) {
        Ok(p) => p,
        Err(e) => {
            return edit_page(
                &state,
                &signed_in,
                StatusCode::UNPROCESSABLE_ENTITY,
                id,
                None,
                Some(e.reason),
            )
            .await;
        }
    };
    let user = {
        let mut conn = state.db.acquire().await?;
        users::get(&mut conn, id)
            .await
            .map_err(postino_service::Error::not_found("user"))?
    };
    let hash = hash(password).await?;
    let mut conn = state.db.acquire().await?;
    users::set_password_hash(&mut conn, user.id, &hash)
        .await
        .map_err(postino_service::Error::not_found("user"))?;
    Ok(Redirect::to("/settings/users?notice=password").into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let mut conn = state.db.acquire().await?;
    let user = users::get(&mut conn, id)
        .await
        .map_err(postino_service::Error::not_found("user"))?;
    let outcome = users::delete(&mut conn, user.id)
        .await
        .map_err(postino_service::Error::not_found("user"))?;
    drop(conn);
    match outcome {
        AdminGuard::Done => Ok(Redirect::to("/settings/users?notice=deleted").into_response()),
        AdminGuard::LastAdmin => {
            edit_page(
                &state,
                &signed_in,
                StatusCode::CONFLICT,
                id,
                Some(LAST_ADMIN),
                None,
            )
            .await
        }
    }
}
