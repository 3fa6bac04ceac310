//! tests/python/payments_v1_pools.py: the SDK's create_account, create_payment and every pool
//! call, checked here against what the service stored.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{SdkService, run_script, skipped};

#[actix_rt::test]
async fn formance_python_sdk_drives_pools_and_manual_creation() {
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
    let run = run_script("payments_v1_pools.py", env).await;
    let result = run.result();
    assert_eq!(
        result["calls"],
        json!([
            "install_connector",
            "create_account",
            "create_payment",
            "create_pool",
            "get_pool",
            "list_pools",
            "get_account_payments",
            "get_pool_balances",
            "get_pool_balances_latest",
            "add_account_to_pool",
            "remove_account_from_pool",
            "update_pool_query",
            "delete_pool",
        ]),
        "{run}"
    );
    let client = service.app.db.client().await;

    // The accounts the SDK created are stored under the connector, with the request as raw.
    let connector_id = result["connectorID"].as_str().expect("connectorID");
    let accounts: BTreeMap<String, String> =
        serde_json::from_value(result["accounts"].clone()).expect("accounts");
    for (reference, id) in &accounts {
        let row = client
            .query_one(
                "SELECT connector_id, reference, account_name, raw::text FROM accounts WHERE id = $1",
                &[id],
            )
            .await
            .expect("account row");
        assert_eq!(row.get::<_, String>(0), connector_id);
        assert_eq!(&row.get::<_, String>(1), reference);
        assert_eq!(row.get::<_, String>(2), format!("Account {reference}"));
        let raw: Value = serde_json::from_str(&row.get::<_, String>(3)).expect("raw");
        assert_eq!(raw["reference"], json!(reference));
    }

    // The payment: one row, the exact amount, the two adjustments the SDK saw.
    let payment = result["paymentID"].as_str().expect("paymentID");
    let (status, amount, initial): (String, String, String) = client
        .query_one(
            "SELECT status, amount::text, initial_amount::text FROM payments WHERE id = $1",
            &[&payment],
        )
        .await
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .expect("payment row");
    assert_eq!(status, "SUCCEEDED");
    assert_eq!(amount, "123456789012345678901234567890");
    assert_eq!(initial, amount);
    let adjustments: Vec<String> = client
        .query(
            "SELECT status FROM payment_adjustments WHERE payment_id = $1 ORDER BY id",
            &[&payment],
        )
        .await
        .expect("adjustments")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(adjustments, vec!["PENDING", "SUCCEEDED"]);

    // The pool balances the SDK read are the stored balances' exact sums.
    let sum = |refs: &[&str]| {
        let ids: Vec<String> = refs.iter().map(|r| accounts[*r].clone()).collect();
        let client = &client;
        async move {
            client
                .query(
                    "SELECT asset, sum(balance)::text FROM balances WHERE account_id = ANY($1) \
                     GROUP BY asset ORDER BY asset",
                    &[&ids],
                )
                .await
                .expect("sums")
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                .collect::<Vec<_>>()
        }
    };
    let as_text = |v: &Value| -> Vec<(String, String)> {
        v.as_object()
            .expect("balances")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("amount as text").to_string()))
            .collect()
    };
    assert_eq!(
        as_text(&result["balancesAt"]),
        sum(&["sdk-pool-a", "sdk-pool-b"]).await
    );
    assert_eq!(
        as_text(&result["balancesWithC"]),
        sum(&["sdk-pool-a", "sdk-pool-b", "sdk-pool-c"]).await
    );
    assert_eq!(
        result["balancesAt"]["EUR/2"], "10000000000000000000000005",
        "the SDK read the sum exactly"
    );

    // update_pool_query's effect, through get_pool and get_pool_balances_latest: the members
    // are every account of the connector (the late one too) and the balances are their
    // stored balances' exact sums.
    let late = result["lateAccount"]
        .as_str()
        .expect("lateAccount")
        .to_string();
    let mut members: Vec<String> = accounts.values().cloned().collect();
    members.push(late.clone());
    members.sort();
    let stored: Vec<String> = client
        .query(
            "SELECT id FROM accounts WHERE connector_id = $1 ORDER BY id",
            &[&connector_id],
        )
        .await
        .expect("accounts")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored, members);
    let mut seen: Vec<String> =
        serde_json::from_value(result["poolBeforeDelete"]["accounts"].clone()).expect("accounts");
    seen.sort();
    assert_eq!(seen, members);
    assert_eq!(result["poolBeforeDelete"]["type"], "DYNAMIC");
    assert_eq!(
        as_text(&result["balancesDynamic"]),
        sum(&["sdk-pool-a", "sdk-pool-b", "sdk-pool-c"]).await
    );
    let all: Vec<(String, String)> = client
        .query(
            "SELECT asset, sum(balance)::text FROM balances WHERE account_id = ANY($1) \
             GROUP BY asset ORDER BY asset",
            &[&members],
        )
        .await
        .expect("sums")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(as_text(&result["balancesLate"]), all);
    assert_eq!(
        result["balancesLate"]["EUR/2"],
        "20000000000000000000000105"
    );
    // The refused query: a 400 VALIDATION naming the field.
    assert_eq!(result["badQuery"]["status"], 400, "{run}");
    assert_eq!(result["badQuery"]["errorCode"], "VALIDATION");
    assert!(
        result["badQueryMessage"]
            .as_str()
            .is_some_and(|m| m.contains("\"colour\"")),
        "{}",
        result["badQueryMessage"]
    );
    let left: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM pools) + (SELECT count(*) FROM pool_accounts)",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 0);
    let kept: i64 = client
        .query_one("SELECT count(*) FROM accounts", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(kept, 4);
    service.app.shutdown.cancel();
}
