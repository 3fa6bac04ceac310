//! The built-in connectors: each is a crate of its own under `crates/connectors/`, depending
//! only on the SDK. [`registry`] lists the providers the service knows.

use std::path::PathBuf;
use std::sync::Arc;

use crate::runtime::Registry;
use crate::settings::Settings;

/// DUMMY-PAY, the directory connector (the `tributary-dummypay` crate).
pub use tributary_dummypay as dummypay;

/// The built-in providers, configured by `settings` (DUMMY-PAY's allowed roots).
pub fn registry(settings: &Settings) -> Registry {
    let roots = dummypay::AllowedRoots::new(dummypay_roots(settings));
    Registry::new().with(Arc::new(dummypay::DummyPayLoader::new(roots)))
}

/// Where DUMMY-PAY connectors may read: `dummypay.allowed_roots` (by default
/// `<data_dir>/dummypay`) and the directories of the DUMMY-PAY connectors declared in the
/// settings file, which the operator chose in the same file.
pub fn dummypay_roots(settings: &Settings) -> Vec<PathBuf> {
    let mut roots = if settings.dummypay.allowed_roots.is_empty() {
        vec![settings.data_dir.join("dummypay")]
    } else {
        settings.dummypay.allowed_roots.clone()
    };
    for declared in &settings.connectors {
        if declared.provider.eq_ignore_ascii_case(dummypay::PROVIDER)
            && let Some(serde_json::Value::String(dir)) = declared.config.get("directory")
        {
            roots.push(PathBuf::from(dir));
        }
    }
    roots
}
