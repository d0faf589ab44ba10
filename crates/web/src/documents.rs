//! JSON documents both HTTP surfaces hand out: a subscriber as the API
//! shows them, and the personal-data export the API and the dashboard's
//! subscriber page both offer, so the two downloads are the same bytes.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, header};
use chrono::{DateTime, Utc};
use postino_db::subscribers::Subscriber;
use postino_domain::{MembershipStatus, SubscriberStatus};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

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

/// Everything Postino holds on one subscriber.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubscriberExport {
    subscriber: SubscriberResponse,
    exported_at: DateTime<Utc>,
}

/// Everything held on subscriber `id`, as a JSON download.
pub(crate) fn subscriber_export(
    subscriber: Subscriber,
    id: Uuid,
) -> (HeaderMap, Json<SubscriberExport>) {
    let mut headers = HeaderMap::new();
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"subscriber-{id}.json\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    (
        headers,
        Json(SubscriberExport {
            subscriber: subscriber.into(),
            exported_at: Utc::now(),
        }),
    )
}
