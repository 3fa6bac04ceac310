//! Every operation of the pinned client's `payments_v1` and `webhooks_v1` is driven by at least
//! one script under tests/python: the bar ("every operation answers without a validation
//! error") kept true as the client or the scripts change. Read from the client's own source in
//! the venv.

use std::collections::BTreeSet;
use std::process::Command;

use super::{python_dir, skipped, venv_python};

/// The public, synchronous operations of the client class `class` of module `module` of
/// `formance_sdk_python`.
fn client_operations(module: &str, class: &str) -> BTreeSet<String> {
    let out = Command::new(venv_python())
        .args([
            "-c",
            &format!(
                "import inspect; from formance_sdk_python.{module} import {class} as P; \
                 print('\\n'.join(n for n, f in inspect.getmembers(P, inspect.isfunction) \
                 if n in vars(P) and not n.startswith('_') and not n.endswith('_async')))"
            ),
        ])
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The operations the scripts named `<prefix>*.py` call, as `<client>.<operation>(` (the
/// scripts name the client `v1`, `writer`, `reader`, `hooks` …).
fn scripted_operations(prefix: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut called = BTreeSet::new();
    for entry in std::fs::read_dir(python_dir()).expect("tests/python") {
        let path = entry.expect("entry").path();
        let is_script = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".py"));
        if !is_script {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("script");
        for op in known {
            if source.contains(&format!(".{op}(")) {
                called.insert(op.clone());
            }
        }
    }
    called
}

/// Fails naming the operations of `module.class` that no `<prefix>*.py` script calls.
fn assert_covered(module: &str, class: &str, prefix: &str, at_least: usize) {
    let operations = client_operations(module, class);
    assert!(
        operations.len() >= at_least,
        "the {module} client's operations were not read: {operations:?}"
    );
    let called = scripted_operations(prefix, &operations);
    let missing: Vec<_> = operations.difference(&called).collect();
    assert!(
        missing.is_empty(),
        "{module} operations no tests/python/{prefix}*.py script calls: {missing:?}"
    );
}

#[test]
fn every_payments_v1_operation_of_the_client_is_driven_by_a_script() {
    if skipped() {
        return;
    }
    assert_covered("payments_v1", "PaymentsV1", "payments_v1_", 40);
}

#[test]
fn every_webhooks_v1_operation_of_the_client_is_driven_by_a_script() {
    if skipped() {
        return;
    }
    assert_covered("webhooks_v1", "WebhooksV1", "webhooks_v1_", 11);
}
