//! Bank accounts through HTTP: create (with and without a connector), list with cursors, get
//! (numbers masked as Formance v1), forward to DUMMY-PAY (file, EXTERNAL account, related
//! account), a connector without the capability, unknown connectors, metadata, and the
//! account number and IBAN never stored in clear.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::Api;
use crate::dummypay::{drop_file, payment};
use crate::helpers::{TestDb, eventually};

/// In every IBAN and account number below; alphanumeric, so no encoding hides it from a scan.
const SENTINEL: &str = "7Q9X4K";

fn iban() -> String {
    format!("FR76300060000112{SENTINEL}89")
}

fn account_number() -> String {
    format!("99{SENTINEL}123")
}

async fn install_dummypay(api: &Api, dir: &std::path::Path) -> String {
    let reply = api
        .post(
            "/connectors/dummy-pay",
            &json!({"name": "bank", "directory": dir.to_str(), "filePollingPeriod": "100ms"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["data"]["connectorID"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn create(api: &Api, body: Value) -> Value {
    let reply = api.post("/bank-accounts", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"].clone()
}

fn full_request(name: &str) -> Value {
    json!({
        "name": name, "country": "FR", "iban": iban(), "accountNumber": account_number(),
        "swiftBicCode": "AGRIFRPP", "metadata": {"owner": "alice"},
    })
}

#[actix_rt::test]
async fn create_get_list_and_patch_metadata_without_a_connector() {
    let api = Api::start_with_dummypay().await;
    let created = create(&api, full_request("main")).await;
    let id = created["id"].as_str().expect("id").to_string();
    // Formance v1's Offuscate: IBAN 4 + stars + 4, account number 2 + stars + 3.
    let masked_iban = format!("FR76{}4K89", "*".repeat(iban().len() - 8));
    let masked_number = format!("99{}123", "*".repeat(account_number().len() - 5));
    assert_eq!(created["iban"], masked_iban.as_str(), "{created}");
    assert_eq!(created["accountNumber"], masked_number.as_str());
    assert_eq!(created["swiftBicCode"], "AGRIFRPP");
    assert_eq!(created["name"], "main");
    assert_eq!(created["country"], "FR");
    assert_eq!(created["metadata"], json!({"owner": "alice"}));
    assert_eq!(created["connectorID"], "");
    assert!(created.get("relatedAccounts").is_none(), "{created}");

    let got = api.get(&format!("/bank-accounts/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["data"], created);

    // Lists leave the numbers out, as Formance v1's.
    let list = api.get("/bank-accounts").await;
    assert_eq!(list.status, 200);
    let row = &list.body["cursor"]["data"][0];
    assert_eq!(row["id"], id.as_str());
    assert!(
        row.get("iban").is_none() && row.get("accountNumber").is_none(),
        "{row}"
    );

    // Metadata is merged.
    let reply = api
        .patch(
            &format!("/bank-accounts/{id}/metadata"),
            &json!({"metadata": {"tier": "gold"}}),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let got = api.get(&format!("/bank-accounts/{id}")).await;
    assert_eq!(
        got.body["data"]["metadata"],
        json!({"owner": "alice", "tier": "gold"})
    );
    api.patch(
        &format!("/bank-accounts/{id}/metadata"),
        &json!({"metadata": {}}),
    )
    .await
    .error(400, "VALIDATION");
    api.patch(
        &format!("/bank-accounts/{id}/metadata"),
        &json!({"metadata": {"n": 1}}),
    )
    .await
    .error(400, "VALIDATION");
    let missing = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
    api.patch(
        &format!("/bank-accounts/{missing}/metadata"),
        &json!({"metadata": {"a": "b"}}),
    )
    .await
    .error(404, "NOT_FOUND");
    api.get(&format!("/bank-accounts/{missing}"))
        .await
        .error(404, "NOT_FOUND");
    api.get("/bank-accounts/not-a-uuid")
        .await
        .error(400, "INVALID_ID");

    // Formance's checks, each naming the field.
    for (body, field) in [
        (
            json!({"name": "n", "country": "FR"}),
            "accountNumber or iban",
        ),
        (json!({"country": "FR", "iban": iban()}), "name"),
        (json!({"name": "n", "iban": iban()}), "country"),
        (
            json!({"name": "n", "country": "FR", "iban": "FR76"}),
            "iban",
        ),
    ] {
        let message = api
            .post("/bank-accounts", &body)
            .await
            .error(400, "VALIDATION");
        assert!(message.contains(field), "{field}: {message}");
    }
}

#[actix_rt::test]
async fn forwarding_to_dummypay_writes_the_file_and_links_an_external_account() {
    let api = Api::start_with_dummypay().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let connector = install_dummypay(&api, dir.path()).await;
    let created = create(&api, full_request("payee")).await;
    let id = created["id"].as_str().expect("id").to_string();

    let reply = api
        .post(
            &format!("/bank-accounts/{id}/forward"),
            &json!({"connectorID": connector}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let data = &reply.body["data"];
    let related = data["relatedAccounts"].as_array().expect("related");
    assert_eq!(related.len(), 1, "{data}");
    assert_eq!(related[0]["connectorID"], connector.as_str());
    assert_eq!(related[0]["provider"], "DUMMY-PAY");
    let account_id = related[0]["accountID"].as_str().expect("accountID");
    assert_eq!(data["connectorID"], connector.as_str());
    assert_eq!(data["accountID"], account_id);
    assert_eq!(data["provider"], "DUMMY-PAY");

    // The "provider" got the bank account in clear, in its own file.
    let file: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("bank-accounts").join(format!("{id}.json")))
            .expect("bank account file"),
    )
    .expect("json");
    assert_eq!(file["iban"], iban().as_str());
    assert_eq!(file["accountNumber"], account_number().as_str());
    assert_eq!(file["id"], id.as_str());

    // The linked account is EXTERNAL, named after the bank account, and shows no number.
    let account = api.get(&format!("/accounts/{account_id}")).await;
    assert_eq!(account.status, 200, "{}", account.body);
    assert_eq!(account.body["data"]["type"], "EXTERNAL");
    assert_eq!(account.body["data"]["accountName"], "payee");
    assert_eq!(account.body["data"]["reference"], id.as_str());
    assert!(!account.body.to_string().contains(SENTINEL));

    // The same connector again: refused, as Formance does.
    let message = api
        .post(
            &format!("/bank-accounts/{id}/forward"),
            &json!({"connectorID": connector}),
        )
        .await
        .error(400, "VALIDATION");
    assert!(message.contains("already forwarded"), "{message}");

    // The bank account file is never read as a payment: a payment file dropped after it is
    // ingested (so the listing ran with both), and it is the only payment.
    drop_file(dir.path(), "p1.json", &payment("p1", "100", "SUCCEEDED"));
    eventually("the payment file", Duration::from_secs(20), || async {
        api.get("/payments").await.body["cursor"]["data"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    })
    .await;
    let payments = api.get("/payments").await.body;
    let refs: Vec<&Value> = payments["cursor"]["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| &p["reference"])
        .collect();
    assert_eq!(refs, [&json!("p1")], "{payments}");
    let tasks = api
        .get(&format!("/connectors/dummy-pay/{connector}/tasks"))
        .await;
    assert!(
        !tasks
            .body
            .to_string()
            .contains(&format!("Ingest file {id}")),
        "{}",
        tasks.body
    );

    // A reset deletes the connector's accounts, and their links with them; the bank account
    // and its file stay.
    let reply = api
        .post_empty(&format!("/connectors/dummy-pay/{connector}/reset"))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let got = api.get(&format!("/bank-accounts/{id}")).await;
    assert_eq!(got.status, 200);
    assert!(
        got.body["data"].get("relatedAccounts").is_none(),
        "{}",
        got.body
    );
    let links: i64 = api
        .app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM bank_account_related_accounts", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(links, 0);
    assert!(
        dir.path()
            .join("bank-accounts")
            .join(format!("{id}.json"))
            .is_file()
    );
}

#[actix_rt::test]
async fn creating_with_a_connector_forwards_at_once() {
    let api = Api::start_with_dummypay().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let connector = install_dummypay(&api, dir.path()).await;
    let mut body = json!({"name": "n", "country": "DE", "accountNumber": account_number()});
    body["connectorID"] = json!(connector);
    let created = create(&api, body).await;
    let id = created["id"].as_str().expect("id");
    assert_eq!(
        created["relatedAccounts"][0]["connectorID"],
        connector.as_str()
    );
    assert!(created.get("iban").is_none(), "{created}");
    assert!(
        dir.path()
            .join("bank-accounts")
            .join(format!("{id}.json"))
            .is_file()
    );
    let got = api.get(&format!("/bank-accounts/{id}")).await;
    assert_eq!(got.body["data"], created);
}

#[actix_rt::test]
async fn a_connector_without_the_capability_and_unknown_connectors_are_refused() {
    let api = Api::start_with_dummypay().await;
    let test = api.install("plain").await;
    let created = create(&api, full_request("x")).await;
    let id = created["id"].as_str().expect("id");

    let message = api
        .post(
            &format!("/bank-accounts/{id}/forward"),
            &json!({"connectorID": test}),
        )
        .await
        .error(400, "CONNECTOR_CAPABILITY_NOT_SUPPORTED");
    assert!(message.contains(&test), "{message}");
    let got = api.get(&format!("/bank-accounts/{id}")).await;
    assert_eq!(got.body["data"]["connectorID"], "", "{}", got.body);

    // Refused before anything is stored.
    let mut body = full_request("y");
    body["connectorID"] = json!(test);
    api.post("/bank-accounts", &body)
        .await
        .error(400, "CONNECTOR_CAPABILITY_NOT_SUPPORTED");
    // A well-formed id of no installed connector: 400 VALIDATION, as Formance v1.
    let unknown = tributary::ids::ConnectorKey {
        provider: "DUMMY-PAY".into(),
        reference: uuid::Uuid::new_v4(),
    }
    .id();
    body["connectorID"] = json!(unknown);
    let message = api
        .post("/bank-accounts", &body)
        .await
        .error(400, "VALIDATION");
    assert!(message.contains("not installed"), "{message}");
    let message = api
        .post(
            &format!("/bank-accounts/{id}/forward"),
            &json!({"connectorID": unknown}),
        )
        .await
        .error(400, "VALIDATION");
    assert!(message.contains("not installed"), "{message}");
    body["connectorID"] = json!("garbage");
    api.post("/bank-accounts", &body)
        .await
        .error(400, "VALIDATION");
    api.post(&format!("/bank-accounts/{id}/forward"), &json!({}))
        .await
        .error(400, "VALIDATION");
    let list = api.get("/bank-accounts").await;
    assert_eq!(
        list.body["cursor"]["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        list.body
    );
}

#[actix_rt::test]
async fn the_list_pages_with_cursors_both_ways() {
    let api = Api::start_with_dummypay().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let created = create(
            &api,
            json!({"name": format!("b{i}"), "country": "FR", "iban": iban()}),
        )
        .await;
        ids.push(created["id"].as_str().expect("id").to_string());
    }
    let mut seen = Vec::new();
    let mut page = api.get("/bank-accounts?pageSize=2").await.body;
    let mut pages = vec![page.clone()];
    loop {
        for row in page["cursor"]["data"].as_array().expect("data") {
            seen.push(row["id"].as_str().expect("id").to_string());
        }
        let Some(next) = page["cursor"]["next"].as_str() else {
            break;
        };
        assert_eq!(page["cursor"]["hasMore"], true);
        page = api.get(&format!("/bank-accounts?cursor={next}")).await.body;
        pages.push(page.clone());
    }
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[0]["cursor"]["pageSize"], 2);
    ids.reverse(); // newest first
    assert_eq!(seen, ids);
    let previous = pages[1]["cursor"]["previous"].as_str().expect("previous");
    let back = api
        .get(&format!("/bank-accounts?cursor={previous}"))
        .await
        .body;
    assert_eq!(back["cursor"]["data"], pages[0]["cursor"]["data"]);
    let asc = api
        .get("/bank-accounts?pageSize=5&sort=createdAt:asc")
        .await
        .body;
    let asc: Vec<&str> = asc["cursor"]["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(
        asc,
        ids.iter().rev().map(String::as_str).collect::<Vec<_>>()
    );
}

/// Every column of every table, as text: none holds the sentinel.
async fn assert_never_in_clear(db: &TestDb, when: &str) {
    let client = db.client().await;
    let tables: Vec<String> = client
        .query(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
             FROM information_schema.tables
             WHERE table_type = 'BASE TABLE'
               AND table_schema NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let names: BTreeSet<&str> = tables
        .iter()
        .map(|t| t.rsplit('.').next().unwrap_or(""))
        .collect();
    assert!(
        names.contains("bank_accounts") && names.contains("bank_account_related_accounts"),
        "{tables:?}"
    );
    let mut rows = 0;
    for table in &tables {
        for row in client
            .query(&format!("SELECT t::text FROM {table} t"), &[])
            .await
            .expect("scan")
        {
            let text: String = row.get(0);
            rows += 1;
            assert!(
                !text.contains(SENTINEL),
                "{when}: a number in clear in {table}: {text}"
            );
        }
    }
    assert!(rows > 0, "{when}: nothing scanned");
}

#[actix_rt::test]
async fn account_numbers_and_ibans_are_never_stored_in_clear_and_rotate_with_the_key() {
    // A key file of this test's own, so rotating it touches no other test.
    let keys = tempfile::tempdir().expect("tempdir");
    let key_file = keys.path().join("encryption.key");
    tributary::secrets::keyring::create_key_file(&key_file).expect("key file");
    let mut settings = crate::helpers::test_settings();
    settings.encryption.key_file = key_file.clone();
    let app = crate::helpers::spawn_app_configured(
        TestDb::new().await,
        tributary::connectors::registry(&settings),
        &settings,
    )
    .await;
    let http = awc::Client::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut reply = http
        .post(format!("{}/connectors/dummy-pay", app.base))
        .send_json(&json!({"name": "bank", "directory": dir.path().to_str()}))
        .await
        .expect("install");
    let body: Value = reply.json().await.expect("json");
    let connector = body["data"]["connectorID"]
        .as_str()
        .expect("id")
        .to_string();
    let mut request = full_request("secret");
    request["connectorID"] = json!(connector);
    let mut reply = http
        .post(format!("{}/bank-accounts", app.base))
        .send_json(&request)
        .await
        .expect("create");
    assert_eq!(reply.status().as_u16(), 200);
    let created: Value = reply.json().await.expect("json");
    let id = created["data"]["id"].as_str().expect("id").to_string();
    assert_never_in_clear(&app.db, "after create and forward").await;

    // Stored sealed, under the current key.
    let client = app.db.client().await;
    let row = client
        .query_one(
            "SELECT account_number, iban FROM bank_accounts WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .expect("row");
    let old_kid = tributary::secrets::Keyring::parse(
        &std::fs::read_to_string(&key_file).expect("keys"),
        "test",
    )
    .expect("keyring")
    .current()
    .0
    .to_string();
    for i in 0..2 {
        let stored: Value = row.get(i);
        assert_eq!(stored["$encrypted"]["kid"], old_kid.as_str(), "{stored}");
    }

    // rotate-key's pass: a new key, every bank account value sealed again under it.
    let new_kid = tributary::secrets::keyring::add_key(&key_file).expect("add key");
    let vault = tributary::secrets::Vault::from_settings(&key_file, keys.path()).expect("vault");
    let done = tributary::secrets::rotate::reencrypt(
        &app.db.pool(),
        &vault,
        &tributary::connectors::registry(&settings),
    )
    .await
    .expect("rotate");
    assert_eq!((done.bank_accounts, done.bank_accounts_resealed), (1, 1));
    assert_eq!(
        done.kids_in_use.keys().collect::<Vec<_>>(),
        [&new_kid],
        "{done:?}"
    );
    assert_never_in_clear(&app.db, "after rotation").await;
    // The running service reads the values under the new key (it re-reads the key file).
    let mut reply = http
        .get(format!("{}/bank-accounts/{id}", app.base))
        .send()
        .await
        .expect("get");
    let got: Value = reply.json().await.expect("json");
    assert_eq!(got["data"]["iban"], created["data"]["iban"], "{got}");
    assert_eq!(
        got["data"]["accountNumber"],
        created["data"]["accountNumber"]
    );
    // A second pass has nothing left to do.
    let again = tributary::secrets::rotate::reencrypt(
        &app.db.pool(),
        &vault,
        &tributary::connectors::registry(&settings),
    )
    .await
    .expect("rotate");
    assert_eq!(again.bank_accounts_resealed, 0);

    // A value moved to another bank account does not decrypt: answered 500, never shown.
    let other = {
        let mut body = full_request("other");
        body["iban"] = json!("DE89370400440532013000");
        let mut reply = http
            .post(format!("{}/bank-accounts", app.base))
            .send_json(&body)
            .await
            .expect("create");
        let v: Value = reply.json().await.expect("json");
        v["data"]["id"].as_str().expect("id").to_string()
    };
    client
        .execute(
            "UPDATE bank_accounts SET iban = (SELECT iban FROM bank_accounts WHERE id = $1::text::uuid)
             WHERE id = $2::text::uuid",
            &[&id, &other],
        )
        .await
        .expect("move");
    let mut reply = http
        .get(format!("{}/bank-accounts/{other}", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(reply.status().as_u16(), 500);
    let body: Value = reply.json().await.expect("json");
    assert!(!body.to_string().contains(SENTINEL), "{body}");
    app.shutdown.cancel();
}
