//! CSV imports: what an import does and where its job stands.

use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::lists::text_enum;

/// What an import does with each address in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Add to the lists, creating subscribers that do not exist yet.
    #[default]
    Subscribe,
    /// Mark existing memberships of the lists unsubscribed; creates nobody.
    Unsubscribe,
    /// Blocklist the addresses (creating them blocklisted if unknown), so
    /// they are never mailed, whatever list they later join.
    Blocklist,
}

text_enum!(ImportMode, "import mode", {
    Subscribe => "subscribe",
    Unsubscribe => "unsubscribe",
    Blocklist => "blocklist",
});

impl ImportMode {
    /// Whether the mode acts on lists, and so needs at least one.
    #[must_use]
    pub fn needs_lists(self) -> bool {
        !matches!(self, Self::Blocklist)
    }
}

/// Where an import job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker holds it; progress is committed batch by batch.
    Running,
    /// Every row was read; bad rows are in the error report.
    Finished,
    /// Stopped by a problem with the whole file or the system; what was
    /// committed before stays, and the counters say how much that was.
    Failed,
    /// Stopped on request; batches committed before the cancel stay.
    Cancelled,
}

text_enum!(ImportStatus, "import status", {
    Queued => "queued",
    Running => "running",
    Finished => "finished",
    Failed => "failed",
    Cancelled => "cancelled",
});

impl ImportStatus {
    /// Whether the job has ended for good.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Finished | Self::Failed | Self::Cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_statuses_round_trip_through_their_text() {
        for mode in [
            ImportMode::Subscribe,
            ImportMode::Unsubscribe,
            ImportMode::Blocklist,
        ] {
            assert_eq!(mode.as_str().parse::<ImportMode>().unwrap(), mode);
        }
        assert!("delete".parse::<ImportMode>().is_err());
        assert!(ImportStatus::Cancelled.is_terminal());
        assert!(!ImportStatus::Running.is_terminal());
    }
}
