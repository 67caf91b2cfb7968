//! What a sync did: per table, rows inserted, updated, deleted and left unchanged, with the API's totals; the CLI prints it as is.

use serde::Serialize;

/// How the rows of one table changed in a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Changes {
    /// Rows for records the mirror did not have.
    pub inserted: u64,
    /// Rows whose record changed (its bytes differ from the mirrored ones).
    pub updated: u64,
    /// Rows of records the API no longer lists.
    pub deleted: u64,
    /// Rows left as they were.
    pub unchanged: u64,
}

impl Changes {
    /// Whether any row was written.
    pub fn changed(&self) -> bool {
        self.inserted + self.updated + self.deleted > 0
    }
}

/// How many records the API said it has, on the last page of each listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ApiTotals {
    /// `total` of `GET /conversations`.
    pub conversations: u64,
    /// `positiveFeedbackCount + negativeFeedbackCount` of `GET /feedback`.
    pub feedback: u64,
}

/// The Parquet files a run wrote or removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Partitions {
    /// Partitions written (new, or replaced because a record in them changed).
    pub written: u64,
    /// Partitions removed because the API no longer has any record in them.
    pub removed: u64,
}

/// What one sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The `conversations` table.
    pub conversations: Changes,
    /// The `messages` table.
    pub messages: Changes,
    /// The `feedback` table.
    pub feedback: Changes,
    /// The API's totals.
    pub api_totals: ApiTotals,
    /// `false` when the API's totals kept changing while the listings were paged, so that a
    /// record might have been missed: nothing was deleted then, and the next run catches up.
    pub complete: bool,
    /// For a Parquet dataset, the partitions written and removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Partitions>,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// When it committed.
    pub finished_at: String,
}

impl Report {
    /// Whether the run changed any row.
    pub fn changed(&self) -> bool {
        self.conversations.changed() || self.messages.changed() || self.feedback.changed()
    }
}

/// Now, as RFC 3339 in UTC with milliseconds (chrono's clock feature is not needed for this).
pub(crate) fn now() -> String {
    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
