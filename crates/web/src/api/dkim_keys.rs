//! `/api/v1/dkim-keys`: the keys that DKIM-sign outgoing mail, one or more
//! per sending domain.
//!
//! A private key goes in (generated here or imported as PEM) and never comes
//! out: it is sealed before it is stored, responses carry only the public
//! key's DNS record, and the request body holds an imported key in a
//! `SecretString`, so no `Debug` of it can print it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use postino_compose::dkim::{DkimKeyError, DnsRecord, KeyPair};
use postino_db::PgConnection;
use postino_db::dkim_keys::{self, DkimKey, NewDkimKey};
use postino_domain::{DkimAlgorithm, DkimDomain, DkimSelector};
use secrecy::{ExposeSecret, SecretString};
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
        .routes(routes!(list_keys, create_key))
        .routes(routes!(get_key, update_key, delete_key))
}

/// The DNS TXT record that publishes a key's public half.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DnsRecordResponse {
    /// `<selector>._domainkey.<domain>`.
    name: String,
    /// Always `TXT`.
    #[serde(rename = "type")]
    kind: String,
    /// The whole value: `v=DKIM1; k=rsa; p=…` or `v=DKIM1; k=ed25519; p=…`.
    value: String,
    /// The value cut into strings of at most 255 characters, for DNS
    /// providers and zone files that want a long value that way.
    strings: Vec<String>,
    /// The record as one line of a zone file.
    zone_file_line: String,
}

impl From<DnsRecord> for DnsRecordResponse {
    fn from(r: DnsRecord) -> Self {
        Self {
            name: r.name,
            kind: r.kind,
            value: r.value,
            strings: r.strings,
            zone_file_line: r.zone_file_line,
        }
    }
}

/// A DKIM key. Its private half is never shown.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DkimKeyResponse {
    id: Uuid,
    /// The signing domain (`d=`); it also signs mail from its subdomains
    /// that have no key of their own.
    domain: String,
    /// The selector (`s=`).
    selector: String,
    algorithm: DkimAlgorithm,
    /// Whether the sender signs with it. Of several enabled keys of one
    /// domain, the newest signs.
    enabled: bool,
    /// Publish this before enabling the key, or receivers cannot verify.
    dns_record: DnsRecordResponse,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<DkimKey> for DkimKeyResponse {
    fn from(k: DkimKey) -> Self {
        let record = dns_record(&k);
        Self {
            id: k.uuid,
            domain: k.domain.into(),
            selector: k.selector.into(),
            algorithm: k.algorithm,
            enabled: k.enabled,
            dns_record: record.into(),
            created_at: k.created_at,
            updated_at: k.updated_at,
        }
    }
}

/// Every DKIM key, by domain and selector.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DkimKeysResponse {
    items: Vec<DkimKeyResponse>,
}

/// A new key: generated when `private_key` is absent, imported otherwise.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDkimKeyBody {
    /// The domain it signs for, e.g. `example.com`; it also signs mail from
    /// subdomains without a key of their own.
    #[schema(value_type = String, example = "example.com")]
    pub(crate) domain: DkimDomain,
    /// DNS labels of letters, digits and dashes, unique per domain.
    #[schema(value_type = String, example = "postino2026")]
    pub(crate) selector: DkimSelector,
    /// Generating: which key to make (RSA-2048 when absent). Importing:
    /// read from the key when absent, checked against it when given.
    pub(crate) algorithm: Option<DkimAlgorithm>,
    /// A PEM private key to import (PKCS#1 `BEGIN RSA PRIVATE KEY` or PKCS#8
    /// `BEGIN PRIVATE KEY`; RSA of 2048 to 4096 bits, or Ed25519). Never
    /// returned.
    #[schema(value_type = Option<String>, write_only)]
    pub(crate) private_key: Option<SecretString>,
    /// Whether to sign with it at once. Create it disabled to publish its
    /// DNS record first, when rotating a domain's key.
    #[schema(default = true)]
    pub(crate) enabled: Option<bool>,
}

/// A change to a key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DkimKeyChange {
    /// Whether the sender signs with it.
    enabled: bool,
}

/// Generates or imports a key as `body` says, seals its private half and
/// stores it; the API and the dashboard both add keys through here.
pub(crate) async fn create(state: &AppState, body: NewDkimKeyBody) -> Result<DkimKey, WebError> {
    let pair = match &body.private_key {
        Some(pem) => KeyPair::from_pem(pem.expose_secret(), body.algorithm).map_err(key_error)?,
        None => {
            let algorithm = body.algorithm.unwrap_or(DkimAlgorithm::RsaSha256);
            // RSA generation takes up to seconds of CPU: off the runtime.
            tokio::task::spawn_blocking(move || KeyPair::generate(algorithm))
                .await
                .map_err(|e| WebError::Internal(Box::new(e)))?
                .map_err(key_error)?
        }
    };
    let sealed = state
        .service
        .addressing
        .dkim_vault
        .seal(
            body.domain.as_str(),
            body.selector.as_str(),
            pair.expose_pkcs8(),
        )
        .map_err(|e| WebError::Internal(Box::new(e)))?;
    let mut conn = state.db.acquire().await?;
    let key = dkim_keys::create(
        &mut conn,
        NewDkimKey {
            domain: &body.domain,
            selector: &body.selector,
            algorithm: pair.algorithm(),
            sealed: &sealed,
            public_key: pair.public_key(),
            enabled: body.enabled.unwrap_or(true),
        },
    )
    .await?;
    Ok(key)
}

/// Deletes key `id`.
pub(crate) async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), WebError> {
    let stored = dkim_keys::get(conn, id)
        .await
        .map_err(postino_service::Error::not_found("DKIM key"))?;
    Ok(dkim_keys::delete(conn, stored.id)
        .await
        .map_err(postino_service::Error::not_found("DKIM key"))?)
}

/// The DNS TXT record that publishes `key`'s public half.
pub(crate) fn dns_record(key: &DkimKey) -> DnsRecord {
    use base64::Engine;
    let p = base64::engine::general_purpose::STANDARD.encode(&key.public_key);
    DnsRecord::new(&key.domain, &key.selector, key.algorithm, &p)
}

fn key_error(e: DkimKeyError) -> WebError {
    match e {
        DkimKeyError::Pem(reason) => WebError::invalid("private_key", reason),
        e @ DkimKeyError::WrongAlgorithm { .. } => WebError::invalid("algorithm", e.to_string()),
        e @ DkimKeyError::Generate(_) => WebError::Internal(Box::new(e)),
    }
}

/// List every DKIM key with the DNS record each needs.
#[utoipa::path(get, path = "/dkim-keys", tag = "dkim-keys",
    responses((status = 200, description = "OK", body = DkimKeysResponse)))]
async fn list_keys(State(state): State<AppState>) -> Result<Json<DkimKeysResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let keys = dkim_keys::all(&mut conn).await?;
    Ok(Json(DkimKeysResponse {
        items: keys.into_iter().map(DkimKeyResponse::from).collect(),
    }))
}

/// Generate a key (RSA-2048 or Ed25519) or import a PEM one for a domain.
/// The response has the DNS record to publish; the private key stays here.
#[utoipa::path(post, path = "/dkim-keys", tag = "dkim-keys", request_body = NewDkimKeyBody,
    responses((status = 201, description = "Created", body = DkimKeyResponse),
              (status = 409, description = "The domain already has a key with this selector", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn create_key(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewDkimKeyBody>,
) -> Result<(StatusCode, Json<DkimKeyResponse>), WebError> {
    let key = create(&state, body).await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

/// Get one DKIM key and its DNS record.
#[utoipa::path(get, path = "/dkim-keys/{id}", tag = "dkim-keys", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = DkimKeyResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn get_key(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<DkimKeyResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let key = dkim_keys::get(&mut conn, id)
        .await
        .map_err(postino_service::Error::not_found("DKIM key"))?;
    Ok(Json(key.into()))
}

/// Enable or disable a DKIM key. Senders pick the change up within
/// `sender.reload_servers`.
#[utoipa::path(patch, path = "/dkim-keys/{id}", tag = "dkim-keys", params(("id" = Uuid, Path)),
    request_body = DkimKeyChange,
    responses((status = 200, description = "OK", body = DkimKeyResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn update_key(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<DkimKeyChange>,
) -> Result<Json<DkimKeyResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let stored = dkim_keys::get(&mut conn, id)
        .await
        .map_err(postino_service::Error::not_found("DKIM key"))?;
    let key = dkim_keys::set_enabled(&mut conn, stored.id, body.enabled)
        .await
        .map_err(postino_service::Error::not_found("DKIM key"))?;
    Ok(Json(key.into()))
}

/// Delete a DKIM key. Keep its DNS record published for a few days, so
/// messages already signed with it still verify.
#[utoipa::path(delete, path = "/dkim-keys/{id}", tag = "dkim-keys", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Done; no content"),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn delete_key(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<StatusCode, WebError> {
    let mut conn = state.db.acquire().await?;
    delete(&mut conn, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether a campaign's messages are DKIM-signed, and with which key.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DkimSigning {
    /// Whether messages are signed.
    pub(crate) signed: bool,
    /// The signing domain (`d=`): the From domain or a parent of it; null
    /// when unsigned.
    domain: Option<String>,
    /// The key's selector; null when unsigned.
    selector: Option<String>,
    algorithm: Option<DkimAlgorithm>,
    /// The same in words, saying what to do when messages go unsigned.
    pub(crate) note: String,
}

impl From<postino_service::dkim::Signing> for DkimSigning {
    fn from(s: postino_service::dkim::Signing) -> Self {
        Self {
            signed: s.signed,
            domain: s.domain,
            selector: s.selector,
            algorithm: s.algorithm,
            note: s.note,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::parse_json;

    #[test]
    fn a_request_body_never_prints_its_private_key() {
        let body: NewDkimKeyBody = parse_json(
            br#"{"domain": "example.com", "selector": "s1", "private_key": "-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n-----END PRIVATE KEY-----"}"#,
        )
        .unwrap();
        assert!(!format!("{body:?}").contains("SECRETSECRET"), "{body:?}");
    }
}
