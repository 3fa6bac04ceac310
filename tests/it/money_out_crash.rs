//! A payout interrupted by a crash is never sent twice: the service binary aborts (the
//! `money-out-after-send` failpoint) after DUMMY-PAY wrote the instruction file and before
//! the payment is recorded. After a restart there is exactly one instruction file, the
//! initiation is FAILED "outcome unknown", and an explicit retry does not write a second one.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::helpers::{TestDb, eventually};
use crate::transfers::{call, client, outbox};

fn serve(config: &std::path::Path, url: &str, port: u16, failpoint: Option<&str>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
    command
        .args(["serve", "--config"])
        .arg(config)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(config.with_extension(format!("{port}.log"))).expect("log"));
    if let Some(failpoint) = failpoint {
        command.env(tributary::money_out::task::FAILPOINT_ENV, failpoint);
    }
    command.spawn().expect("spawn tributary")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

async fn live(base: &str) -> bool {
    client()
        .get(format!("{base}/_live"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[actix_rt::test]
async fn a_send_interrupted_after_the_instruction_ends_failed_outcome_unknown_never_twice() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).expect("mkdir");
    let config = dir.path().join("tributary.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[[connectors]]\nprovider = \"DUMMY-PAY\"\nname = \"crash\"\nconfig = {{ directory = \"{}\", filePollingPeriod = \"200ms\" }}\n",
            dir.path().join("data").display(),
            files.display()
        ),
    )
    .expect("config");

    // First run: aborts right after the instruction is written.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}/api/payments");
    let mut first = serve(&config, &db.url, port, Some("money-out-after-send"));
    eventually("the service is up", Duration::from_secs(60), || live(&base)).await;
    let connector_id: String = db
        .client()
        .await
        .query_one("SELECT id FROM connectors", &[])
        .await
        .expect("connector")
        .get(0);
    let app_db = db.client().await;
    let account_id = tributary::ids::AccountKey {
        connector: tributary::ids::ConnectorKey::parse(&connector_id).expect("id"),
        reference: "supplier".into(),
    }
    .id();
    app_db
        .execute(
            "INSERT INTO accounts (id, connector_id, reference, created_at, type)
             VALUES ($1, $2, 'supplier', now(), 'EXTERNAL')",
            &[&account_id, &connector_id],
        )
        .await
        .expect("account");
    let http = client();
    let create = json!({"reference": "crash-1", "type": "PAYOUT", "amount": 999,
        "asset": "EUR/2", "validated": true, "connectorID": connector_id,
        "destinationAccountID": account_id, "description": "",
        "scheduledAt": "2020-01-01T00:00:00Z"});
    // The process dies while answering: the request fails.
    let answer = http
        .post(format!("{base}/transfer-initiations"))
        .send_json(&create)
        .await;
    assert!(
        answer.is_err() || !answer.expect("answer").status().is_success(),
        "the failpoint did not abort the request"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while first.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "the failpoint did not abort the process"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(outbox(&files), ["crash-1.json"]);
    let payments: i64 = app_db
        .query_one("SELECT count(*) FROM payments", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(payments, 0, "the payment was not recorded before the crash");

    // Second run: the interrupted send is FAILED "outcome unknown", never sent again.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}/api/payments");
    let mut second = serve(&config, &db.url, port, None);
    eventually("the service is up again", Duration::from_secs(60), || {
        live(&base)
    })
    .await;
    let (_, list) = call(
        &http,
        http.get(format!("{base}/transfer-initiations")),
        None,
    )
    .await;
    let id = list["cursor"]["data"][0]["id"]
        .as_str()
        .expect("initiation")
        .to_string();
    let read = || async {
        call(
            &http,
            http.get(format!("{base}/transfer-initiations/{id}")),
            None,
        )
        .await
        .1
    };
    eventually(
        "the initiation is FAILED",
        Duration::from_secs(30),
        || async { read().await["data"]["status"] == "FAILED" },
    )
    .await;
    let data: Value = read().await["data"].clone();
    let error = data["error"].as_str().expect("error");
    assert!(error.starts_with("outcome unknown"), "{error}");
    assert_eq!(outbox(&files), ["crash-1.json"]);

    // An explicit retry is a new attempt: DUMMY-PAY finds the first attempt's instruction and
    // refuses to write a second one.
    let (code, body) = call(
        &http,
        http.post(format!("{base}/transfer-initiations/{id}/retry")),
        None,
    )
    .await;
    assert_eq!(code, 204, "{body}");
    let data: Value = read().await["data"].clone();
    assert_eq!(data["status"], "FAILED", "{data}");
    assert!(
        data["error"]
            .as_str()
            .unwrap_or("")
            .contains("already exists"),
        "{data}"
    );
    assert_eq!(outbox(&files), ["crash-1.json"]);

    kill(Pid::from_raw(second.id() as i32), Signal::SIGTERM).expect("term");
    let _ = second.wait();
    let _ = first.wait();
}
