//! The outbox: every real change writes its Formance v1 event in the change's transaction,
//! numbered per connector; a no-op re-ingest writes none; `events.enabled = false` writes none.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::future::join_all;
use serde_json::Value;
use tributary::events::payloads::{self, SavedPayment};
use tributary::events::{EventType, NewEvent, Stored};
use tributary::ids::{AccountKey, ConnectorKey, PaymentKey};
use tributary::sdk::ingest::{
    AccountData, AccountType, Amount, BalanceData, Batch, PaymentData, PaymentStatus, PaymentType,
    Scheme,
};
use tributary::storage::StorageHandle;
use tributary::storage::commands::connectors::{DeleteConnector, WipeConnectorData};
use tributary::storage::commands::ingest::IngestBatch;
use tributary::storage::commands::metadata::{MetadataOwner, PatchMetadata};
use tributary::storage::queries::events as outbox;

use crate::helpers::TestDb;
use crate::storage_actor::keyed_connector;

/// A batch of `n` payments (and their account and its balance) with `status`.
fn batch(n: usize, status: PaymentStatus) -> Batch {
    let at = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid time");
    let mut batch = Batch::default();
    batch.accounts.push(AccountData {
        reference: "acc".into(),
        created_at: at,
        default_asset: Some("EUR/2".into()),
        account_name: Some("main".into()),
        account_type: AccountType::Internal,
        raw: Some(r#"{"acc":1}"#.into()),
        metadata: Default::default(),
    });
    for i in 0..n {
        batch.payments.push(PaymentData {
            reference: format!("p{i}"),
            created_at: at,
            payment_type: PaymentType::PayIn,
            status,
            scheme: Scheme::Visa,
            asset: "EUR/2".into(),
            amount: Amount::payment("amount", "123456789012345678901234567890").expect("amount"),
            source_account: None,
            destination_account: Some("acc".into()),
            raw: Some(format!(r#"{{"i":{i}}}"#)),
            metadata: Default::default(),
        });
    }
    batch.balances.push(BalanceData {
        account_reference: "acc".into(),
        asset: "EUR/2".into(),
        balance: Amount::balance("balance", "-42").expect("balance"),
        at,
    });
    batch
}

/// Writes `batch` for `connector` through the storage actor.
pub(super) async fn ingest(storage: &StorageHandle, connector: &ConnectorKey, batch: Batch) {
    storage
        .write(IngestBatch {
            connector: connector.clone(),
            batch,
        })
        .await
        .expect("ingest");
}

async fn all_events(storage: &StorageHandle) -> Vec<outbox::StoredEvent> {
    outbox::after(storage.pool(), 0, 100_000)
        .await
        .expect("read the outbox")
        .events
}

fn types(events: &[outbox::StoredEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

#[actix_rt::test]
async fn every_real_change_has_one_event_and_a_repeat_has_none() {
    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), 1000, Duration::ZERO);
    let connector = keyed_connector(&storage).await;

    ingest(&storage, &connector, batch(3, PaymentStatus::Pending)).await;
    let first = all_events(&storage).await;
    assert_eq!(
        types(&first),
        [
            "SAVED_ACCOUNT",
            "SAVED_PAYMENT",
            "SAVED_PAYMENT",
            "SAVED_PAYMENT",
            "SAVED_BALANCE"
        ]
    );
    let sequences: Vec<i64> = first.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5]);
    assert!(first.iter().all(|e| e.connector_id == connector.id()));

    // The envelope and payload are Formance v1's.
    let payment: Value = serde_json::from_str(&first[1].envelope).expect("JSON envelope");
    assert_eq!(payment["app"], "payments");
    assert_eq!(payment["version"], "v1");
    assert_eq!(payment["type"], "SAVED_PAYMENT");
    assert!(payment["date"].as_str().is_some_and(|d| d.ends_with('Z')));
    let p = &payment["payload"];
    assert_eq!(p["reference"], "p0");
    assert_eq!(p["connectorId"], connector.id());
    assert_eq!(p["provider"], "DUMMY-PAY");
    assert_eq!(p["status"], "PENDING");
    assert_eq!(p["rawData"]["i"], 0);
    assert_eq!(p["links"][0]["name"], "destination_account");
    assert!(p.get("sourceAccountId").is_none());
    // An amount beyond 64 bits stays an exact JSON number.
    assert!(
        first[1]
            .envelope
            .contains(r#""amount":123456789012345678901234567890"#),
        "{}",
        first[1].envelope
    );
    let balance: Value = serde_json::from_str(&first[4].envelope).expect("JSON envelope");
    assert_eq!(balance["payload"]["balance"], -42);
    assert_eq!(balance["payload"]["accountID"], p["destinationAccountId"]);

    // The same data again: nothing changed, nothing to tell.
    ingest(&storage, &connector, batch(3, PaymentStatus::Pending)).await;
    assert_eq!(all_events(&storage).await.len(), 5);

    // One payment more and a status change on all: the three changed and the new one only.
    ingest(&storage, &connector, batch(4, PaymentStatus::Succeeded)).await;
    let now = all_events(&storage).await;
    assert_eq!(types(&now[5..]), ["SAVED_PAYMENT"; 4]);
    let sequences: Vec<i64> = now.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=9).collect::<Vec<i64>>());
    let ids: std::collections::HashSet<_> = now.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 9, "event ids are distinct");
}

#[actix_rt::test]
async fn connectors_merged_in_one_transaction_keep_their_own_sequences() {
    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), 1000, Duration::ZERO);
    let a = keyed_connector(&storage).await;
    let b = keyed_connector(&storage).await;
    // Queued together: merged into one statement set, one outbox append.
    let writes = (0..10).map(|i| {
        let connector = if i % 2 == 0 { &a } else { &b };
        let mut one = batch(1, PaymentStatus::Pending);
        one.payments[0].reference = format!("p{i}");
        one.accounts.clear();
        one.balances.clear();
        storage.write(IngestBatch {
            connector: connector.clone(),
            batch: one,
        })
    });
    for result in join_all(writes).await {
        result.expect("ingest");
    }
    let events = all_events(&storage).await;
    assert_eq!(events.len(), 10);
    for connector in [&a, &b] {
        let sequences: Vec<i64> = events
            .iter()
            .filter(|e| e.connector_id == connector.id())
            .map(|e| e.sequence)
            .collect();
        assert_eq!(sequences, [1, 2, 3, 4, 5], "positions follow the sequence");
    }
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted);
}

#[actix_rt::test]
async fn a_reset_is_an_event_and_the_sequence_goes_on() {
    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), 1000, Duration::ZERO);
    let connector = keyed_connector(&storage).await;
    ingest(&storage, &connector, batch(1, PaymentStatus::Pending)).await;
    storage
        .write(WipeConnectorData { id: connector.id() })
        .await
        .expect("reset");
    ingest(&storage, &connector, batch(1, PaymentStatus::Pending)).await;
    let events = all_events(&storage).await;
    assert_eq!(
        types(&events),
        [
            "SAVED_ACCOUNT",
            "SAVED_PAYMENT",
            "SAVED_BALANCE",
            "CONNECTOR_RESET",
            "SAVED_ACCOUNT",
            "SAVED_PAYMENT",
            "SAVED_BALANCE"
        ]
    );
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=7).collect::<Vec<i64>>());
    let reset: Value = serde_json::from_str(&events[3].envelope).expect("JSON");
    assert_eq!(reset["payload"]["connectorId"], connector.id());
}

#[actix_rt::test]
async fn with_the_outbox_off_changes_write_no_event() {
    let db = TestDb::new().await;
    let storage = StorageHandle::start_with_outbox(db.pool(), 1000, Duration::ZERO, false);
    let connector = keyed_connector(&storage).await;
    ingest(&storage, &connector, batch(3, PaymentStatus::Pending)).await;
    storage
        .write(WipeConnectorData { id: connector.id() })
        .await
        .expect("reset");
    assert!(all_events(&storage).await.is_empty());
    let client = db.client().await;
    let payments: i64 = client
        .query_one("SELECT count(*) FROM payments", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(payments, 0, "the reset still wiped the data");
}

#[actix_rt::test]
async fn a_failed_write_leaves_no_event() {
    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), 1000, Duration::ZERO);
    let connector = keyed_connector(&storage).await;
    // A balance of an account never ingested fails the command, in its transaction.
    let mut orphan = batch(2, PaymentStatus::Pending);
    orphan.accounts.clear();
    let result = storage
        .write(IngestBatch {
            connector: connector.clone(),
            batch: orphan,
        })
        .await;
    assert!(result.is_err(), "a balance without its account fails");
    assert!(all_events(&storage).await.is_empty());
    // And the sequence did not move: the next event is number 1.
    ingest(&storage, &connector, batch(1, PaymentStatus::Pending)).await;
    assert_eq!(all_events(&storage).await[0].sequence, 1);
}

/// A payment's event carries the metadata and initial amount as stored: the input's on an
/// insert, the first ones on an update (ingest never changes them).
#[actix_rt::test]
async fn a_payment_event_shows_the_stored_metadata_and_initial_amount() {
    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), 1000, Duration::ZERO);
    let connector = keyed_connector(&storage).await;
    let mut first = batch(1, PaymentStatus::Pending);
    // Nanoseconds in, microseconds stored: both events show the stored time.
    first.payments[0].created_at += chrono::TimeDelta::nanoseconds(123_456_789);
    first.payments[0].metadata = [("k".to_string(), "v1".to_string())].into();
    first.payments[0].amount = Amount::payment("amount", "100").expect("amount");
    ingest(&storage, &connector, first).await;
    let mut second = batch(1, PaymentStatus::Succeeded);
    second.payments[0].metadata = [("k".to_string(), "v2".to_string())].into();
    second.payments[0].amount = Amount::payment("amount", "90").expect("amount");
    ingest(&storage, &connector, second).await;
    let payments: Vec<Value> = all_events(&storage)
        .await
        .iter()
        .filter(|e| e.event_type == "SAVED_PAYMENT")
        .map(|e| serde_json::from_str(&e.envelope).expect("JSON"))
        .collect();
    assert_eq!(payments.len(), 2);
    let inserted = &payments[0]["payload"];
    let stored: DateTime<Utc> = db
        .client()
        .await
        .query_one("SELECT created_at FROM payments", &[])
        .await
        .expect("stored")
        .get(0);
    for event in &payments {
        let at: DateTime<Utc> =
            serde_json::from_value(event["payload"]["createdAt"].clone()).expect("createdAt");
        assert_eq!(at, stored, "{event}");
    }
    assert_eq!(inserted["metadata"]["k"], "v1");
    assert_eq!(inserted["initialAmount"], 100);
    let updated = &payments[1]["payload"];
    assert_eq!(
        updated["metadata"]["k"], "v1",
        "ingest keeps the first metadata"
    );
    assert_eq!(updated["initialAmount"], 100);
    assert_eq!(updated["amount"], 90);
    assert_eq!(updated["status"], "SUCCEEDED");
}

/// The envelopes of every event (id → envelope), as publishers read them.
async fn envelopes(storage: &StorageHandle) -> std::collections::HashMap<uuid::Uuid, String> {
    all_events(storage)
        .await
        .into_iter()
        .map(|e| (e.id, e.envelope))
        .collect()
}

async fn by_reference(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one(
            "SELECT count(*) FROM events WHERE adjustment_id IS NOT NULL",
            &[],
        )
        .await
        .expect("count")
        .get(0)
}

/// The `SAVED_PAYMENT` events of `connector`'s payment `reference`, in order.
fn payment_events(
    events: &[outbox::StoredEvent],
    connector: &ConnectorKey,
    reference: &str,
) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.event_type == "SAVED_PAYMENT" && e.connector_id == connector.id())
        .map(|e| serde_json::from_str::<Value>(&e.envelope).expect("JSON"))
        .filter(|e| e["payload"]["reference"] == reference)
        .collect()
}

/// A payment's event is stored by reference to its change's adjustment and built when read:
/// byte for byte what the event built at the change would be; the same bytes after later
/// changes of the payment, a metadata patch, a reset and an uninstall (which write the
/// envelopes out before deleting what they refer to; more than one chunk of them here, and
/// another connector's left as they are).
#[actix_rt::test]
async fn a_payment_event_reads_the_same_after_changes_a_patch_a_reset_and_an_uninstall() {
    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), 1000, Duration::ZERO);
    let connector = keyed_connector(&storage).await;
    let other = keyed_connector(&storage).await;
    let mut first = batch(1_500, PaymentStatus::Pending);
    first.payments[0].metadata = [("k".to_string(), "v1".to_string())].into();
    ingest(&storage, &connector, first.clone()).await;
    ingest(&storage, &other, batch(2, PaymentStatus::Pending)).await;
    let before = envelopes(&storage).await;
    assert_eq!(before.len(), 1_502 + 4);
    assert_eq!(
        by_reference(&db).await,
        1_502,
        "payments' events by reference"
    );

    // Byte for byte the envelope built at the change (dated as stored).
    let stored = all_events(&storage).await;
    let event = stored
        .iter()
        .find(|e| e.event_type == "SAVED_PAYMENT" && e.connector_id == connector.id())
        .expect("a payment event");
    let input = &first.payments[0];
    let account = |reference: &str| {
        AccountKey {
            connector: connector.clone(),
            reference: reference.into(),
        }
        .id()
    };
    let eager = SavedPayment {
        id: PaymentKey {
            connector: connector.clone(),
            reference: input.reference.clone(),
            payment_type: input.payment_type.as_str().into(),
        }
        .id(),
        reference: input.reference.clone(),
        created_at: input.created_at,
        connector_id: connector.id(),
        provider: connector.provider.clone(),
        payment_type: input.payment_type.as_str().into(),
        status: input.status.as_str().into(),
        scheme: input.scheme.as_str().into(),
        asset: input.asset.clone(),
        source_account_id: None,
        destination_account_id: Some(account("acc")),
        links: SavedPayment::links_for(None, Some(&account("acc"))),
        raw_data: payloads::raw(input.raw.as_deref()),
        initial_amount: payloads::number(input.amount.as_str()),
        amount: payloads::number(input.amount.as_str()),
        metadata: input.metadata.clone(),
    };
    let built = NewEvent::new(
        connector.id(),
        EventType::SavedPayment,
        event.created_at,
        &eager,
    );
    assert_eq!(built.stored, Stored::Envelope(event.envelope.clone()));

    // Every payment changes: new status, amount, raw data, scheme, asset and accounts; p1,
    // stored without metadata, comes with some (ingest keeps none).
    let mut second = batch(1_500, PaymentStatus::Succeeded);
    for p in &mut second.payments {
        p.scheme = Scheme::Sepa;
        p.asset = "USD/2".into();
        p.source_account = Some("acc".into());
        p.amount = Amount::payment("amount", "77").expect("amount");
        p.raw = Some(format!(r#"{{"second":"{}"}}"#, p.reference));
    }
    second.payments[1].metadata = [("new".to_string(), "x".to_string())].into();
    ingest(&storage, &connector, second).await;
    let events = all_events(&storage).await;
    let p0 = payment_events(&events, &connector, "p0");
    let payment_id = p0[0]["payload"]["id"]
        .as_str()
        .map(str::to_string)
        .expect("a payment id");
    storage
        .write(PatchMetadata {
            owner: MetadataOwner::Payment(payment_id),
            metadata: serde_json::json!({"k": "patched"}),
        })
        .await
        .expect("patch");
    type Envelopes = std::collections::HashMap<uuid::Uuid, String>;
    let unchanged = |before: &Envelopes, now: &Envelopes, stage: &str| {
        for (id, envelope) in before {
            assert_eq!(now.get(id), Some(envelope), "after {stage}");
        }
    };
    let changed = envelopes(&storage).await;
    unchanged(&before, &changed, "changes and a patch");
    let events = all_events(&storage).await;
    let p0 = payment_events(&events, &connector, "p0");
    assert_eq!(p0.len(), 2);
    let (inserted, update) = (&p0[0]["payload"], &p0[1]["payload"]);
    assert_eq!(inserted["status"], "PENDING");
    assert_eq!(inserted["rawData"]["i"], 0);
    assert_eq!(update["status"], "SUCCEEDED");
    assert_eq!(update["amount"], 77);
    let exact = r#""initialAmount":123456789012345678901234567890,"amount":77,"#;
    let updates = events.iter().filter(|e| e.envelope.contains(exact)).count();
    assert_eq!(updates, 1_500, "the initial amount kept, exact");
    assert_eq!(update["rawData"]["second"], "p0");
    assert_eq!(update["scheme"], "sepa");
    assert_eq!(update["asset"], "USD/2");
    assert_eq!(update["links"][0]["name"], "source_account");
    assert_eq!(
        update["metadata"]["k"], "v1",
        "the metadata of the change's time"
    );
    let p1 = payment_events(&events, &connector, "p1");
    assert_eq!(
        p1[1]["payload"]["metadata"],
        serde_json::json!({}),
        "none stored"
    );

    storage
        .write(WipeConnectorData { id: connector.id() })
        .await
        .expect("reset");
    assert_eq!(
        by_reference(&db).await,
        2,
        "the reset wrote out its connector's events, not the other's"
    );
    let reset = envelopes(&storage).await;
    unchanged(&changed, &reset, "a reset");

    ingest(&storage, &connector, batch(2, PaymentStatus::Pending)).await;
    let installed = envelopes(&storage).await;
    assert_eq!(by_reference(&db).await, 4);
    storage
        .write(DeleteConnector { id: connector.id() })
        .await
        .expect("uninstall");
    assert_eq!(by_reference(&db).await, 2, "written out by the uninstall");
    unchanged(&installed, &envelopes(&storage).await, "an uninstall");
}
