//! Connectors, one folder each; they depend only on the SDK. [`registry`] lists the providers
//! the service knows.

use crate::runtime::Registry;

/// The built-in providers.
pub fn registry() -> Registry {
    Registry::new()
}
