//! Connectors declared in the settings file (`[[connectors]]`), reconciled at boot: each is
//! installed if absent, its config updated if it differs once defaults are applied, and left
//! alone if equal. An update is applied by the restore itself (see [`plan`]), so that no task
//! of the connector resumes with its old config; installs follow the restore. A connector is
//! identified by (provider, name). Removing a declaration only logs a warning: uninstalling
//! would delete its payments. API-installed connectors are left alone.

use std::collections::HashMap;

use serde_json::Value;

use crate::runtime::{Registry, Runtime, RuntimeError, checked_config};
use crate::sdk::Config;
use crate::secrets::{SecretsError, Vault};
use crate::settings::DeclaredConnector;
use crate::storage::commands::connectors::Lifecycle;
use crate::storage::{Pool, StorageError, queries};

/// Why the declared connectors cannot be applied; the message names the connector and field.
#[derive(Debug, thiserror::Error)]
pub enum DeclaredError {
    /// A declaration is invalid.
    #[error("connectors[{index}] ({provider}/{name}): {problem}")]
    Invalid {
        /// Its position in the file.
        index: usize,
        /// Its provider.
        provider: String,
        /// Its name.
        name: String,
        /// What is wrong (naming the field).
        problem: String,
    },
    /// Installing or updating it failed.
    #[error("connectors[{index}] ({provider}/{name}): {source}")]
    Apply {
        /// Its position in the file.
        index: usize,
        /// Its provider.
        provider: String,
        /// Its name.
        name: String,
        /// The runtime's error.
        source: Box<RuntimeError>,
    },
    /// The existing connectors could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored connector's secrets could not be decrypted.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

/// What reconciliation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Connectors installed.
    pub installed: usize,
    /// Connectors whose config was updated.
    pub updated: usize,
    /// Connectors left as they were.
    pub unchanged: usize,
}

/// A declaration's config with its name, and its defaults applied and validated.
fn desired(
    registry: &Registry,
    index: usize,
    declared: &DeclaredConnector,
) -> Result<(String, Config, Config), DeclaredError> {
    let invalid = |problem: String| DeclaredError::Invalid {
        index,
        provider: declared.provider.clone(),
        name: declared.name.clone(),
        problem,
    };
    let loader = registry.get(&declared.provider).ok_or_else(|| {
        invalid(format!(
            "key `provider`: unknown provider {:?}",
            declared.provider
        ))
    })?;
    let mut config = declared.config.clone();
    match config.get("name") {
        None => {
            config.insert("name".into(), Value::String(declared.name.clone()));
        }
        Some(Value::String(n)) if *n == declared.name => {}
        Some(other) => {
            return Err(invalid(format!(
                "key `config.name` ({other}) differs from `name` ({:?})",
                declared.name
            )));
        }
    }
    let (with_defaults, _) =
        checked_config(loader, config.clone()).map_err(|e| invalid(format!("key `config.{e}`")))?;
    Ok((loader.provider().to_string(), config, with_defaults))
}

/// Checks every declaration against the providers (used by `check-config` and at boot).
pub fn validate(registry: &Registry, declared: &[DeclaredConnector]) -> Result<(), DeclaredError> {
    for (index, d) in declared.iter().enumerate() {
        desired(registry, index, d)?;
    }
    Ok(())
}

/// What boot does with the declarations, decided before any connector is restored.
#[derive(Debug, Default)]
pub struct Plan {
    /// New configs by connector id, for [`crate::runtime::Runtime::restore_with`]: stored
    /// before the connector is loaded, so that none of its tasks resumes with the old config.
    pub configs: HashMap<String, Config>,
    /// The declarations with no connector yet (by position), installed after the restore.
    missing: Vec<usize>,
    /// Declarations whose connector is already as declared.
    unchanged: usize,
}

/// Compares the declarations with the stored connectors (step 1 of the boot, before the
/// restore). A connector whose install was interrupted counts as missing (the restore rolls
/// it back), as does one whose uninstall was (the restore finishes it); one whose reset was
/// interrupted is finished by the restore with its new config.
pub async fn plan(
    registry: &Registry,
    vault: &Vault,
    pool: &Pool,
    declared: &[DeclaredConnector],
) -> Result<Plan, DeclaredError> {
    validate(registry, declared)?;
    let existing: Vec<_> = queries::connectors::all(pool)
        .await?
        .into_iter()
        .filter(|c| matches!(c.lifecycle, Lifecycle::Installed | Lifecycle::Resetting))
        .collect();
    let mut plan = Plan::default();
    for (index, d) in declared.iter().enumerate() {
        let (provider, config, with_defaults) = desired(registry, index, d)?;
        let found = existing
            .iter()
            .find(|c| c.provider == provider && c.name == d.name);
        // Compared in clear: the stored secrets are encrypted (with a fresh nonce each time).
        let stored = match found {
            Some(row) => {
                let schema = registry
                    .get(&provider)
                    .map(|l| l.schema())
                    .unwrap_or_default();
                Some(vault.open(&row.id, &schema, &row.config)?.config)
            }
            None => None,
        };
        match found.zip(stored) {
            None => plan.missing.push(index),
            Some((row, stored)) if stored != with_defaults => {
                tracing::info!(connector_id = %row.id, name = %d.name, "declared connector's config changed");
                plan.configs.insert(row.id.clone(), config);
            }
            Some(_) => plan.unchanged += 1,
        }
    }
    for row in existing.iter().filter(|c| c.declared) {
        if !declared
            .iter()
            .any(|d| d.name == row.name && d.provider.eq_ignore_ascii_case(&row.provider))
        {
            tracing::warn!(connector_id = %row.id, name = %row.name,
                "connector no longer declared in the settings file; left installed (uninstall it through the API to delete its data)");
        }
    }
    Ok(plan)
}

/// Installs the declared connectors that do not exist (step 2 of the boot, after the restore
/// applied `plan.configs`).
pub async fn install_missing(
    runtime: &Runtime,
    declared: &[DeclaredConnector],
    plan: Plan,
) -> Result<Reconciled, DeclaredError> {
    let mut done = Reconciled {
        installed: 0,
        updated: plan.configs.len(),
        unchanged: plan.unchanged,
    };
    for index in plan.missing {
        let d = &declared[index];
        let (provider, config, _) = desired(runtime.registry(), index, d)?;
        let id = runtime
            .install(&provider, config, true)
            .await
            .map_err(|source| DeclaredError::Apply {
                index,
                provider: d.provider.clone(),
                name: d.name.clone(),
                source: Box::new(source),
            })?;
        tracing::info!(connector_id = %id, name = %d.name, "declared connector installed");
        done.installed += 1;
    }
    Ok(done)
}
