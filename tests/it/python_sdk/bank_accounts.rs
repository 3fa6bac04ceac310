//! tests/python/payments_v1_bank_accounts.py: the SDK's five bank account calls (create with
//! and without a connector, list, get, forward, update metadata), checked here against what
//! the service stored: the bank accounts (numbers sealed), their links, the EXTERNAL accounts
//! and DUMMY-PAY's files.

use serde_json::{Value, json};

use super::{SdkService, run_script, skipped};

#[actix_rt::test]
async fn formance_python_sdk_drives_bank_accounts() {
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
    let run = run_script("payments_v1_bank_accounts.py", env).await;
    let result = run.result();
    assert_eq!(
        result["calls"],
        json!([
            "install_connector",
            "create_bank_account",
            "create_bank_account (connectorID)",
            "get_bank_account",
            "list_bank_accounts",
            "list_bank_accounts (sort)",
            "forward_bank_account",
            "get_account_payments (related)",
            "forward_bank_account (again)",
            "update_bank_account_metadata",
            "update_bank_account_metadata (read token)",
        ]),
        "{run}"
    );

    let connector_id = result["connectorID"].as_str().expect("connectorID");
    let plain = result["plain"]["id"].as_str().expect("id");
    let at_once = result["atOnce"]["id"].as_str().expect("id");
    let client = service.app.db.client().await;
    let oldest: Vec<String> = client
        .query(
            "SELECT id::text FROM bank_accounts ORDER BY created_at, id",
            &[],
        )
        .await
        .expect("bank accounts")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(result["oldestFirst"], json!(oldest));

    // Stored: sealed numbers, merged metadata, the connector of the forward.
    let row = client
        .query_one(
            "SELECT name, country, swift_bic_code, account_number, iban, metadata, connector_id
             FROM bank_accounts WHERE id = $1::text::uuid",
            &[&plain],
        )
        .await
        .expect("bank account");
    assert_eq!(row.get::<_, String>(0), "sdk payee");
    assert_eq!(row.get::<_, String>(1), "FR");
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("AGRIFRPP"));
    for i in [3, 4] {
        let sealed: Value = row.get(i);
        assert!(sealed["$encrypted"]["ciphertext"].is_string(), "{sealed}");
        assert!(!sealed.to_string().contains("1234567890"), "{sealed}");
    }
    assert_eq!(
        row.get::<_, Value>(5),
        json!({"owner": "sdk", "tier": "gold"})
    );
    assert_eq!(
        row.get::<_, Option<String>>(6).as_deref(),
        Some(connector_id)
    );

    // The links the SDK saw are the ones stored, to EXTERNAL accounts of the connector.
    let links: Vec<(String, String, String, String)> = client
        .query(
            "SELECT r.bank_account_id::text, r.id::text, r.account_id, a.type
             FROM bank_account_related_accounts r JOIN accounts a ON a.id = r.account_id
             WHERE r.connector_id = $1 ORDER BY r.created_at",
            &[&connector_id],
        )
        .await
        .expect("links")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let external = "EXTERNAL".to_string();
    assert_eq!(
        links,
        vec![
            (
                at_once.to_string(),
                links[0].1.clone(),
                result["atOnce"]["accountID"]
                    .as_str()
                    .expect("id")
                    .to_string(),
                external.clone(),
            ),
            (
                plain.to_string(),
                result["forwarded"]["relatedID"]
                    .as_str()
                    .expect("id")
                    .to_string(),
                result["forwarded"]["accountID"]
                    .as_str()
                    .expect("id")
                    .to_string(),
                external,
            ),
        ]
    );

    // DUMMY-PAY's "provider" side: one file per forwarded bank account, numbers in clear.
    for id in [plain, at_once] {
        let path = files
            .path()
            .join("bank-accounts")
            .join(format!("{id}.json"));
        let file: Value = serde_json::from_slice(&std::fs::read(&path).expect("bank account file"))
            .expect("json");
        assert_eq!(file["id"], id);
    }
    let file: Value = serde_json::from_slice(
        &std::fs::read(
            files
                .path()
                .join("bank-accounts")
                .join(format!("{plain}.json")),
        )
        .expect("file"),
    )
    .expect("json");
    assert_eq!(file["iban"], "FR7630006000011234567890189");
    assert_eq!(result["forwardedTwice"]["errorCode"], "VALIDATION");
    service.app.shutdown.cancel();
}
