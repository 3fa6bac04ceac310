//! Payments and accounts created through the API (`POST /payments`, `POST /accounts`): the
//! ingestion command itself ([`IngestBatch`]: the same ids, upserts and adjustments as a
//! connector's ingest), applied only while its connector is installed.

use super::ingest::IngestBatch;
use crate::sdk::ingest::IngestReport;
use crate::storage::{StorageError, Tx, WriteCommand};

/// An [`IngestBatch`] from the API: its connector must exist and be installed, checked in the
/// same transaction (the row is share-locked, so an uninstall or reset, which updates it
/// first, waits for this write or runs entirely before it).
#[derive(Debug, Clone)]
pub struct ManualIngest(pub IngestBatch);

impl WriteCommand for ManualIngest {
    type Output = IngestReport;

    async fn apply(&self, tx: &Tx<'_>) -> Result<IngestReport, StorageError> {
        let id = self.0.connector.id();
        let row = tx
            .query_opt(
                "SELECT lifecycle FROM connectors WHERE id = $1 FOR SHARE",
                &[&id],
            )
            .await
            .map_err(|e| StorageError::db("checking the connector", e))?;
        match row.map(|r| r.get::<_, String>(0)) {
            None => Err(StorageError::NotFound(format!("connector {id} not found"))),
            Some(lifecycle) if lifecycle != "installed" => Err(StorageError::Conflict(format!(
                "connector {id} is {lifecycle}: nothing can be created under it now"
            ))),
            Some(_) => self.0.apply(tx).await,
        }
    }
}
