//! A relay as its workers see it: where it is, the limits every message
//! through it takes a grant from, and its circuit breaker. The lanes build
//! one per enabled relay; its workers share it.

use std::sync::Arc;

use postino_domain::SmtpSettings;

use crate::breaker::Breaker;
use crate::rates::Rate;

/// What a relay's workers share.
#[derive(Debug)]
pub(crate) struct Relay {
    pub(crate) name: String,
    pub(crate) settings: SmtpSettings,
    /// Limits every message through it takes a grant from, longest window first.
    pub(crate) rates: Vec<Rate>,
    pub(crate) breaker: Arc<Breaker>,
    /// One worker at a time gathers grants, so waiting workers do not each
    /// hold (and waste) grants of the limits they already got.
    pub(crate) gate: tokio::sync::Mutex<()>,
}
