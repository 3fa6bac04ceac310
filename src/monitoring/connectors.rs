//! Per-connector counters, labelled with the connector's *current* name and provider beside
//! its id.
//!
//! The runtime (task runs, ingested rows) and connector crates (through the SDK's context,
//! which knows only the id) count with a `connector_id` label. The recorder hands every such
//! counter out of this store instead of the Prometheus registry, and the name and provider are
//! added when a scrape renders them: one place adds them, so no per-connector counter can
//! miss them, connector crates need no change, and a renamed connector's series carry the
//! new name from the next scrape on — the old series ends at once instead of lingering with a
//! frozen value. An uninstalled connector's counters go with it.
//!
//! The connector manager says which connectors exist ([`set`] before a supervisor starts,
//! again after a config update, [`forget`] after an uninstall). A counter for an id it never
//! announced (or already forgot: a late count from a stopping run) is a no-op, so a gone
//! connector cannot leave entries behind.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use metrics::{Counter, Key};

use super::text::{self, Labels};

/// The label every per-connector metric carries.
pub const ID_LABEL: &str = "connector_id";

/// A metric's series of one connector: by the key's labels other than the id (sorted).
type Series = BTreeMap<Vec<(String, String)>, Arc<AtomicU64>>;

/// One connector's labels and counters.
#[derive(Default)]
struct Entry {
    name: String,
    provider: String,
    /// By metric name.
    counters: BTreeMap<String, Series>,
}

static STORE: LazyLock<Mutex<HashMap<String, Entry>>> = LazyLock::new(Default::default);

fn store() -> MutexGuard<'static, HashMap<String, Entry>> {
    // A panic while holding the lock left plain data behind: keep using it.
    STORE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Announces a connector, or its new name after a config update; its counters are kept.
pub fn set(connector_id: &str, name: &str, provider: &str) {
    let mut store = store();
    let entry = store.entry(connector_id.to_string()).or_default();
    entry.name = name.to_string();
    entry.provider = provider.to_string();
}

/// Drops a connector and its counters (it was uninstalled).
pub fn forget(connector_id: &str) {
    store().remove(connector_id);
}

/// The current `(name, provider)` of an announced connector.
pub fn labels(connector_id: &str) -> Option<(String, String)> {
    store()
        .get(connector_id)
        .map(|e| (e.name.clone(), e.provider.clone()))
}

/// The counter for `key` when it carries a `connector_id` label: from this store, or a no-op
/// when the connector is unknown. `None` for any other key.
pub(super) fn counter(key: &Key) -> Option<Counter> {
    let id = key
        .labels()
        .find(|l| l.key() == ID_LABEL)?
        .value()
        .to_string();
    let mut others: Vec<(String, String)> = key
        .labels()
        .filter(|l| l.key() != ID_LABEL)
        .map(|l| (l.key().to_string(), l.value().to_string()))
        .collect();
    others.sort();
    let mut store = store();
    let Some(entry) = store.get_mut(&id) else {
        return Some(Counter::noop());
    };
    let cell = entry
        .counters
        .entry(key.name().to_string())
        .or_default()
        .entry(others)
        .or_default()
        .clone();
    Some(Counter::from_arc(cell))
}

/// Writes every connector's counters in the Prometheus text format.
pub fn render(out: &mut String) {
    // Metric name → lines, so that each family is written once with its TYPE line.
    let mut families: BTreeMap<String, Vec<(Labels, u64)>> = BTreeMap::new();
    for (id, entry) in store().iter() {
        for (metric, series) in &entry.counters {
            for (others, value) in series {
                let mut labels: Labels = vec![
                    (ID_LABEL.to_string(), id.clone()),
                    ("name".to_string(), entry.name.clone()),
                    ("provider".to_string(), entry.provider.clone()),
                ];
                labels.extend(others.iter().cloned());
                families
                    .entry(metric.clone())
                    .or_default()
                    .push((labels, value.load(Ordering::Relaxed)));
            }
        }
    }
    for (metric, series) in families {
        text::family(out, &metric, "counter");
        for (labels, value) in series {
            text::sample(out, &metric, &labels, value);
        }
    }
}
