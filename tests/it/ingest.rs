//! Ingestion counts every row as if ingested one after the other: a payment, account or balance
//! repeated in one batch keeps its history, and where batch boundaries fall changes nothing.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use tributary::ids::ConnectorKey;
use tributary::sdk::ingest::{
    AccountData, AccountType, Amount, BalanceData, Batch, IngestReport, PaymentData, PaymentStatus,
    PaymentType, Scheme,
};
use tributary::storage::StorageHandle;
use tributary::storage::commands::ingest::IngestBatch;

use crate::dummypay::drop_file;
use crate::helpers::{TestDb, eventually, spawn_app};
use crate::storage_actor::{keyed_connector, setup};

fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, second)
        .single()
        .expect("a valid time")
}

fn payment(amount: &str, status: PaymentStatus, raw: &str) -> PaymentData {
    PaymentData {
        reference: "p".into(),
        created_at: at(1),
        payment_type: PaymentType::PayIn,
        status,
        scheme: Scheme::Visa,
        asset: "EUR/2".into(),
        amount: Amount::payment("amount", amount).expect("amount"),
        source_account: None,
        destination_account: None,
        raw: Some(raw.into()),
        metadata: Default::default(),
    }
}

fn account(name: &str, created: u32, raw: &str) -> AccountData {
    AccountData {
        reference: "a".into(),
        created_at: at(created),
        default_asset: Some("EUR/2".into()),
        account_name: Some(name.into()),
        account_type: AccountType::Internal,
        raw: Some(raw.into()),
        metadata: Default::default(),
    }
}

fn balance(amount: &str, second: u32) -> BalanceData {
    BalanceData {
        account_reference: "a".into(),
        asset: "EUR/2".into(),
        balance: Amount::balance("balance", amount).expect("balance"),
        at: at(second),
    }
}

/// One row of a batch, in the order a connector reports it.
#[derive(Clone)]
enum Row {
    Account(AccountData),
    Payment(PaymentData),
    Balance(BalanceData),
}

fn batch(rows: &[Row]) -> Batch {
    let mut batch = Batch::default();
    for row in rows {
        match row.clone() {
            Row::Account(a) => batch.accounts.push(a),
            Row::Payment(p) => batch.payments.push(p),
            Row::Balance(b) => batch.balances.push(b),
        }
    }
    batch
}

/// Every repetition the bug lost: a payment changed twice then repeated, an account changed
/// then repeated, a balance 10 → 20 → 10, a second amount at an instant already stored
/// (it replaces the first), an unchanged amount (it only moves `last_updated_at`).
fn history() -> Vec<Row> {
    vec![
        Row::Account(account("A", 1, r#"{"v":1}"#)),
        Row::Account(account("B", 2, r#"{"v":2}"#)),
        Row::Account(account("B", 3, r#"{"v":3}"#)),
        Row::Payment(payment("100", PaymentStatus::Pending, r#"{"n":1}"#)),
        Row::Payment(payment("90", PaymentStatus::Pending, r#"{"n":2}"#)),
        Row::Payment(payment("90", PaymentStatus::Pending, r#"{"n":3}"#)),
        Row::Balance(balance("10", 1)),
        Row::Balance(balance("20", 2)),
        Row::Balance(balance("10", 3)),
        Row::Balance(balance("15", 3)),
        Row::Balance(balance("15", 4)),
        Row::Balance(balance("7", 4)),
    ]
}

async fn ingest(storage: &StorageHandle, connector: &ConnectorKey, rows: &[Row]) -> IngestReport {
    storage
        .write(IngestBatch {
            connector: connector.clone(),
            batch: batch(rows),
        })
        .await
        .expect("ingest")
}

/// A connector's accounts, payments, adjustments and balances as text, without the columns
/// set from the transaction's clock (`inserted_at`, `updated_at`, an update's adjustment
/// time) or derived from the connector id.
async fn snapshot(db: &TestDb, connector: &ConnectorKey) -> Vec<String> {
    let client = db.client().await;
    let queries = [
        "SELECT ROW(reference, created_at, default_asset, account_name, type, metadata,
                    raw::text)::text
         FROM accounts WHERE connector_id = $1 ORDER BY reference",
        "SELECT ROW(reference, type, status, scheme, asset, amount, initial_amount,
                    source_account_id, destination_account_id, created_at, raw::text,
                    metadata)::text
         FROM payments WHERE connector_id = $1 ORDER BY reference, type",
        "SELECT ROW(p.reference, a.status, a.amount, a.raw::text,
                    a.created_at = p.created_at)::text
         FROM payment_adjustments a JOIN payments p ON p.id = a.payment_id
         WHERE p.connector_id = $1 ORDER BY p.reference, a.id",
        "SELECT ROW(a.reference, b.asset, b.balance, b.created_at, b.last_updated_at)::text
         FROM balances b JOIN accounts a ON a.id = b.account_id
         WHERE a.connector_id = $1 ORDER BY a.reference, b.asset, b.created_at",
    ];
    let mut out = Vec::new();
    for (table, sql) in queries.iter().enumerate() {
        out.push(format!("-- table {table}"));
        for row in client.query(*sql, &[&connector.id()]).await.expect(sql) {
            out.push(row.get(0));
        }
    }
    out
}

fn total(reports: &[IngestReport]) -> IngestReport {
    reports
        .iter()
        .fold(IngestReport::default(), |t, r| IngestReport {
            payments_inserted: t.payments_inserted + r.payments_inserted,
            payments_updated: t.payments_updated + r.payments_updated,
            accounts_written: t.accounts_written + r.accounts_written,
            balances_added: t.balances_added + r.balances_added,
        })
}

#[actix_rt::test]
async fn rows_repeated_in_one_batch_keep_their_history() {
    let (db, storage, _) = setup(1000).await;
    let connector = keyed_connector(&storage).await;
    let report = ingest(&storage, &connector, &history()).await;
    let client = db.client().await;

    let p = client
        .query_one(
            "SELECT initial_amount::text, amount::text, raw::text FROM payments",
            &[],
        )
        .await
        .expect("payment");
    assert_eq!(
        (
            p.get::<_, &str>(0),
            p.get::<_, &str>(1),
            p.get::<_, &str>(2)
        ),
        ("100", "90", r#"{"n":1}"#)
    );
    let adjustments: Vec<String> = client
        .query(
            "SELECT amount::text FROM payment_adjustments ORDER BY id",
            &[],
        )
        .await
        .expect("adjustments")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(adjustments, ["100", "90"]);

    let a = client
        .query_one(
            "SELECT account_name, created_at, raw::text FROM accounts",
            &[],
        )
        .await
        .expect("account");
    assert_eq!(a.get::<_, &str>(0), "B");
    assert_eq!(a.get::<_, DateTime<Utc>>(1), at(1));
    assert_eq!(a.get::<_, &str>(2), r#"{"v":1}"#);

    // 10 → 20 → 10 is three rows; 15 at the third one's instant replaces its 10; 15 again
    // at 4 is no change; 7 at 4 is a new row.
    let balances: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = client
        .query(
            "SELECT balance::text, created_at, last_updated_at FROM balances ORDER BY created_at",
            &[],
        )
        .await
        .expect("balances")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        balances,
        [
            ("10".to_string(), at(1), at(1)),
            ("20".to_string(), at(2), at(2)),
            ("15".to_string(), at(3), at(4)),
            ("7".to_string(), at(4), at(4)),
        ]
    );

    assert_eq!(
        report,
        IngestReport {
            payments_inserted: 1,
            payments_updated: 1,
            accounts_written: 2,
            balances_added: 5,
        }
    );
}

#[actix_rt::test]
async fn where_a_batch_boundary_falls_changes_nothing() {
    let (db, storage, _) = setup(1000).await;
    let rows = history();

    let whole = keyed_connector(&storage).await;
    let whole_report = ingest(&storage, &whole, &rows).await;
    let expected = snapshot(&db, &whole).await;

    // One row per batch, then every split into two batches.
    let one_by_one = keyed_connector(&storage).await;
    let mut reports = Vec::new();
    for row in &rows {
        reports.push(ingest(&storage, &one_by_one, std::slice::from_ref(row)).await);
    }
    assert_eq!(
        snapshot(&db, &one_by_one).await,
        expected,
        "one row per batch"
    );
    assert_eq!(total(&reports), whole_report, "one row per batch");

    for split in 1..rows.len() {
        let connector = keyed_connector(&storage).await;
        let first = ingest(&storage, &connector, &rows[..split]).await;
        let second = ingest(&storage, &connector, &rows[split..]).await;
        assert_eq!(
            snapshot(&db, &connector).await,
            expected,
            "split after row {split}"
        );
        assert_eq!(total(&[first, second]), whole_report, "split after {split}");
    }
}

/// A bare payment line as the seed guide writes it.
fn line(reference: &str, amount: u32) -> String {
    format!(
        r#"{{"reference":"{reference}","amount":{amount},"asset":"EUR/2","type":"PAY-IN","status":"PENDING","scheme":"visa","createdAt":"2026-01-01T00:00:00Z"}}"#
    )
}

#[actix_rt::test]
async fn a_json_lines_file_gives_the_same_history_inside_a_batch_and_across_two() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let http = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let reply = http
        .post(format!("{}/connectors/dummy-pay", app.base))
        .send_json(&json!({
            "name": "files",
            "directory": dir.path().to_str().expect("utf8 path"),
            "filePollingPeriod": "100ms",
        }))
        .await
        .expect("install");
    assert_eq!(reply.status().as_u16(), 201);

    // `inside` repeats within the first batch of 1,000 lines; `across` straddles the boundary
    // (lines 1,000 and 1,001).
    let mut lines = vec![line("inside", 100), line("inside", 90), line("inside", 90)];
    lines.extend((lines.len()..999).map(|i| line(&format!("filler-{i}"), 1)));
    lines.extend([line("across", 100), line("across", 90), line("across", 90)]);
    assert_eq!(lines[999], line("across", 100));
    drop_file(dir.path(), "history.jsonl", &(lines.join("\n") + "\n"));

    let client = app.db.client().await;
    eventually("the file ingested", Duration::from_secs(60), || async {
        client
            .query_one(
                "SELECT count(*) FROM connector_kv WHERE key = 'file:history.jsonl'",
                &[],
            )
            .await
            .expect("record")
            .get::<_, i64>(0)
            == 1
    })
    .await;

    for reference in ["inside", "across"] {
        let id: String = client
            .query_one(
                "SELECT id FROM payments WHERE reference = $1",
                &[&reference],
            )
            .await
            .expect("payment id")
            .get(0);
        let mut reply = http
            .get(format!("{}/payments/{id}", app.base))
            .send()
            .await
            .expect("get payment");
        let body: Value = reply.json().await.expect("json");
        let p = &body["data"];
        assert_eq!(
            (&p["initialAmount"], &p["amount"]),
            (&json!(100), &json!(90)),
            "{reference}: {p}"
        );
        assert_eq!(p["raw"]["amount"], json!(100), "the first raw: {p}");
        let amounts: Vec<Value> = p["adjustments"]
            .as_array()
            .expect("adjustments")
            .iter()
            .map(|a| a["amount"].clone())
            .collect();
        assert_eq!(amounts, [json!(100), json!(90)], "{reference}: {p}");
    }
}

/// A link from a bank account to an account commits with the account; the same link again is
/// one link; a link to a bank account that does not exist fails its ingest alone, with a
/// non-transient error, and writes nothing of its batch.
#[actix_rt::test]
async fn bank_account_links_commit_with_their_accounts_and_need_the_bank_account() {
    use tributary::sdk::ingest::BankAccountLink;
    use tributary::storage::commands::bank_accounts::CreateBankAccount;
    let (db, storage, _) = setup(10).await;
    let connector = keyed_connector(&storage).await;
    let bank = uuid::Uuid::new_v4();
    storage
        .write(CreateBankAccount {
            id: bank,
            created_at: at(1),
            name: "b".into(),
            country: "FR".into(),
            swift_bic_code: None,
            account_number: Some(json!({"$encrypted": {}})),
            iban: None,
            account_number_masked: Some("12***678".into()),
            iban_masked: None,
            metadata: None,
        })
        .await
        .expect("bank account");
    let linked = |bank_account_id| Batch {
        accounts: vec![account("A", 1, "{}")],
        bank_account_links: vec![BankAccountLink {
            bank_account_id,
            account_reference: "a".into(),
        }],
        ..Batch::default()
    };
    for _ in 0..2 {
        storage
            .write(IngestBatch {
                connector: connector.clone(),
                batch: linked(bank),
            })
            .await
            .expect("ingest with a link");
    }
    let client = db.client().await;
    let links = client
        .query(
            "SELECT bank_account_id, account_id FROM bank_account_related_accounts",
            &[],
        )
        .await
        .expect("links");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].get::<_, uuid::Uuid>(0), bank);
    let account_id = tributary::ids::AccountKey {
        connector: connector.clone(),
        reference: "a".into(),
    }
    .id();
    assert_eq!(links[0].get::<_, String>(1), account_id);

    let other = keyed_connector(&storage).await;
    let error = storage
        .write(IngestBatch {
            connector: other.clone(),
            batch: linked(uuid::Uuid::new_v4()),
        })
        .await
        .expect_err("a link to no bank account");
    assert!(!error.is_transient(), "{error}");
    let accounts: i64 = client
        .query_one(
            "SELECT count(*) FROM accounts WHERE connector_id = $1",
            &[&other.id()],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(accounts, 0, "the failed batch's account was written");
}
