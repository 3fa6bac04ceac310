//! DUMMY-PAY end to end, through the real server: files in a directory become payments.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, spawn_app};

/// Writes a file whose modification time is a minute ago, so the next poll takes it at once
/// (files modified within the last second are taken to be still being written).
pub fn drop_file(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write file");
    let file = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_modified(SystemTime::now() - Duration::from_secs(60))
        .expect("set mtime");
}

/// A bare payment object as the seed guide writes it.
pub fn payment(reference: &str, amount: &str, status: &str) -> String {
    format!(
        r#"{{"reference":"{reference}","amount":{amount},"asset":"EUR/2","type":"PAY-IN","status":"{status}","scheme":"visa","createdAt":"2026-01-01T00:00:00Z"}}"#
    )
}

struct Dummy {
    app: TestApp,
    dir: tempfile::TempDir,
    connector_id: String,
    http: awc::Client,
}

impl Dummy {
    async fn start() -> Dummy {
        Self::install(spawn_app().await, json!({}), &[]).await
    }

    /// Installs a connector on `app`, its config `config` over a 100 ms polling period, after
    /// writing the user's `files` (name, body) into its directory.
    async fn install(app: TestApp, config: Value, files: &[(&str, &str)]) -> Dummy {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, body) in files {
            drop_file(dir.path(), name, body);
        }
        let http = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        let mut body = json!({
            "name": "files",
            "directory": dir.path().to_str().expect("utf8 path"),
            "filePollingPeriod": "100ms",
        });
        for (key, value) in config.as_object().into_iter().flatten() {
            body[key] = value.clone();
        }
        let mut reply = http
            .post(format!("{}/connectors/dummy-pay", app.base))
            .send_json(&body)
            .await
            .expect("install");
        let body: Value = reply.json().await.expect("json");
        assert_eq!(reply.status().as_u16(), 201, "{body}");
        let connector_id = body["data"]["connectorID"]
            .as_str()
            .expect("id")
            .to_string();
        Dummy {
            app,
            dir,
            connector_id,
            http,
        }
    }

    /// Uninstalls the connector and waits until it is gone.
    async fn uninstall(&self) {
        let reply = self
            .http
            .delete(format!(
                "{}/connectors/DUMMY-PAY/{}",
                self.app.base, self.connector_id
            ))
            .send()
            .await
            .expect("uninstall");
        assert_eq!(reply.status().as_u16(), 204);
        eventually(
            "the connector to be gone",
            Duration::from_secs(20),
            || async { self.count("SELECT count(*) FROM connectors").await == 0 },
        )
        .await;
    }

    /// Every entry of the directory, hidden ones included, sorted.
    fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).expect("read file")
    }

    /// Waits until `generate-files` has the status `status`.
    async fn wait_generate(&self, status: &str) {
        let sql = format!(
            "SELECT count(*) FROM tasks WHERE descriptor->>'key' = 'generate-files' AND status = '{status}'"
        );
        eventually(
            &format!("generate-files {status}"),
            Duration::from_secs(30),
            || async { self.count(&sql).await == 1 },
        )
        .await;
    }

    async fn get(&self, path: &str) -> Value {
        let mut reply = self
            .http
            .get(format!("{}{path}", self.app.base))
            .send()
            .await
            .expect("get");
        reply.json::<Value>().limit(16 << 20).await.expect("json")
    }

    async fn count(&self, sql: &str) -> i64 {
        self.app
            .db
            .client()
            .await
            .query_one(sql, &[])
            .await
            .expect("count")
            .get(0)
    }

    async fn wait_payments(&self, n: i64) {
        eventually(
            &format!("{n} payments"),
            Duration::from_secs(60),
            || async move { self.count("SELECT count(*) FROM payments").await == n },
        )
        .await;
    }

    async fn files_read(&self) -> u64 {
        let root = self.app.base.trim_end_matches("/api/payments");
        let mut reply = self
            .http
            .get(format!("{root}/metrics"))
            .send()
            .await
            .expect("metrics");
        let text = String::from_utf8(reply.body().await.expect("body").to_vec()).expect("utf8");
        text.lines()
            .find(|l| {
                l.starts_with("tributary_dummypay_files_read_total")
                    && l.contains(&self.connector_id)
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Waits until `read-files` has completed `n` more polls.
    async fn polls(&self, n: usize) {
        let runs = || async {
            self.app
                .db
                .client()
                .await
                .query_opt(
                    "SELECT last_success_at::text FROM tasks WHERE descriptor->>'key' = 'read-files'",
                    &[],
                )
                .await
                .expect("read-files")
                .and_then(|r| r.get::<_, Option<String>>(0))
        };
        let mut seen = runs().await;
        for _ in 0..n {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let now = runs().await;
                if now.is_some() && now != seen {
                    seen = now;
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "read-files did not poll"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    async fn task_error(&self, file: &str) -> Option<String> {
        let tasks = self
            .get(&format!(
                "/connectors/DUMMY-PAY/{}/tasks?status=FAILED&pageSize=100",
                self.connector_id
            ))
            .await;
        tasks["cursor"]["data"]
            .as_array()?
            .iter()
            .find(|t| t["descriptor"]["fileName"] == file)
            .and_then(|t| t["error"].as_str().map(str::to_string))
    }
}

#[actix_rt::test]
async fn a_thousand_files_become_a_thousand_payments_and_are_never_read_again() {
    let d = Dummy::start().await;
    for i in 0..1000 {
        drop_file(
            d.dir.path(),
            &format!("p{i:04}.json"),
            &payment(&format!("ref-{i}"), "100", "SUCCEEDED"),
        );
    }
    d.wait_payments(1000).await;
    d.polls(3).await;
    assert_eq!(
        d.files_read().await,
        1000,
        "an unchanged file was read again"
    );
    assert_eq!(d.count("SELECT count(*) FROM payments").await, 1000);
}

#[actix_rt::test]
async fn a_new_run_for_an_unchanged_file_does_not_read_it_again() {
    // A poll that listed the file just before its record committed schedules it once more.
    let d = Dummy::start().await;
    drop_file(d.dir.path(), "p.json", &payment("r", "100", "SUCCEEDED"));
    d.wait_payments(1).await;
    let task_id: String = d
        .app
        .db
        .client()
        .await
        .query_one(
            "SELECT id::text FROM tasks WHERE descriptor->>'fileName' = 'p.json'",
            &[],
        )
        .await
        .expect("task")
        .get(0);
    let restart = d
        .http
        .post(format!(
            "{}/connectors/DUMMY-PAY/{}/tasks/{task_id}/restart",
            d.app.base, d.connector_id
        ))
        .send()
        .await
        .expect("restart");
    assert!(restart.status().is_success(), "{}", restart.status());
    // `>= 1`: under load a poll may list the file meanwhile and start a third run, which must
    // not read it either.
    eventually("the second run to end", Duration::from_secs(20), || async {
        d.count(&format!(
            "SELECT count(*) FROM tasks WHERE id = '{task_id}' AND run_number >= 1 AND status = 'TERMINATED'"
        ))
        .await
            == 1
    })
    .await;
    assert_eq!(d.files_read().await, 1, "the unchanged file was read again");
}

#[actix_rt::test]
async fn a_rewritten_file_updates_its_payment_with_exactly_one_adjustment() {
    let d = Dummy::start().await;
    drop_file(d.dir.path(), "p.json", &payment("r", "100", "PENDING"));
    d.wait_payments(1).await;
    assert_eq!(d.count("SELECT count(*) FROM payment_adjustments").await, 1);
    // Rewritten by rename, as a careful writer does.
    let tmp = d.dir.path().join(".p.json.tmp");
    std::fs::write(&tmp, payment("r", "100", "SUCCEEDED")).expect("write");
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .expect("open")
        .set_modified(SystemTime::now() - Duration::from_secs(30))
        .expect("mtime");
    std::fs::rename(&tmp, d.dir.path().join("p.json")).expect("rename");
    eventually("the new status", Duration::from_secs(20), || async {
        d.count("SELECT count(*) FROM payments WHERE status = 'SUCCEEDED'")
            .await
            == 1
    })
    .await;
    d.polls(2).await;
    assert_eq!(d.count("SELECT count(*) FROM payment_adjustments").await, 2);
    let payments = d.get("/payments").await;
    let p = &payments["cursor"]["data"][0];
    assert_eq!(p["status"], "SUCCEEDED");
    assert_eq!(p["adjustments"].as_array().map(Vec::len), Some(2));
}

#[actix_rt::test]
async fn a_malformed_file_fails_only_its_own_task_and_fixing_it_reingests_it() {
    let d = Dummy::start().await;
    drop_file(
        d.dir.path(),
        "good.json",
        &payment("good", "1", "SUCCEEDED"),
    );
    drop_file(d.dir.path(), "bad.json", &payment("bad", "-5", "SUCCEEDED"));
    drop_file(
        d.dir.path(),
        "lines.jsonl",
        &format!(
            "{}\n{{\"reference\": 3}}\n",
            payment("l1", "1", "SUCCEEDED")
        ),
    );
    drop_file(
        d.dir.path(),
        "garbage.json",
        "\u{0}\u{1}\u{2}not json at all",
    );
    d.wait_payments(1).await;
    let d = &d;
    for (file, expect) in [
        ("bad.json", "amount: must not be negative"),
        ("lines.jsonl", "line 2: "),
        ("garbage.json", "garbage.json"),
    ] {
        eventually(
            &format!("{file} failed"),
            Duration::from_secs(20),
            || async move { d.task_error(file).await.is_some() },
        )
        .await;
        let error = d.task_error(file).await.unwrap_or_default();
        assert!(
            error.contains(file) && error.contains(expect),
            "{file}: {error}"
        );
    }
    drop_file(d.dir.path(), "bad.json", &payment("bad", "5", "SUCCEEDED"));
    d.wait_payments(2).await;
}

#[actix_rt::test]
async fn a_forty_digit_amount_round_trips_from_file_to_api() {
    let d = Dummy::start().await;
    let big = "1234567890123456789012345678901234567890";
    drop_file(d.dir.path(), "big.json", &payment("big", big, "SUCCEEDED"));
    d.wait_payments(1).await;
    let mut reply = d
        .http
        .get(format!("{}/payments", d.app.base))
        .send()
        .await
        .expect("get");
    let text = String::from_utf8(reply.body().await.expect("body").to_vec()).expect("utf8");
    assert!(text.contains(&format!("\"amount\":{big}")), "{text}");
    let raw = text.split("\"raw\":").nth(1).unwrap_or_default();
    assert!(
        raw.contains(&format!("\"amount\":{big}")),
        "raw must stay exact: {text}"
    );
}

#[actix_rt::test]
async fn files_outside_the_directory_are_never_read() {
    let d = Dummy::start().await;
    let outside = tempfile::tempdir().expect("tempdir");
    drop_file(
        outside.path(),
        "secret.json",
        &payment("secret", "1", "SUCCEEDED"),
    );
    std::os::unix::fs::symlink(
        outside.path().join("secret.json"),
        d.dir.path().join("link.json"),
    )
    .expect("symlink");
    drop_file(
        d.dir.path(),
        "inside.json",
        &payment("inside", "1", "SUCCEEDED"),
    );
    d.wait_payments(1).await;
    d.polls(2).await;
    assert_eq!(
        d.count("SELECT count(*) FROM payments WHERE reference = 'secret'")
            .await,
        0
    );

    // A descriptor can never name a path: the connector refuses it.
    use tributary::sdk::Loader;
    let loader = tributary::connectors::dummypay::DummyPayLoader::new(
        tributary::connectors::dummypay::AllowedRoots::new(vec![std::env::temp_dir()]),
    );
    let mut config = tributary::sdk::Config::new();
    config.insert("name".into(), json!("x"));
    config.insert("directory".into(), json!(d.dir.path().to_str()));
    let connector = loader.load(&loader.apply_defaults(config)).expect("load");
    for name in ["../secret.json", "/etc/passwd", "..", "a/b.json"] {
        let descriptor = json!({"name": "x", "key": "ingest", "fileName": name});
        assert!(connector.resolve(&descriptor).is_err(), "{name}");
    }
}

#[actix_rt::test]
async fn a_missing_directory_is_retried_until_it_appears() {
    let d = Dummy::start().await;
    let late = d.dir.path().join("late");
    let reply = d
        .http
        .post(format!(
            "{}/connectors/DUMMY-PAY/{}/config",
            d.app.base, d.connector_id
        ))
        .send_json(
            &json!({"name": "files", "directory": late.to_str(), "filePollingPeriod": "100ms"}),
        )
        .await
        .expect("update");
    assert_eq!(reply.status().as_u16(), 204);
    // The install hook created the old directory; the new one does not exist yet.
    std::fs::remove_dir_all(&late).ok();
    // read-files fails retryably on the missing directory and stays ACTIVE with the error.
    let d = &d;
    eventually(
        "a retry on the missing directory",
        Duration::from_secs(20),
        || async move {
            d.count(
                "SELECT count(*) FROM tasks WHERE descriptor->>'key' = 'read-files'
             AND status = 'ACTIVE' AND attempts > 0 AND error LIKE '%cannot list directory%'",
            )
            .await
                == 1
        },
    )
    .await;
    std::fs::create_dir_all(&late).expect("mkdir");
    drop_file(&late, "p.json", &payment("late", "1", "SUCCEEDED"));
    d.wait_payments(1).await;
}

fn account_file(reference: &str) -> String {
    format!(
        r#"{{"kind":"account","account":{{"reference":"{reference}","createdAt":"2026-01-01T00:00:00Z","defaultAsset":"EUR/2","accountName":"Main","type":"INTERNAL"}}}}"#
    )
}

#[actix_rt::test]
async fn account_and_balance_files_become_accounts_and_balances_in_the_api() {
    let d = Dummy::start().await;
    drop_file(d.dir.path(), "account.json", &account_file("acc-1"));
    drop_file(
        d.dir.path(),
        "balance.json",
        r#"{"kind":"balance","balance":{"accountReference":"acc-1","asset":"EUR/2","balance":-1500,"createdAt":"2026-01-02T00:00:00Z"}}"#,
    );
    let d = &d;
    eventually("the account", Duration::from_secs(20), || async move {
        d.get("/accounts").await["cursor"]["data"][0]["reference"] == "acc-1"
    })
    .await;
    let account = &d.get("/accounts").await["cursor"]["data"][0];
    assert_eq!(account["accountName"], "Main");
    assert_eq!(account["type"], "INTERNAL");
    assert_eq!(account["defaultAsset"], "EUR/2");
    let id = account["id"].as_str().expect("account id").to_string();
    let balances = format!("/accounts/{id}/balances");
    let balances = &balances;
    eventually("the balance", Duration::from_secs(20), || async move {
        d.get(balances).await["cursor"]["data"][0]["balance"] == json!(-1500)
    })
    .await;
    let balance = &d.get(balances).await["cursor"]["data"][0];
    assert_eq!(balance["asset"], "EUR/2");
    assert_eq!(balance["accountId"], json!(id));
}

#[actix_rt::test]
async fn a_rewritten_json_lines_file_starts_over_and_ends_with_the_right_rows() {
    let d = Dummy::start().await;
    let lines = |rows: &[(&str, &str)]| -> String {
        rows.iter()
            .map(|(reference, status)| payment(reference, "100", status) + "\n")
            .collect()
    };
    drop_file(
        d.dir.path(),
        "batch.jsonl",
        &lines(&[("a", "PENDING"), ("b", "PENDING")]),
    );
    d.wait_payments(2).await;
    // Longer than the checkpoint's offset, but its first line differs: read from the start.
    drop_file(
        d.dir.path(),
        "batch.jsonl",
        &lines(&[("a", "FAILED"), ("b", "PENDING"), ("c", "PENDING")]),
    );
    d.wait_payments(3).await;
    let d = &d;
    eventually("a's new status", Duration::from_secs(20), || async move {
        d.count("SELECT count(*) FROM payments WHERE reference = 'a' AND status = 'FAILED'")
            .await
            == 1
    })
    .await;
    let statuses: Vec<(String, String)> = d
        .app
        .db
        .client()
        .await
        .query(
            "SELECT reference, status FROM payments ORDER BY reference",
            &[],
        )
        .await
        .expect("payments")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected = [("a", "FAILED"), ("b", "PENDING"), ("c", "PENDING")]
        .map(|(r, s)| (r.to_string(), s.to_string()));
    assert_eq!(statuses, expected);
}

#[actix_rt::test]
async fn a_last_line_without_newline_is_read_once_its_newline_arrives() {
    let d = Dummy::start().await;
    let first = payment("first", "1", "SUCCEEDED") + "\n";
    let second = payment("second", "1", "SUCCEEDED");
    drop_file(d.dir.path(), "open.jsonl", &format!("{first}{second}"));
    let d = &d;
    eventually("the first line", Duration::from_secs(20), || async move {
        d.count("SELECT count(*) FROM payments WHERE reference = 'first'")
            .await
            == 1
    })
    .await;
    d.polls(2).await;
    assert_eq!(
        d.count("SELECT count(*) FROM payments WHERE reference = 'second'")
            .await,
        0,
        "a line without its newline was read"
    );
    drop_file(d.dir.path(), "open.jsonl", &format!("{first}{second}\n"));
    d.wait_payments(2).await;
}

#[actix_rt::test]
async fn prefix_file_to_ingest_reads_matching_files_and_the_generated_ones() {
    let app = spawn_app().await;
    let config = json!({
        "prefixFileToIngest": "in-",
        "numberOfAccountsPreGenerated": 1,
        "numberOfPaymentsPreGenerated": 1,
    });
    let d = Dummy::install(app, config, &[]).await;
    drop_file(d.dir.path(), "in-a.json", &payment("a", "1", "SUCCEEDED"));
    drop_file(
        d.dir.path(),
        "other.json",
        &payment("other", "1", "SUCCEEDED"),
    );
    // The generated payment and account are ingested: their names carry the prefix.
    d.wait_payments(2).await;
    let d = &d;
    eventually(
        "the generated account",
        Duration::from_secs(20),
        || async move { d.count("SELECT count(*) FROM accounts").await == 1 },
    )
    .await;
    d.polls(2).await;
    assert_eq!(
        d.count("SELECT count(*) FROM payments WHERE reference = 'other'")
            .await,
        0,
        "a file without the prefix was read"
    );
    assert!(
        d.listing()
            .iter()
            .all(|n| n.starts_with("in-") || n == "other.json"),
        "{:?}",
        d.listing()
    );
}

#[actix_rt::test]
async fn uninstall_deletes_the_generated_files_and_keeps_the_users() {
    let users_own = payment("users-own", "7", "SUCCEEDED");
    let mine = payment("mine", "8", "SUCCEEDED");
    let config = json!({"numberOfAccountsPreGenerated": 1, "numberOfPaymentsPreGenerated": 2});
    let files = [
        ("dummypay-generated-payment-1.json", users_own.as_str()),
        ("mine.json", mine.as_str()),
    ];
    let d = Dummy::install(spawn_app().await, config, &files).await;
    d.wait_generate("TERMINATED").await;
    // generated-payment-0, the user's generated-payment-1 and mine.json.
    d.wait_payments(3).await;
    assert_eq!(
        d.listing(),
        [
            "dummypay-generated-account-0.json",
            "dummypay-generated-payment-0.json",
            "dummypay-generated-payment-1.json",
            "mine.json",
        ]
    );
    d.uninstall().await;
    assert_eq!(
        d.listing(),
        ["dummypay-generated-payment-1.json", "mine.json"]
    );
    assert_eq!(d.read("dummypay-generated-payment-1.json"), users_own);
    assert_eq!(d.read("mine.json"), mine);
}

/// Makes every write of `generated:dummypay-generated-payment-1.json` to the connector's store
/// fail with `errcode` while `condition` holds — a crash of `generate-files` at that write.
async fn inject_store_failure(app: &TestApp, condition: &str, errcode: &str) {
    app.db
        .client()
        .await
        .batch_execute(&format!(
            "CREATE FUNCTION inject_failure() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.key = 'generated:dummypay-generated-payment-1.json' AND ({condition}) THEN
                 RAISE EXCEPTION 'injected failure' USING ERRCODE = '{errcode}';
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER inject_failure BEFORE INSERT ON connector_kv
               FOR EACH ROW EXECUTE FUNCTION inject_failure();"
        ))
        .await
        .expect("trigger");
}

/// The store writes that fail: every write of the key, or every write after its first.
const FAILING_WRITES: [&str; 2] = [
    "true",
    "EXISTS (SELECT 1 FROM connector_kv WHERE key = NEW.key)",
];

#[actix_rt::test]
async fn a_generate_files_run_that_fails_at_a_store_write_leaves_no_file_behind_at_uninstall() {
    for condition in FAILING_WRITES {
        let app = spawn_app().await;
        // A value the database refuses as malformed (class 22) is final to the task; any
        // other database error would be retried.
        inject_store_failure(&app, condition, "22023").await;
        let users_own = payment("users-own", "7", "SUCCEEDED");
        let config = json!({"numberOfPaymentsPreGenerated": 3});
        let files = [("dummypay-generated-payment-2.json", users_own.as_str())];
        let d = Dummy::install(app, config, &files).await;
        // Not retryable: the run ends FAILED where it stopped.
        d.wait_generate("FAILED").await;
        d.uninstall().await;
        assert_eq!(
            d.listing(),
            ["dummypay-generated-payment-2.json"],
            "failing writes: {condition}"
        );
        assert_eq!(d.read("dummypay-generated-payment-2.json"), users_own);
    }
}

#[actix_rt::test]
async fn generate_files_resumes_after_failed_store_writes_and_uninstall_deletes_all_it_created() {
    for condition in FAILING_WRITES {
        let app = spawn_app().await;
        // A serialization failure is retryable: the task runs again from what it recorded.
        inject_store_failure(&app, condition, "40001").await;
        let users_own = payment("users-own", "7", "SUCCEEDED");
        let config = json!({"numberOfPaymentsPreGenerated": 3});
        let files = [("dummypay-generated-payment-2.json", users_own.as_str())];
        let d = Dummy::install(app, config, &files).await;
        let d = &d;
        eventually("a failed attempt", Duration::from_secs(20), || async move {
            d.count(
                "SELECT count(*) FROM tasks WHERE descriptor->>'key' = 'generate-files'
                 AND attempts > 0 AND error LIKE '%injected failure%'",
            )
            .await
                == 1
        })
        .await;
        d.app
            .db
            .client()
            .await
            .batch_execute("DROP TRIGGER inject_failure ON connector_kv")
            .await
            .expect("drop trigger");
        d.wait_generate("TERMINATED").await;
        d.wait_payments(3).await;
        assert_eq!(
            d.listing(),
            [
                "dummypay-generated-payment-0.json",
                "dummypay-generated-payment-1.json",
                "dummypay-generated-payment-2.json",
            ],
            "failing writes: {condition}"
        );
        d.uninstall().await;
        assert_eq!(
            d.listing(),
            ["dummypay-generated-payment-2.json"],
            "failing writes: {condition}"
        );
        assert_eq!(d.read("dummypay-generated-payment-2.json"), users_own);
    }
}

#[actix_rt::test]
async fn the_guide_s_file_form_and_a_config_without_name_work_as_in_formance() {
    // No name: Formance's DUMMY-PAY loader names the connector "DUMMY-PAY".
    let d = Dummy::install(spawn_app().await, json!({"name": null}), &[]).await;
    let connectors = d.get("/connectors").await;
    assert_eq!(connectors["data"][0]["name"], "DUMMY-PAY", "{connectors}");
    let config = d
        .get(&format!("/connectors/DUMMY-PAY/{}/config", d.connector_id))
        .await;
    assert_eq!(config["data"]["name"], "DUMMY-PAY", "{config}");
    // `created_at` as the guide writes it, and an upper-case scheme.
    drop_file(
        d.dir.path(),
        "guide.json",
        r#"{"reference":"guide","amount":42,"asset":"EUR/2","type":"PAY-IN","status":"SUCCEEDED","scheme":"VISA","created_at":"2026-03-04T05:06:07Z"}"#,
    );
    eventually("the guide's payment", Duration::from_secs(30), || async {
        d.count("SELECT count(*) FROM payments WHERE reference = 'guide'")
            .await
            == 1
    })
    .await;
    let list = d.get("/payments").await;
    let p = &list["cursor"]["data"][0];
    assert_eq!(p["scheme"], "visa", "{p}");
    assert_eq!(p["createdAt"], "2026-03-04T05:06:07Z", "{p}");
    // Every defaultValue of GET /connectors/configs is a string (the client refuses numbers).
    let configs = d.get("/connectors/configs").await;
    let fields = configs["data"]["DUMMY-PAY"].as_object().expect("DUMMY-PAY");
    assert_eq!(fields["name"]["defaultValue"], "DUMMY-PAY");
    for (name, spec) in fields {
        if let Some(default) = spec.get("defaultValue") {
            assert!(default.is_string(), "{name}: {default}");
        }
    }
}
