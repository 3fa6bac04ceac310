//! The events of the API's writes, through HTTP: transfer initiations (every change, the
//! related payment, the deletion; a refused transition none), bank accounts (create, the
//! forward's linked account, metadata; numbers masked, never in clear), pools (create, members,
//! query, delete; a no-op none), and manual payments and accounts (the ingest path).

use serde_json::{Value, json};
use tributary::storage::queries::events::{self as outbox, StoredEvent};

use crate::api::Api;
use crate::transfers::{Setup, call};

async fn events(pool: &tributary::storage::Pool) -> Vec<StoredEvent> {
    outbox::after(pool, 0, 100_000)
        .await
        .expect("read the outbox")
        .events
}

fn of_type<'a>(events: &'a [StoredEvent], event_type: &str) -> Vec<&'a StoredEvent> {
    events
        .iter()
        .filter(|e| e.event_type == event_type)
        .collect()
}

fn payload(event: &StoredEvent) -> Value {
    let envelope: Value = serde_json::from_str(&event.envelope).expect("JSON envelope");
    assert_eq!(envelope["app"], "payments");
    assert_eq!(envelope["version"], "v1");
    assert_eq!(envelope["type"], event.event_type.as_str());
    envelope["payload"].clone()
}

/// The sequence numbers of `connector_id`'s events, in outbox order: 1, 2, 3 …
fn assert_numbered(events: &[StoredEvent], connector_id: &str) {
    let sequences: Vec<i64> = events
        .iter()
        .filter(|e| e.connector_id == connector_id)
        .map(|e| e.sequence)
        .collect();
    let expected: Vec<i64> = (1..=sequences.len() as i64).collect();
    assert_eq!(sequences, expected, "{connector_id}'s sequence");
}

#[actix_rt::test]
async fn a_transfer_initiation_tells_each_change_and_a_refused_transition_nothing() {
    let s = Setup::start().await;
    let pool = s.app.db.pool();
    let (code, body) = s.create(s.initiation("w-1", "PAYOUT", 500, false)).await;
    assert_eq!(code, 200, "{body}");
    let id = body["data"]["id"].as_str().expect("id").to_string();
    let saved = of_type(&events(&pool).await, "SAVED_TRANSFER_INITIATION")
        .into_iter()
        .map(payload)
        .collect::<Vec<_>>();
    assert_eq!(saved.len(), 1);
    let created = &saved[0];
    assert_eq!(created["id"], id.as_str());
    assert_eq!(created["connectorId"], s.connector_id.as_str());
    assert_eq!(created["provider"], "DUMMY-PAY");
    assert_eq!(created["type"], "PAYOUT");
    assert_eq!(created["amount"], 500);
    assert_eq!(created["asset"], "EUR/2");
    assert_eq!(created["sourceAccountId"], s.internal.as_str());
    assert_eq!(created["destinationAccountId"], s.external.as_str());
    assert_eq!(created["description"], "test");
    assert_eq!(created["scheduledAt"], "2020-01-01T00:00:00Z");
    assert_eq!(created["status"], "WAITING_FOR_VALIDATION");
    assert_eq!(created["attempts"], 1);
    assert_eq!(created["error"], "");
    assert_eq!(created["relatedPayments"], json!([]));

    // Refused: nothing changed, nothing told.
    let before = events(&pool).await.len();
    let (code, _) = s.post(&id, "retry", None).await;
    assert_eq!(code, 400);
    let (code, _) = s
        .post(&id, "status", Some(json!({"status": "PROCESSED"})))
        .await;
    assert_eq!(code, 400);
    assert_eq!(
        events(&pool).await.len(),
        before,
        "a refusal writes no event"
    );

    let (code, _) = s
        .post(&id, "status", Some(json!({"status": "REJECTED"})))
        .await;
    assert_eq!(code, 204);
    let (code, _) = call(
        &s.http,
        s.http.delete(s.url(&format!("/transfer-initiations/{id}"))),
        None,
    )
    .await;
    assert_eq!(code, 204);
    let all = events(&pool).await;
    let types: Vec<&str> = all[before..]
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        ["SAVED_TRANSFER_INITIATION", "DELETED_TRANSFER_INITIATION"]
    );
    let rejected = payload(&all[before]);
    assert_eq!(rejected["status"], "REJECTED");
    assert_eq!(rejected["attempts"], 2);
    let deleted = payload(&all[before + 1]);
    assert_eq!(deleted["id"], id.as_str());
    assert!(deleted["createdAt"].is_string(), "{deleted}");
    assert!(
        all[before..]
            .iter()
            .all(|e| e.connector_id == s.connector_id),
        "in the initiation's connector's sequence"
    );
    assert_numbered(&all, &s.connector_id);
}

#[actix_rt::test]
async fn a_sent_transfer_tells_each_status_and_its_related_payment() {
    let s = Setup::start().await;
    let pool = s.app.db.pool();
    let (code, body) = s.create(s.initiation("t-1", "TRANSFER", 1234, true)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["status"], "PROCESSED", "{body}");
    let all = events(&pool).await;
    let saved: Vec<Value> = of_type(&all, "SAVED_TRANSFER_INITIATION")
        .into_iter()
        .map(payload)
        .collect();
    let statuses: Vec<&str> = saved
        .iter()
        .map(|p| p["status"].as_str().expect("status"))
        .collect();
    assert_eq!(
        statuses,
        [
            "WAITING_FOR_VALIDATION",
            "VALIDATED",
            "PROCESSING",
            "PROCESSED"
        ]
    );
    let attempts: Vec<i64> = saved
        .iter()
        .map(|p| p["attempts"].as_i64().expect("attempts"))
        .collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
    let last = saved.last().expect("the last event");
    let related = last["relatedPayments"].as_array().expect("relatedPayments");
    assert_eq!(related.len(), 1, "{last}");
    let payment_id = body["data"]["relatedPayments"][0]["paymentID"]
        .as_str()
        .expect("payment id");
    assert_eq!(related[0]["paymentId"], payment_id);
    assert_eq!(related[0]["transferInitiationId"], last["id"]);
    assert_eq!(related[0]["status"], "SUCCEEDED");
    // The payment the connector reported has its own event, before the initiation's last.
    let payment = all
        .iter()
        .position(|e| e.event_type == "SAVED_PAYMENT" && payload(e)["id"] == payment_id)
        .expect("the payment's event");
    let processed = all
        .iter()
        .rposition(|e| e.event_type == "SAVED_TRANSFER_INITIATION")
        .expect("processed");
    assert!(payment < processed);
    assert_numbered(&all, &s.connector_id);
}

const SENTINEL: &str = "7Q9X4K";

#[actix_rt::test]
async fn a_bank_account_tells_its_creation_forward_and_metadata_numbers_masked() {
    let api = Api::start_with_dummypay().await;
    let pool = api.app.db.pool();
    let dir = tempfile::tempdir().expect("tempdir");
    let reply = api
        .post(
            "/connectors/dummy-pay",
            &json!({"name": "bank", "directory": dir.path().to_str(),
                    "filePollingPeriod": "100ms"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let connector = reply.body["data"]["connectorID"]
        .as_str()
        .expect("id")
        .to_string();
    let iban = format!("FR76300060000112{SENTINEL}89");
    let number = format!("99{SENTINEL}123");
    let reply = api
        .post(
            "/bank-accounts",
            &json!({"name": "payee", "country": "FR", "iban": iban, "accountNumber": number,
                    "swiftBicCode": "AGRIFRPP"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let shown = reply.body["data"].clone();
    let id = shown["id"].as_str().expect("id").to_string();
    let reply = api
        .post(
            &format!("/bank-accounts/{id}/forward"),
            &json!({"connectorID": connector}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let account_id = reply.body["data"]["relatedAccounts"][0]["accountID"]
        .as_str()
        .expect("accountID")
        .to_string();
    let reply = api
        .patch(
            &format!("/bank-accounts/{id}/metadata"),
            &json!({"metadata": {"owner": "bob"}}),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    // The same values again: nothing changes, no event.
    let reply = api
        .patch(
            &format!("/bank-accounts/{id}/metadata"),
            &json!({"metadata": {"owner": "bob"}}),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    // Metadata of an unknown bank account: 404, no event.
    let reply = api
        .patch(
            &format!("/bank-accounts/{}/metadata", uuid::Uuid::new_v4()),
            &json!({"metadata": {"owner": "bob"}}),
        )
        .await;
    assert_eq!(reply.status, 404, "{}", reply.body);

    let all = events(&pool).await;
    let saved = of_type(&all, "SAVED_BANK_ACCOUNT");
    assert_eq!(saved.len(), 3, "create, the forward's link, metadata");
    assert!(saved.iter().all(|e| e.connector_id.is_empty()));
    let sequences: Vec<i64> = saved.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [1, 2, 3], "the sequence of no connector");
    let payloads: Vec<Value> = saved.iter().map(|e| payload(e)).collect();
    for p in &payloads {
        assert_eq!(p["id"], id.as_str());
        assert_eq!(p["name"], "payee");
        assert_eq!(p["country"], "FR");
        assert_eq!(p["swiftBicCode"], "AGRIFRPP");
        // Masked exactly as the API shows them.
        assert_eq!(p["iban"], shown["iban"], "{p}");
        assert_eq!(p["accountNumber"], shown["accountNumber"], "{p}");
    }
    assert!(
        payloads[0]["adjustments"].is_null(),
        "no related account yet"
    );
    let related = &payloads[1]["adjustments"];
    assert_eq!(related.as_array().map(Vec::len), Some(1), "{related}");
    assert_eq!(related[0]["accountID"], account_id.as_str());
    assert_eq!(related[0]["connectorID"], connector.as_str());
    assert_eq!(related[0]["provider"], "DUMMY-PAY");
    assert_eq!(payloads[2]["adjustments"], *related);
    // Never in clear, anywhere in the outbox: neither in its rows nor in what is published.
    let client = api.app.db.client().await;
    let rows: String = client
        .query_one(
            "SELECT COALESCE(string_agg(e::text, ''), '') FROM events e",
            &[],
        )
        .await
        .expect("dump")
        .get(0);
    assert!(!rows.contains(SENTINEL), "a number in clear in the outbox");
    let published: String = events(&pool)
        .await
        .into_iter()
        .map(|e| e.envelope)
        .collect();
    assert!(
        !published.contains(SENTINEL),
        "a number in clear in an event"
    );
}

#[actix_rt::test]
async fn a_pool_tells_its_creation_members_query_and_deletion() {
    let api = Api::start().await;
    let pool = api.app.db.pool();
    let connector = api.install("pools").await;
    let mut accounts = Vec::new();
    for reference in ["acc-1", "acc-2"] {
        let reply = api
            .post(
                "/accounts",
                &json!({"reference": reference, "connectorID": connector,
                        "createdAt": "2026-01-01T00:00:00Z", "type": "INTERNAL"}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        accounts.push(reply.body["data"]["id"].as_str().expect("id").to_string());
    }
    let reply = api
        .post(
            "/pools",
            &json!({"name": "treasury", "accountIDs": [accounts[0]]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let id = reply.body["data"]["id"].as_str().expect("id").to_string();
    let before = events(&pool).await.len();
    let add = |account: String| {
        let api = &api;
        let path = format!("/pools/{id}/accounts");
        async move { api.post(&path, &json!({"accountID": account})).await.status }
    };
    assert_eq!(add(accounts[1].clone()).await, 204);
    // Already a member, not an account: nothing changes, no event.
    assert_eq!(add(accounts[1].clone()).await, 204);
    assert!(add("nope".into()).await >= 400);
    let reply = api
        .delete(&format!("/pools/{id}/accounts/{}", accounts[0]))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let reply = api
        .patch(
            &format!("/pools/{id}/query"),
            &json!({"query": {"$match": {"type": "INTERNAL"}}}),
        )
        .await;
    assert!(reply.status < 300, "{} {}", reply.status, reply.body);
    // The same query again: nothing changes, no event.
    let reply = api
        .patch(
            &format!("/pools/{id}/query"),
            &json!({"query": {"$match": {"type": "INTERNAL"}}}),
        )
        .await;
    assert!(reply.status < 300, "{} {}", reply.status, reply.body);
    let reply = api.delete(&format!("/pools/{id}")).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let reply = api.delete(&format!("/pools/{id}")).await;
    assert_eq!(reply.status, 404, "{}", reply.body);

    let all = events(&pool).await;
    let mine: Vec<&StoredEvent> = all.iter().filter(|e| e.connector_id.is_empty()).collect();
    let types: Vec<&str> = mine.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "SAVED_POOL",
            "SAVED_POOL",
            "SAVED_POOL",
            "SAVED_POOL",
            "DELETED_POOL"
        ]
    );
    assert_eq!(mine.len(), all.len() - before + 1);
    let members: Vec<Value> = mine[..4]
        .iter()
        .map(|e| payload(e)["accountIDs"].clone())
        .collect();
    assert_eq!(
        members,
        [
            json!([accounts[0]]),
            json!([accounts[0], accounts[1]]),
            json!([accounts[1]]),
            json!([]),
        ]
    );
    let created = payload(mine[0]);
    assert_eq!(created["id"], id.as_str());
    assert_eq!(created["name"], "treasury");
    assert_eq!(payload(mine[4])["id"], id.as_str());
    assert_numbered(&all, "");
}

#[actix_rt::test]
async fn manual_payments_and_accounts_tell_as_ingestion_does() {
    let api = Api::start().await;
    let pool = api.app.db.pool();
    let connector = api.install("manual").await;
    let account = json!({"reference": "acc-1", "connectorID": connector,
        "createdAt": "2026-01-01T00:00:00Z", "type": "INTERNAL", "accountName": "Main"});
    let reply = api.post("/accounts", &account).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let account_id = reply.body["data"]["id"].as_str().expect("id").to_string();
    let payment = json!({"reference": "pay-1", "connectorID": connector,
        "createdAt": "2026-01-01T00:00:00Z", "type": "PAY-IN", "amount": 100,
        "asset": "EUR/2", "scheme": "visa", "status": "PENDING",
        "destinationAccountID": account_id});
    let reply = api.post("/payments", &payment).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The same payment again: no change, no event; a new status: one.
    let reply = api.post("/payments", &payment).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut succeeded = payment.clone();
    succeeded["status"] = json!("SUCCEEDED");
    let reply = api.post("/payments", &succeeded).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let all = events(&pool).await;
    let types: Vec<&str> = all.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["SAVED_ACCOUNT", "SAVED_PAYMENT", "SAVED_PAYMENT"]);
    assert!(all.iter().all(|e| e.connector_id == connector));
    assert_eq!(payload(&all[0])["id"], account_id.as_str());
    assert_eq!(payload(&all[0])["accountName"], "Main");
    let statuses: Vec<Value> = all[1..]
        .iter()
        .map(|e| payload(e)["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("PENDING"), json!("SUCCEEDED")]);
    assert_eq!(payload(&all[2])["provider"], "TEST");
    assert_numbered(&all, &connector);
}
