//! `/connectors`: Formance shapes, status codes and errors.

use serde_json::json;

use super::Api;

#[actix_rt::test]
async fn install_list_read_update_and_uninstall_a_connector() {
    let api = Api::start().await;
    let id = api.install("first").await;

    let list = api.get("/connectors").await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.body,
        json!({"data": [{"provider": "TEST", "connectorID": id, "name": "first", "enabled": true}]})
    );

    // Config with defaults applied and Formance's provider name.
    let config = api.get(&format!("/connectors/TEST/{id}/config")).await;
    assert_eq!(config.status, 200);
    assert_eq!(
        config.body,
        json!({"data": {"name": "first", "period": "10s", "provider": "Test"}})
    );

    // Update: 204, then read back; the echoed `provider` field is accepted.
    let update = api
        .post(
            &format!("/connectors/test/{id}/config"),
            &json!({"name": "first", "period": "1m", "provider": "Test"}),
        )
        .await;
    assert_eq!(update.status, 204, "{}", update.body);
    let config = api.get(&format!("/connectors/test/{id}/config")).await;
    assert_eq!(config.body["data"]["period"], "1m");

    let bad = api
        .post(
            &format!("/connectors/TEST/{id}/config"),
            &json!({"name": "first", "period": "soon"}),
        )
        .await;
    assert!(bad.error(400, "VALIDATION").contains("period"));

    assert_eq!(
        api.delete(&format!("/connectors/TEST/{id}")).await.status,
        204
    );
    assert_eq!(api.get("/connectors").await.body, json!({"data": []}));
    api.delete(&format!("/connectors/TEST/{id}"))
        .await
        .error(404, "NOT_FOUND");
}

#[actix_rt::test]
async fn configs_list_every_provider_with_types_and_defaults() {
    let api = Api::start().await;
    let configs = api.get("/connectors/configs").await;
    assert_eq!(configs.status, 200);
    assert_eq!(
        configs.body["data"]["TEST"],
        json!({
            "name": {"dataType": "string", "required": true},
            "period": {"dataType": "duration ns", "required": false, "defaultValue": "10s"}
        })
    );
}

#[actix_rt::test]
async fn install_errors_use_formance_codes() {
    let api = Api::start().await;
    api.post("/connectors/nope", &json!({"name": "x"}))
        .await
        .error(404, "NOT_FOUND");
    let missing = api.post("/connectors/TEST", &json!({})).await;
    assert!(missing.error(400, "VALIDATION").contains("name"));
    let unknown_field = api
        .post("/connectors/TEST", &json!({"name": "x", "colour": "blue"}))
        .await;
    assert!(unknown_field.error(400, "VALIDATION").contains("colour"));
    let bad_type = api
        .post("/connectors/TEST", &json!({"name": "x", "period": 10}))
        .await;
    assert!(bad_type.error(400, "VALIDATION").contains("period"));

    api.install("taken").await;
    let dup = api
        .post("/connectors/TEST", &json!({"name": "taken"}))
        .await;
    assert!(dup.error(400, "CONFLICT").contains("taken"));
    // Nothing half-installed remains.
    assert_eq!(
        api.get("/connectors").await.body["data"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[actix_rt::test]
async fn reset_keeps_the_connector_id() {
    let api = Api::start().await;
    let id = api.install("r").await;
    assert_eq!(
        api.post_empty(&format!("/connectors/TEST/{id}/reset"))
            .await
            .status,
        204
    );
    let list = api.get("/connectors").await;
    assert_eq!(list.body["data"][0]["connectorID"], id.as_str());
}

#[actix_rt::test]
async fn deprecated_forms_work_with_exactly_one_connector_of_the_provider() {
    let api = Api::start().await;
    api.get("/connectors/TEST/config")
        .await
        .error(404, "NOT_FOUND");
    let id = api.install("only").await;
    let config = api.get("/connectors/test/config").await;
    assert_eq!(config.status, 200);
    assert_eq!(config.body["data"]["name"], "only");
    assert_eq!(api.get("/connectors/TEST/tasks").await.status, 200);
    assert_eq!(api.post_empty("/connectors/TEST/reset").await.status, 204);

    api.install("second").await;
    let ambiguous = api.get("/connectors/TEST/config").await;
    assert!(ambiguous.error(400, "VALIDATION").contains("connectorID"));

    // The id form still tells them apart; the deprecated delete refuses to guess.
    assert_eq!(
        api.get(&format!("/connectors/TEST/{id}/config"))
            .await
            .status,
        200
    );
    api.delete("/connectors/TEST")
        .await
        .error(400, "VALIDATION");
}

#[actix_rt::test]
async fn pause_and_resume_show_in_enabled() {
    let api = Api::start().await;
    let id = api.install("p").await;
    assert_eq!(
        api.post_empty(&format!("/connectors/TEST/{id}/pause"))
            .await
            .status,
        204
    );
    assert_eq!(
        api.get("/connectors").await.body["data"][0]["enabled"],
        false
    );
    assert_eq!(
        api.post_empty(&format!("/connectors/TEST/{id}/resume"))
            .await
            .status,
        204
    );
    assert_eq!(
        api.get("/connectors").await.body["data"][0]["enabled"],
        true
    );
}

#[actix_rt::test]
async fn validate_answers_per_field_errors_without_installing() {
    let api = Api::start().await;
    let ok = api
        .post("/connectors/configs/TEST/validate", &json!({"name": "v"}))
        .await;
    assert_eq!(ok.body, json!({"data": {"valid": true, "errors": []}}));
    let bad = api
        .post("/connectors/configs/test/validate", &json!({"period": "x"}))
        .await;
    assert_eq!(bad.status, 200);
    assert_eq!(bad.body["data"]["valid"], false);
    let fields: Vec<&str> = bad.body["data"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"name") && fields.contains(&"period"),
        "{fields:?}"
    );
    assert_eq!(api.get("/connectors").await.body, json!({"data": []}));
}

#[actix_rt::test]
async fn a_connector_id_under_the_wrong_provider_or_malformed_is_refused() {
    let api = Api::start().await;
    let id = api.install("w").await;
    api.get("/connectors/TEST/not-an-id/config")
        .await
        .error(400, "INVALID_ID");
    let other = tributary::ids::ConnectorKey {
        provider: "TEST".into(),
        reference: uuid::Uuid::new_v4(),
    }
    .id();
    api.get(&format!("/connectors/TEST/{other}/config"))
        .await
        .error(404, "NOT_FOUND");
    api.get(&format!("/connectors/DUMMY-PAY/{id}/config"))
        .await
        .error(404, "NOT_FOUND");
}

#[actix_rt::test]
async fn a_connector_whose_stored_config_no_longer_loads_can_still_be_uninstalled() {
    let db = crate::helpers::TestDb::new().await;
    let id = tributary::ids::ConnectorKey {
        provider: "DUMMY-PAY".into(),
        reference: uuid::Uuid::new_v4(),
    }
    .id();
    db.client()
        .await
        .execute(
            "INSERT INTO connectors (id, reference, provider, name, config, lifecycle)
             VALUES ($1, gen_random_uuid(), 'DUMMY-PAY', 'stale', '{\"name\": \"stale\"}', 'installed')",
            &[&id],
        )
        .await
        .expect("insert a connector without its required directory");
    let app = crate::helpers::spawn_app_on(
        db,
        tributary::connectors::registry(&crate::helpers::test_settings()),
    )
    .await;
    let http = awc::Client::default();
    let reply = http
        .delete(format!("{}/connectors/DUMMY-PAY/{id}", app.base))
        .send()
        .await
        .expect("delete");
    assert_eq!(reply.status().as_u16(), 204);
}
