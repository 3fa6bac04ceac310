//! The providers Tributary knows: one [`Loader`] per provider name, looked up
//! case-insensitively (`DUMMY-PAY` and `dummy-pay` are the same provider).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::sdk::Loader;

/// Loaders by upper-case provider name.
#[derive(Clone, Default)]
pub struct Registry {
    loaders: BTreeMap<String, Arc<dyn Loader>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a provider (replacing one of the same name).
    pub fn with(mut self, loader: Arc<dyn Loader>) -> Self {
        self.loaders
            .insert(loader.provider().to_ascii_uppercase(), loader);
        self
    }

    /// The loader of a provider, whatever its case.
    pub fn get(&self, provider: &str) -> Option<&Arc<dyn Loader>> {
        self.loaders.get(&provider.to_ascii_uppercase())
    }

    /// Every loader, by provider name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Loader>> {
        self.loaders.values()
    }
}
