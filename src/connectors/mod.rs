//! Connectors, one folder each; they depend only on the SDK. [`registry`] lists the providers
//! the service knows.

pub mod dummypay;

use std::sync::Arc;

use crate::runtime::Registry;

/// The built-in providers.
pub fn registry() -> Registry {
    Registry::new().with(Arc::new(dummypay::DummyPayLoader))
}
