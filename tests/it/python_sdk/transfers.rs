//! tests/python/payments_v1_transfers.py: the SDK's transfer-initiation calls and
//! `connectors_transfer`, executed by DUMMY-PAY, checked here against what the service stored
//! and what DUMMY-PAY wrote to its outbox.

use serde_json::json;

use super::{SdkService, run_script, skipped};

#[actix_rt::test]
async fn formance_python_sdk_drives_transfer_initiations() {
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
    let run = run_script("payments_v1_transfers.py", env).await;
    let result = run.result();
    assert_eq!(
        result["calls"],
        json!([
            "create_transfer_initiation",
            "list_transfer_initiations",
            "get_transfer_initiation",
            "reverse_transfer_initiation",
            "update_transfer_initiation_status",
            "update_transfer_initiation_status (illegal)",
            "delete_transfer_initiation",
            "retry_transfer_initiation",
            "connectors_transfer",
            "list_transfer_initiations (query)",
            "list_transfer_initiations (query, cursor)",
            "list_transfer_initiations (unknown field)",
        ]),
        "{run}"
    );
    assert_eq!(result["illegal"]["status"], 400);
    let client = service.app.db.client().await;
    let status = |id: &str| {
        let client = &client;
        let id = id.to_string();
        async move {
            client
                .query_opt(
                    "SELECT status, amount::text, initial_amount::text
                     FROM transfer_initiations WHERE id = $1",
                    &[&id],
                )
                .await
                .expect("initiation")
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        r.get::<_, String>(1),
                        r.get::<_, String>(2),
                    )
                })
        }
    };
    let big = "123456789012345678901234567890";
    let (s, amount, initial) = status(result["processed"].as_str().expect("id"))
        .await
        .expect("stored");
    assert_eq!(s, "PARTIALLY_REVERSED");
    assert_eq!(initial, big);
    assert_eq!(amount, "123456789012345678901234566890");
    assert!(
        status(result["deleted"].as_str().expect("id"))
            .await
            .is_none()
    );
    let (s, ..) = status(result["retried"].as_str().expect("id"))
        .await
        .expect("stored");
    assert_eq!(s, "PROCESSED");
    let (s, ..) = status(result["connectorsTransfer"].as_str().expect("id"))
        .await
        .expect("stored");
    assert_eq!(s, "PROCESSED");
    let linked: i64 = client
        .query_one(
            "SELECT count(*) FROM transfer_initiation_payments WHERE payment_id = $1",
            &[&result["paymentID"].as_str().expect("payment")],
        )
        .await
        .expect("links")
        .get(0);
    assert_eq!(linked, 1);
    // The filtered lists, against the rows as stored.
    let ids = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query(sql, &[])
                .await
                .expect("ids")
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<String>>()
        }
    };
    assert_eq!(result["unknownField"]["status"], 400);
    assert_eq!(
        result["queried"]["payouts"],
        json!(
            ids("SELECT id FROM transfer_initiations WHERE type = 'PAYOUT' AND amount >= 600")
                .await
        )
    );
    assert_eq!(
        result["queried"]["exact"],
        json!(
            ids("SELECT id FROM transfer_initiations
                 WHERE amount = 123456789012345678901234566890")
            .await
        )
    );
    assert_eq!(
        result["walked"],
        json!(
            ids(
                "SELECT id FROM transfer_initiations WHERE metadata->>'via' = 'sdk'
                 ORDER BY created_at, id"
            )
            .await
        )
    );
    // One instruction per sent initiation (4) and one reversal; nothing else.
    let mut outbox: Vec<String> = std::fs::read_dir(files.path().join("outbox"))
        .expect("outbox")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    outbox.sort();
    assert_eq!(outbox.len(), 5, "{outbox:?}");
    assert!(outbox.contains(&"sdk-r-1.reversal.json".to_string()));
    service.app.shutdown.cancel();
}
