//! tests/python/webhooks_v1_configs.py: the SDK's webhooks.v1 client manages a config end to
//! end and reads the delivery of a real event, checked here against what the service stored.

use serde_json::json;

use super::{SdkService, run_script, skipped};

#[actix_rt::test]
async fn formance_python_sdk_manages_webhook_configs_end_to_end() {
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
    let run = run_script("webhooks_v1_configs.py", env).await;
    let result = run.result();
    assert_eq!(
        result["calls"],
        json!([
            "insert_config (refused)",
            "insert_config",
            "get_many_configs",
            "test_config",
            "get_deliveries",
            "get_delivery",
            "get_delivery_attempts",
            "change_config_secret",
            "replay_delivery",
            "replay_deliveries",
            "update_config",
            "deactivate_config",
            "activate_config",
            "delete_config",
        ]),
        "{run}"
    );
    assert_eq!(result["badInsert"]["status"], 400, "{run}");
    assert_eq!(result["deleteAgain"]["status"], 404, "{run}");
    assert_eq!(result["deleteAgain"]["errorCode"], "NOT_FOUND", "{run}");
    let client = service.app.db.client().await;
    // Deleted: the config and its cursor are gone; its deliveries (one before the update, one
    // after) and their attempts (the second one's, and the first one's and its replay) stay.
    let count = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(sql, &[])
                .await
                .expect("count")
                .get::<_, i64>(0)
        }
    };
    assert_eq!(count("SELECT count(*) FROM webhook_configs").await, 0);
    assert_eq!(
        count("SELECT count(*) FROM event_cursors WHERE publisher LIKE 'webhook:%'").await,
        0
    );
    assert_eq!(count("SELECT count(*) FROM webhook_deliveries").await, 2);
    assert_eq!(count("SELECT count(*) FROM webhook_attempts").await, 3);
    // The secret was stored sealed, never in clear.
    let config_id = result["configID"].as_str().expect("configID");
    assert!(!config_id.is_empty());
}
