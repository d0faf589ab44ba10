//! `/settings/dkim`: the keys that sign outgoing mail, with the DNS record
//! each needs, through the same functions as `/api/v1/dkim-keys`. An
//! imported private key goes in and never comes back out.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use postino_db::dkim_keys::{self, DkimKey};
use postino_domain::{DkimAlgorithm, DkimDomain, DkimSelector, Role};
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use super::form::Errors;
use crate::AppState;
use crate::api::dkim_keys::{self as api, NewDkimKeyBody, dns_record};
use crate::dashboard::page::PageId;
use crate::dashboard::page::{Layout, PageError, PageForm, SignedIn, render};

#[derive(Template)]
#[template(path = "dashboard/settings/dkim.html")]
struct DkimPage {
    layout: Layout,
    tab: &'static str,
    keys: Vec<KeyRow>,
    form: DkimForm,
    notice: Option<&'static str>,
}

/// A key as the table shows it, with its DNS record.
struct KeyRow {
    id: Uuid,
    domain: String,
    selector: String,
    algorithm: &'static str,
    enabled: bool,
    created: String,
    record_name: String,
    record_value: String,
}

impl From<DkimKey> for KeyRow {
    fn from(k: DkimKey) -> Self {
        let record = dns_record(&k);
        Self {
            id: k.uuid,
            domain: k.domain.as_str().to_owned(),
            selector: k.selector.as_str().to_owned(),
            algorithm: algorithm_label(k.algorithm),
            enabled: k.enabled,
            created: k.created_at.format("%-d %b %Y").to_string(),
            record_name: record.name,
            record_value: record.value,
        }
    }
}

fn algorithm_label(a: DkimAlgorithm) -> &'static str {
    match a {
        DkimAlgorithm::RsaSha256 => "RSA",
        DkimAlgorithm::Ed25519Sha256 => "Ed25519",
    }
}

/// The new-key form as typed. The private key is write-only: read from a
/// post, never rendered back, and no `Debug` could print it.
#[derive(Clone, Deserialize)]
pub(crate) struct DkimForm {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    selector: String,
    #[serde(default)]
    algorithm: String,
    /// A PEM key to import; blank generates one.
    #[serde(default)]
    private_key: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(skip)]
    errors: Errors,
}

impl Default for DkimForm {
    fn default() -> Self {
        Self {
            domain: String::new(),
            selector: format!("postino{}", chrono::Utc::now().format("%Y%m")),
            algorithm: DkimAlgorithm::RsaSha256.as_str().to_owned(),
            private_key: String::new(),
            enabled: Some("on".to_owned()),
            errors: Errors::default(),
        }
    }
}

impl DkimForm {
    pub(crate) fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }

    /// The API's request body, or `None` with the problems noted.
    fn body(&mut self) -> Option<NewDkimKeyBody> {
        let e = &mut self.errors;
        let domain = DkimDomain::parse(&self.domain)
            .map_err(|err| e.add("domain", err.reason))
            .ok();
        let selector = DkimSelector::parse(&self.selector)
            .map_err(|err| e.add("selector", err.reason))
            .ok();
        let algorithm = self
            .algorithm
            .parse::<DkimAlgorithm>()
            .map_err(|_| e.add("algorithm", "choose RSA or Ed25519"))
            .ok();
        let pem = std::mem::take(&mut self.private_key);
        // An imported key says what it is; the choice is for generating.
        let (private_key, algorithm) = if pem.trim().is_empty() {
            (None, Some(algorithm?))
        } else {
            (Some(SecretString::from(pem)), None)
        };
        Some(NewDkimKeyBody {
            domain: domain?,
            selector: selector?,
            algorithm,
            private_key,
            enabled: Some(self.enabled.is_some()),
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

fn notice(key: &str) -> Option<&'static str> {
    match key {
        "created" => Some(
            "The key was created. Publish its DNS record below so receivers can verify your mail.",
        ),
        "deleted" => Some(
            "The key was deleted. Keep its DNS record for a few days, so mail already signed with it still verifies.",
        ),
        _ => None,
    }
}

async fn page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    form: DkimForm,
    notice: Option<&'static str>,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let keys = dkim_keys::all(&mut conn).await?;
    let page = DkimPage {
        layout: signed_in.layout("settings", "DKIM keys"),
        tab: "dkim",
        keys: keys.into_iter().map(KeyRow::from).collect(),
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
    signed_in.require(Role::Admin)?;
    page(
        &state,
        &signed_in,
        StatusCode::OK,
        DkimForm::default(),
        notice(&query.notice),
    )
    .await
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageForm(mut form): PageForm<DkimForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    if let Some(body) = form.body()
        && form.errors.is_empty()
        && let Err(e) = api::create(&state, body).await
    {
        form.errors = Errors::from_web(e, |f| f)?;
    }
    if !form.errors.is_empty() {
        return page(
            &state,
            &signed_in,
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            None,
        )
        .await;
    }
    Ok(Redirect::to("/settings/dkim?notice=created").into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let mut conn = state.db.acquire().await?;
    api::delete(&mut conn, id).await?;
    if headers.contains_key("hx-request") {
        return Ok(StatusCode::OK.into_response());
    }
    Ok(Redirect::to("/settings/dkim?notice=deleted").into_response())
}
