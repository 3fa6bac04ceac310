//! The built-in connectors: each is a crate of its own under `crates/connectors/`, depending
//! only on the SDK. [`registry`] lists the providers the service knows.

use std::sync::Arc;

use crate::runtime::Registry;

/// DUMMY-PAY, the directory connector (the `tributary-dummypay` crate).
pub use tributary_dummypay as dummypay;

/// The built-in providers.
pub fn registry() -> Registry {
    Registry::new().with(Arc::new(dummypay::DummyPayLoader))
}
