//! tests/python/payments_v1_legacy.py: the provider-only connector calls, the config update,
//! payment metadata and one account, checked here against what the service stored.

use serde_json::json;

use super::{SdkService, run_script, skipped};

#[actix_rt::test]
async fn formance_python_sdk_drives_provider_routes_config_update_and_metadata() {
    if skipped() {
        return;
    }
    let service = SdkService::start().await;
    let files = tempfile::tempdir().expect("dummypay directory");
    let mut env = service.env();
    env.push((
        "TRIBUTARY_DUMMYPAY_DIR".into(),
        files.path().to_string_lossy().into_owned(),
    ));
    let run = run_script("payments_v1_legacy.py", env).await;
    let result = run.result();
    assert_eq!(
        result["calls"],
        json!([
            "install_connector",
            "read_connector_config",
            "list_connector_tasks",
            "get_connector_task",
            "update_connector_config_v1",
            "update_metadata",
            "get_account_payments",
            "reset_connector",
            "uninstall_connector",
        ]),
        "{run}"
    );

    // The metadata the SDK set was stored before the reset wiped the connector's data: the
    // audit log recorded the call, and the connector is gone.
    let client = service.app.db.client().await;
    let routes: Vec<String> = client
        .query(
            "SELECT method || ' ' || route FROM audit_log WHERE outcome = 'ok' ORDER BY id",
            &[],
        )
        .await
        .expect("audit_log")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        routes.contains(&"PATCH /api/payments/payments/{paymentID}/metadata".to_string()),
        "{routes:?}"
    );
    let left: i64 = client
        .query_one("SELECT count(*) FROM connectors", &[])
        .await
        .expect("connectors")
        .get(0);
    assert_eq!(left, 0, "the SDK's uninstall left the connector stored");
    service.app.shutdown.cancel();
}
