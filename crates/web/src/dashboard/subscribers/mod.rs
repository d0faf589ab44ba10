//! The subscriber pages.
//!
//! - `index`: the searchable table and its CSV export.
//! - `search`: the search form read into the service's filter.
//! - `bulk`: one action on the rows ticked in the table, or on everyone
//!   the search matches.
//! - `profile`: one subscriber's page.
//! - `actions`: editing, blocklisting, list memberships and deleting.
//! - `new`: adding one by hand.

pub(crate) mod actions;
pub(crate) mod bulk;
pub(crate) mod index;
pub(crate) mod new;
pub(crate) mod profile;
mod search;
