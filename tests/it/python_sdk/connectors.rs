//! tests/python/payments_v1_connectors.py: the SDK's connector, task, payment, account and
//! balance calls with a write token, a read token and none, checked here against what the
//! service stored (the connector, the payment, the audit log).

use serde_json::json;

use super::{SdkService, run_script, skipped};

#[actix_rt::test]
async fn formance_python_sdk_drives_connectors_payments_and_auth() {
    if skipped() {
        return;
    }
    let service = SdkService::start().await;
    // Under the system's temporary directory: test_settings' DUMMY-PAY allowed root.
    let files = tempfile::tempdir().expect("dummypay directory");
    let mut env = service.env();
    env.push((
        "TRIBUTARY_DUMMYPAY_DIR".into(),
        files.path().to_string_lossy().into_owned(),
    ));
    let run = run_script("payments_v1_connectors.py", env).await;
    let result = run.result();

    // Every call of the script ran, in order (a script that stopped early has no RESULT).
    assert_eq!(
        result["calls"],
        json!([
            "get_server_info_payments",
            "list_configs_available_connectors",
            "install_connector",
            "list_all_connectors",
            "read_connector_config_v1",
            "list_connector_tasks_v1",
            "get_connector_task_v1",
            "list_payments",
            "get_payment",
            "list_accounts_payments",
            "get_account_balances",
            "list_all_connectors (read token)",
            "list_payments (read token)",
            "reset_connector_v1 (read token)",
            "uninstall_connector_v1 (read token)",
            "list_payments (no token)",
            "reset_connector_v1",
            "list_payments (after reset)",
            "uninstall_connector_v1",
        ]),
        "{run}"
    );

    // 401 and 403 reach SDK users as the HTTP status on a ResponseValidationError: the SDK's
    // v1 error model knows only Formance's own codes (docs/api.md#clients).
    assert_eq!(
        result["unauthorized"],
        json!({
            "exception": "ResponseValidationError",
            "status": 401,
            "errorCode": "UNAUTHORIZED",
            "wwwAuthenticate": "Bearer realm=\"tributary\"",
        })
    );
    assert_eq!(
        result["forbidden"],
        json!({
            "exception": "ResponseValidationError",
            "status": 403,
            "errorCode": "FORBIDDEN",
            "wwwAuthenticate":
                "Bearer realm=\"tributary\", error=\"insufficient_scope\", scope=\"payments:write\"",
        })
    );

    // What the SDK did is what the service recorded: the audit log (which outlives the
    // connector) names each token's calls on it, the refused ones as denied.
    let connector_id = result["connectorID"].as_str().expect("connectorID");
    let client = service.app.db.client().await;
    let audit: Vec<(String, String, String, String)> = client
        .query(
            "SELECT principal, method, route, outcome FROM audit_log \
             WHERE connector_id = $1 OR route = '/api/payments/connectors/{provider}' ORDER BY id",
            &[&connector_id],
        )
        .await
        .expect("audit_log")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let row = |who: &str, method: &str, route: &str, outcome: &str| {
        (
            who.to_string(),
            method.to_string(),
            format!("/api/payments/connectors/{{provider}}{route}"),
            outcome.to_string(),
        )
    };
    assert_eq!(
        audit,
        vec![
            row("sdk-writer", "POST", "", "ok"),
            row("sdk-reader", "POST", "/{connectorID}/reset", "denied"),
            row("sdk-reader", "DELETE", "/{connectorID}", "denied"),
            row("sdk-writer", "POST", "/{connectorID}/reset", "ok"),
            row("sdk-writer", "DELETE", "/{connectorID}", "ok"),
        ]
    );
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM connectors WHERE id = $1",
            &[&connector_id],
        )
        .await
        .expect("connectors")
        .get(0);
    assert_eq!(left, 0, "the SDK's uninstall left the connector stored");
    service.app.shutdown.cancel();
}
