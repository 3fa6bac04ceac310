//! tests/python/payments_v1_lists.py: the SDK's list calls with Formance's query language,
//! sort, a page size above the maximum and the balances limit, checked here against what the
//! database holds.

use serde_json::json;

use super::{SdkService, run_script, skipped};

#[actix_rt::test]
async fn formance_python_sdk_filters_sorts_and_pages_lists() {
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
    let run = run_script("payments_v1_lists.py", env).await;
    let result = run.result();
    assert_eq!(
        result["calls"],
        json!([
            "install_connector",
            "list_payments (page_size 1000, clamped)",
            "list_payments (query, sort createdAt:asc)",
            "list_payments (metadata, $or, $not, cursor)",
            "list_payments (sort updatedAt:asc, cursor)",
            "list_payments (unsupported field)",
            "list_accounts_payments (body query, page_size 500)",
            "list_accounts_payments (query parameter)",
            "get_account_balances (limit, sort, asset)",
            "get_account_balances (from, to)",
        ]),
        "{run}"
    );
    assert_eq!(result["clampedPageSize"], 100);
    let client = service.app.db.client().await;
    let ids = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
        rows.iter().map(|r| r.get::<_, String>(0)).collect()
    };

    // What the SDK got for the exact-amount query is what SQL says, in creation order.
    let expected = ids(client
        .query(
            "SELECT id FROM payments WHERE status = 'FAILED'
               AND amount > 123456789012345678901234567890123 ORDER BY created_at, id",
            &[],
        )
        .await
        .expect("query"));
    assert!(!expected.is_empty());
    assert_eq!(result["failedBig"], json!(expected), "{run}");

    let bucket_or_large: i64 = client
        .query_one(
            "SELECT count(*) FROM payments
             WHERE metadata @> '{\"bucket\": \"3\"}' OR NOT initial_amount <= 1100",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(result["bucketOrLarge"], bucket_or_large);

    // The updatedAt walk is the table in (updated_at, id) order.
    let walk = ids(client
        .query("SELECT id FROM payments ORDER BY updated_at, id", &[])
        .await
        .expect("walk"));
    assert_eq!(result["updatedAtWalk"], json!(walk));

    let unsupported = &result["unsupported"];
    assert_eq!(unsupported["status"], 400, "{unsupported}");
    assert_eq!(unsupported["errorCode"], "VALIDATION", "{unsupported}");
    assert!(
        unsupported["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"colour\"")),
        "{unsupported}"
    );

    // The from/to window holds the balances held in it, as stored.
    let account = result["accountID"].as_str().expect("accountID");
    let window: Vec<i64> = client
        .query(
            "SELECT balance::bigint FROM balances WHERE account_id = $1
               AND last_updated_at >= '2024-03-01T03:00:00Z'
               AND created_at < '2024-03-01T06:00:00Z' ORDER BY created_at",
            &[&account],
        )
        .await
        .expect("window")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!window.is_empty());
    assert_eq!(result["balancesWindow"], json!(window), "{run}");
}
