//! What a quota check refuses with: Cinder's exception names and messages.

use super::{per_type_base, PER_VOLUME};
use crate::db::DbError;

/// Why a quota check refused a request, or could not run.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("Unknown quota resources {0}.")]
    UnknownResource(String),
    /// `used` is in use plus reserved, before this request.
    #[error("{}", over_limit_message(resource, *requested, *used, *limit))]
    OverLimit {
        resource: String,
        requested: i64,
        used: i64,
        limit: i64,
    },
}

impl QuotaError {
    /// The name of the Cinder exception this error corresponds to.
    pub fn cinder_exception(&self) -> &'static str {
        match self {
            QuotaError::OverLimit { resource, .. } => match kind(resource) {
                "gigabytes" => "VolumeSizeExceedsAvailableQuota",
                "backup_gigabytes" => "VolumeBackupSizeExceedsAvailableQuota",
                PER_VOLUME => "VolumeSizeExceedsLimit",
                "volumes" => "VolumeLimitExceeded",
                "snapshots" => "SnapshotLimitExceeded",
                "backups" => "BackupLimitExceeded",
                "groups" => "GroupLimitExceeded",
                _ => "OverQuota",
            },
            QuotaError::UnknownResource(_) => "QuotaResourceUnknown",
            QuotaError::Db(_) => "DBError",
        }
    }
}

/// The resource whose exception and message `resource` gets: itself, or for a per-type one
/// (`gigabytes_gold`) the resource it counts, as Cinder's `process_reserve_over_quota`.
fn kind(resource: &str) -> &str {
    per_type_base(resource).unwrap_or(resource)
}

/// Cinder's messages for the exceptions above (a per-type resource named by its own name).
fn over_limit_message(resource: &str, requested: i64, used: i64, limit: i64) -> String {
    match kind(resource) {
        "gigabytes" => format!("Requested volume or snapshot exceeds allowed {resource} quota. Requested {requested}G, quota is {limit}G and {used}G has been consumed."),
        "backup_gigabytes" => format!("Requested backup exceeds allowed Backup gigabytes quota. Requested {requested}G, quota is {limit}G and {used}G has been consumed."),
        PER_VOLUME => format!("Requested volume size {requested}G is larger than maximum allowed limit {limit}G."),
        "volumes" => format!("Maximum number of volumes allowed ({limit}) exceeded for quota '{resource}'."),
        "snapshots" => format!("Maximum number of snapshots allowed ({limit}) exceeded"),
        "backups" => format!("Maximum number of backups allowed ({limit}) exceeded"),
        "groups" => format!("Maximum number of groups allowed ({limit}) exceeded"),
        _ => format!("Quota exceeded for resources: ['{resource}']"),
    }
}
