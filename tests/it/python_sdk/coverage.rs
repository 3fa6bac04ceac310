//! Every operation of the pinned client's `payments_v1` is driven by at least one script under
//! tests/python: the bar ("every operation answers without a validation error") kept
//! true as the client or the scripts change. Read from the client's own source in the venv.

use std::collections::BTreeSet;
use std::process::Command;

use super::{python_dir, skipped, venv_python};

/// The public, synchronous operations of `formance_sdk_python.payments_v1.PaymentsV1`.
fn client_operations() -> BTreeSet<String> {
    let out = Command::new(venv_python())
        .args([
            "-c",
            "import inspect; from formance_sdk_python.payments_v1 import PaymentsV1 as P; \
             print('\\n'.join(n for n, f in inspect.getmembers(P, inspect.isfunction) \
             if n in vars(P) and not n.startswith('_') and not n.endswith('_async')))",
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

/// The operations the scripts call, as `<client>.<operation>(` on a `payments.v1` client
/// (the scripts name it `v1`, `writer`, `reader` …).
fn scripted_operations(known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut called = BTreeSet::new();
    for entry in std::fs::read_dir(python_dir()).expect("tests/python") {
        let path = entry.expect("entry").path();
        let is_script = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("payments_v1_") && n.ends_with(".py"));
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

#[test]
fn every_payments_v1_operation_of_the_client_is_driven_by_a_script() {
    if skipped() {
        return;
    }
    let operations = client_operations();
    assert!(
        operations.len() >= 40,
        "the client's operations were not read: {operations:?}"
    );
    let called = scripted_operations(&operations);
    let missing: Vec<_> = operations.difference(&called).collect();
    assert!(
        missing.is_empty(),
        "payments_v1 operations no script under tests/python calls: {missing:?}"
    );
}
