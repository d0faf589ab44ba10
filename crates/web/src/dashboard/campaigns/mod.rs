//! The campaign pages.
//!
//! - `editor`: the table of campaigns, the editor for a new one and the
//!   page of one campaign, where it is edited while still a draft.
//! - `form`: the editor's fields as typed, turned into a
//!   [`postino_service::campaigns::CampaignDraft`] so both surfaces are
//!   checked by the same rules, with the field errors put back beside them.
//! - `actions`: live preview, test sends, status moves, scheduling, deleting.
//! - `progress`: the progress bar the page polls while sending.
//! - `timeline`: the chart of deliveries over time.
//! - `deliveries`: who got it and why, and retrying the failures.
//! - `lookup`: finding the campaign a page is about.
//! - `preview`: a rendered preview as the page shows it.

pub(crate) mod actions;
pub(crate) mod deliveries;
pub(crate) mod editor;
mod form;
pub(crate) mod lookup;
mod preview;
pub(crate) mod progress;
mod timeline;
