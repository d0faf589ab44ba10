//! Finding the campaign a page is about.

use postino_db::campaigns::Campaign;
use uuid::Uuid;

use crate::AppState;
use crate::dashboard::page::PageError;

/// The campaign `id`, or the dashboard's 404 page.
pub(crate) async fn load(state: &AppState, id: Uuid) -> Result<Campaign, PageError> {
    let mut conn = state.db.acquire().await?;
    Ok(postino_service::campaigns::get(&mut conn, id).await?)
}
