//! Crash safety of ingestion, through the binary: a 100,000-line JSON Lines file, the server
//! SIGKILLed mid-file and restarted, ends with exactly 100,000 payments, and the restart
//! re-reads at most one batch.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::helpers::TestDb;

const LINES: usize = 100_000;
const BATCH: u64 = 1_000;

fn serve(config: &std::path::Path, url: &str, port: u16, log: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["serve", "--config"])
        .arg(config)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "info")
        .env("TRIBUTARY_LOG__FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn tributary")
}

async fn payments(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one("SELECT count(*) FROM payments", &[])
        .await
        .expect("count")
        .get(0)
}

/// Lines read per "batch read" log line of one process, and whether it resumed a file.
fn lines_read(log: &std::path::Path) -> (u64, bool) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut read = 0;
    let mut resumed = false;
    for line in text.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        match entry["fields"]["message"].as_str() {
            Some("batch read") => read += entry["fields"]["lines"].as_u64().unwrap_or(0),
            Some("resuming file") => resumed = true,
            _ => {}
        }
    }
    (read, resumed)
}

#[actix_rt::test]
async fn a_json_lines_file_survives_a_sigkill_mid_file_with_no_loss_and_no_duplicate() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).expect("mkdir");
    let path = files.join("big.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    for i in 0..LINES {
        writeln!(
            out,
            r#"{{"reference":"line-{i}","amount":{i},"asset":"EUR/2","type":"PAY-IN","status":"SUCCEEDED","scheme":"sepa","createdAt":"2026-01-01T00:00:00Z"}}"#
        )
        .expect("write");
    }
    out.into_inner()
        .expect("flush")
        .set_modified(SystemTime::now() - Duration::from_secs(60))
        .expect("mtime");
    let config = dir.path().join("tributary.toml");
    std::fs::write(
        &config,
        format!(
            // Its own data directory: the key file for connector secrets is created there.
            "data_dir = \"{}\"\n[[connectors]]\nprovider = \"DUMMY-PAY\"\nname = \"crash\"\nconfig = {{ directory = \"{}\", filePollingPeriod = \"200ms\" }}\n",
            dir.path().join("data").display(),
            files.display()
        ),
    )
    .expect("config");
    let port = || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port()
    };

    // First run: killed once a fifth of the file is committed.
    let log1 = dir.path().join("run1.log");
    let mut first = serve(&config, &db.url, port(), &log1);
    let deadline = Instant::now() + Duration::from_secs(120);
    while payments(&db).await < (LINES / 5) as i64 {
        assert!(Instant::now() < deadline, "ingestion did not start");
        assert!(
            first.try_wait().expect("wait").is_none(),
            "server exited early"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill(Pid::from_raw(first.id() as i32), Signal::SIGKILL).expect("kill");
    let _ = first.wait();
    let at_kill = payments(&db).await;
    assert!(
        at_kill < LINES as i64,
        "the kill came too late to test anything"
    );

    // Second run: resumes from the checkpoint.
    let log2 = dir.path().join("run2.log");
    let mut second = serve(&config, &db.url, port(), &log2);
    let deadline = Instant::now() + Duration::from_secs(240);
    while payments(&db).await < LINES as i64 {
        assert!(Instant::now() < deadline, "ingestion did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill(Pid::from_raw(second.id() as i32), Signal::SIGTERM).expect("term");
    let _ = second.wait();

    assert_eq!(payments(&db).await, LINES as i64);
    let distinct: i64 = db
        .client()
        .await
        .query_one("SELECT count(DISTINCT reference) FROM payments", &[])
        .await
        .expect("distinct")
        .get(0);
    assert_eq!(distinct, LINES as i64);
    let (read1, _) = lines_read(&log1);
    let (read2, resumed) = lines_read(&log2);
    assert!(resumed, "the restart did not resume from the checkpoint");
    assert!(
        read1 + read2 <= LINES as u64 + BATCH,
        "re-read more than one batch: {read1} + {read2} lines read for {LINES}"
    );
}
