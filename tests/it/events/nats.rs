//! The NATS JetStream publisher against a real `nats-server` (Debian's, JetStream on, a free
//! port, a store of its own): a thousand files give a thousand distinct events in connector
//! order and a re-ingest none; a SIGKILL mid-publishing loses nothing and leaves no
//! duplicate in the stream; a 15-second outage, or a NATS down at startup, pauses no
//! ingestion and loses nothing.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tributary::settings::{DeclaredConnector, NatsSettings};
use tributary::storage::queries::events as outbox;

use crate::dummypay::{drop_file, payment};
use crate::helpers::{TestDb, eventually, spawn_app_configured, test_settings};

const STREAM: &str = "tributary";
const SUBJECT: &str = "tributary.events";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A `nats-server -js` of the test's own; stopped and started again on the same port and
/// store; killed when dropped.
pub struct NatsServer {
    port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts one and waits until it accepts connections. Panics, saying so, when
    /// `nats-server` is not installed (`.ci/run` installs it).
    pub async fn start() -> NatsServer {
        let mut server = NatsServer {
            port: free_port(),
            store: tempfile::tempdir().expect("store dir"),
            child: None,
        };
        server.restart().await;
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its store stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same port and store, and waits until it answers.
    pub async fn restart(&mut self) {
        self.stop();
        // Debian puts it in /usr/sbin, which a user's PATH may lack.
        let spawn = |program: &str| {
            Command::new(program)
                .args([
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-sd",
                ])
                .arg(self.store.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        };
        let child = spawn("nats-server")
            .or_else(|_| spawn("/usr/sbin/nats-server"))
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run nats-server ({e}): the NATS tests need Debian's nats-server \
                     (apt-get install nats-server; .ci/run installs it)"
                )
            });
        self.child = Some(child);
        let url = self.url();
        eventually("nats-server to answer", Duration::from_secs(20), || {
            let url = url.clone();
            async move {
                match async_nats::connect(url).await {
                    Ok(client) => client.flush().await.is_ok(),
                    Err(_) => false,
                }
            }
        })
        .await;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One message of the stream, as the publisher labelled it.
#[derive(Debug, Clone)]
struct Published {
    id: String,
    connector_id: String,
    sequence: i64,
    event_type: String,
}

async fn stream(url: &str) -> Option<jetstream::stream::Stream> {
    let client = async_nats::connect(url).await.ok()?;
    jetstream::new(client).get_stream(STREAM).await.ok()
}

/// How many messages the stream holds (0 before it exists).
async fn stream_count(url: &str) -> u64 {
    match stream(url).await {
        Some(mut stream) => stream.info().await.map(|i| i.state.messages).unwrap_or(0),
        None => 0,
    }
}

/// Every message of the stream, in stream order.
async fn stream_contents(url: &str) -> Vec<Published> {
    let mut stream = stream(url).await.expect("the stream exists");
    let state = stream.info().await.expect("stream info").state.clone();
    let mut out = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        let message = stream.get_raw_message(seq).await.expect("a message");
        let header = |name: &str| {
            message
                .headers
                .get(name)
                .map(|v| v.as_str().to_string())
                .unwrap_or_default()
        };
        let envelope: serde_json::Value =
            serde_json::from_slice(&message.payload).expect("a JSON envelope");
        assert_eq!(envelope["app"], "payments");
        assert_eq!(
            envelope["type"].as_str(),
            Some(header("Tributary-Event-Type").as_str())
        );
        out.push(Published {
            id: header("Nats-Msg-Id"),
            connector_id: header("Tributary-Connector-Id"),
            sequence: header("Tributary-Sequence").parse().expect("a sequence"),
            event_type: header("Tributary-Event-Type"),
        });
    }
    out
}

async fn outbox_ids(db: &TestDb) -> HashSet<String> {
    outbox::after(&db.pool(), 0, 1_000_000)
        .await
        .expect("the outbox")
        .events
        .iter()
        .map(|e| e.id.to_string())
        .collect()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.client()
        .await
        .query_one(sql, &[])
        .await
        .expect("count")
        .get(0)
}

/// Whether the `nats` publisher's cursor is at the outbox head.
async fn caught_up(db: &TestDb) -> bool {
    let pool = db.pool();
    let head = outbox::head(&pool).await.expect("head");
    let cursor = outbox::cursor(&pool, "nats").await.expect("cursor");
    head > 0 && cursor == Some(head)
}

/// In each connector's events, the sequence only grows along the stream.
fn assert_connector_order(messages: &[Published]) {
    let mut last: std::collections::HashMap<&str, i64> = Default::default();
    for m in messages {
        let previous = last.insert(&m.connector_id, m.sequence).unwrap_or(0);
        assert!(
            m.sequence > previous,
            "connector {} event {} (sequence {}) after sequence {previous}",
            m.connector_id,
            m.id,
            m.sequence
        );
    }
}

/// Distinct ids, and the messages beyond one per event (duplicates JetStream kept). An event
/// is known by its connector and sequence, not by the header under test; two copies of one
/// event must carry the same id.
fn distinct_and_kept_duplicates(messages: &[Published]) -> (HashSet<String>, usize) {
    let mut events: std::collections::HashMap<(&str, i64), &str> = Default::default();
    for m in messages {
        let id = *events.entry((&m.connector_id, m.sequence)).or_insert(&m.id);
        assert_eq!(
            id, m.id,
            "two copies of connector {} event {} with different ids",
            m.connector_id, m.sequence
        );
    }
    let ids: HashSet<String> = messages.iter().map(|m| m.id.clone()).collect();
    (ids, messages.len() - events.len())
}

/// The stream holds exactly the outbox's events (by id); says how many differ, not which.
fn assert_same_events(on_stream: &HashSet<String>, in_outbox: &HashSet<String>) {
    let missing = in_outbox.difference(on_stream).count();
    let unknown = on_stream.difference(in_outbox).count();
    assert!(
        missing == 0 && unknown == 0,
        "{missing} of {} outbox events missing from the stream, {unknown} unknown ids on it",
        in_outbox.len()
    );
}

#[actix_rt::test]
async fn a_thousand_files_give_a_thousand_events_in_connector_order_and_a_reingest_none() {
    let nats = NatsServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings();
    settings.events.nats = Some(NatsSettings {
        url: nats.url(),
        stream: STREAM.into(),
        subject: SUBJECT.into(),
    });
    let config = serde_json::json!({
        "directory": dir.path().to_str().expect("utf8"),
        "filePollingPeriod": "100ms",
    });
    settings.connectors = vec![DeclaredConnector {
        provider: "DUMMY-PAY".into(),
        name: "files".into(),
        config: config.as_object().expect("object").clone(),
    }];
    let app = spawn_app_configured(
        TestDb::new().await,
        tributary::connectors::registry(&settings),
        &settings,
    )
    .await;
    for i in 0..1000 {
        drop_file(
            dir.path(),
            &format!("p{i:04}.json"),
            &payment(&format!("ref-{i}"), "100", "SUCCEEDED"),
        );
    }
    eventually("1,000 payments", Duration::from_secs(60), || async {
        count(&app.db, "SELECT count(*) FROM payments").await == 1000
    })
    .await;
    eventually("every event published", Duration::from_secs(60), || async {
        caught_up(&app.db).await
    })
    .await;
    let messages = stream_contents(&nats.url()).await;
    let (ids, kept) = distinct_and_kept_duplicates(&messages);
    assert_eq!(kept, 0, "JetStream kept a duplicate");
    assert_same_events(&ids, &outbox_ids(&app.db).await);
    let payments: HashSet<&str> = messages
        .iter()
        .filter(|m| m.event_type == "SAVED_PAYMENT")
        .map(|m| m.id.as_str())
        .collect();
    assert_eq!(payments.len(), 1000, "one saved-payment event per file");
    assert_connector_order(&messages);

    // The same payments again (the files rewritten, so they are read and ingested again).
    let before = messages.len();
    let events_before = outbox_ids(&app.db).await.len();
    for i in 0..1000 {
        drop_file(
            dir.path(),
            &format!("p{i:04}.json"),
            &format!("{}\n", payment(&format!("ref-{i}"), "100", "SUCCEEDED")),
        );
    }
    let connector: String = app
        .db
        .client()
        .await
        .query_one("SELECT id FROM connectors", &[])
        .await
        .expect("connector")
        .get(0);
    let metrics = format!("{}/metrics", app.base.trim_end_matches("/api/payments"));
    eventually(
        "the 1,000 files read again",
        Duration::from_secs(60),
        || {
            let metrics = metrics.clone();
            let connector = connector.clone();
            async move { files_read(&metrics, &connector).await >= 2000 }
        },
    )
    .await;
    eventually("the publisher idle", Duration::from_secs(30), || async {
        caught_up(&app.db).await
    })
    .await;
    assert_eq!(outbox_ids(&app.db).await.len(), events_before);
    assert_eq!(
        stream_count(&nats.url()).await as usize,
        before,
        "a re-ingest of the same payments published something"
    );
    app.shutdown.cancel();
}

/// `tributary_dummypay_files_read_total` of `connector`.
async fn files_read(metrics: &str, connector: &str) -> u64 {
    metric(metrics, "tributary_dummypay_files_read_total", connector).await as u64
}

/// The value of the first line of `name` whose labels contain `label`, 0 when absent.
async fn metric(metrics: &str, name: &str, label: &str) -> f64 {
    let Ok(reply) = reqwest::get(metrics).await else {
        return 0.0;
    };
    let text = reply.text().await.unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(name) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0)
}

/// The service binary, serving on `port` with `config`, logging to `log`.
fn serve(config: &Path, url: &str, port: u16, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["serve", "--config"])
        .arg(config)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn tributary")
}

/// A config with one DUMMY-PAY connector reading `files` and the NATS publisher.
fn write_config(dir: &Path, files: &Path, nats_url: &str) -> PathBuf {
    let config = dir.join("tributary.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n\
             [[connectors]]\nprovider = \"DUMMY-PAY\"\nname = \"files\"\n\
             config = {{ directory = \"{}\", filePollingPeriod = \"100ms\" }}\n\
             [events.nats]\nurl = \"{nats_url}\"\nstream = \"{STREAM}\"\nsubject = \"{SUBJECT}\"\n",
            dir.join("data").display(),
            files.display()
        ),
    )
    .expect("config");
    config
}

/// Sends `signal`; after a SIGTERM, the service (its NATS publisher running) must exit 0
/// within 15 s.
async fn stop(child: &mut Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).expect("signal");
    if signal != Signal::SIGTERM {
        let _ = child.wait();
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no exit within 15 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status} after SIGTERM");
}

#[actix_rt::test]
async fn a_sigkill_mid_publishing_loses_nothing_and_jetstream_keeps_no_duplicate() {
    const LINES: usize = 20_000;
    let nats = NatsServer::start().await;
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).expect("mkdir");
    let body: String = (0..LINES)
        .map(|i| payment(&format!("line-{i}"), &i.to_string(), "SUCCEEDED") + "\n")
        .collect();
    drop_file(&files, "big.jsonl", &body);
    let config = write_config(dir.path(), &files, &nats.url());

    // First run: killed once part of the events are on the stream.
    let mut first = serve(&config, &db.url, free_port(), &dir.path().join("run1.log"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while stream_count(&nats.url()).await < (LINES / 10) as u64 {
        assert!(Instant::now() < deadline, "publishing did not start");
        assert!(
            first.try_wait().expect("wait").is_none(),
            "server exited early"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop(&mut first, Signal::SIGKILL).await;
    let on_stream_at_kill = stream_count(&nats.url()).await;
    let in_outbox_at_kill = outbox_ids(&db).await.len();
    assert!(
        on_stream_at_kill < LINES as u64,
        "the kill came too late to test anything"
    );

    // Second run: ingestion and publishing resume.
    let port = free_port();
    let mut second = serve(&config, &db.url, port, &dir.path().join("run2.log"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(count(&db, "SELECT count(*) FROM payments").await == LINES as i64
        && caught_up(&db).await)
    {
        assert!(
            Instant::now() < deadline,
            "ingestion or publishing did not finish"
        );
        assert!(
            second.try_wait().expect("wait").is_none(),
            "server exited early"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resent = metric(
        &format!("http://127.0.0.1:{port}/metrics"),
        "tributary_events_nats_duplicates_total",
        "",
    )
    .await;
    stop(&mut second, Signal::SIGTERM).await;

    let in_outbox = outbox_ids(&db).await;
    let messages = stream_contents(&nats.url()).await;
    let (ids, kept) = distinct_and_kept_duplicates(&messages);
    eprintln!(
        "NATS SIGKILL run: at the kill {on_stream_at_kill} on the stream, {in_outbox_at_kill} in \
         the outbox; after the restart {} events in the outbox, {} distinct delivered, {} \
         messages on the stream, {kept} duplicates kept, {resent} re-sent copies dropped by \
         JetStream (same id)",
        in_outbox.len(),
        ids.len(),
        messages.len()
    );
    assert!(in_outbox.len() >= LINES);
    assert_eq!(kept, 0, "JetStream kept a duplicate");
    assert_same_events(&ids, &in_outbox);
    assert_connector_order(&messages);
}

#[actix_rt::test]
async fn a_nats_outage_pauses_no_ingestion_and_the_backlog_flows_after_it() {
    let mut nats = NatsServer::start().await;
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).expect("mkdir");
    let config = write_config(dir.path(), &files, &nats.url());
    let port = free_port();
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let mut service = serve(&config, &db.url, port, &dir.path().join("run.log"));
    let payments = || count(&db, "SELECT count(*) FROM payments");
    let mut dropped = 0;
    let mut drop_some = |n: usize| {
        for _ in 0..n {
            drop_file(
                &files,
                &format!("p{dropped:05}.json"),
                &payment(&format!("ref-{dropped}"), "100", "SUCCEEDED"),
            );
            dropped += 1;
        }
        dropped as i64
    };
    let expected = drop_some(20);
    eventually(
        "the first events published",
        Duration::from_secs(60),
        || async { payments().await == expected && caught_up(&db).await },
    )
    .await;
    assert!(service.try_wait().expect("wait").is_none(), "server exited");

    // NATS down for 15 s: files keep being ingested, the backlog grows.
    nats.stop();
    let outage = Instant::now();
    let mut backlog = Vec::new();
    while outage.elapsed() < Duration::from_secs(15) {
        let expected = drop_some(10);
        eventually(
            "ingestion during the outage",
            Duration::from_secs(10),
            || async { payments().await == expected },
        )
        .await;
        backlog.push(metric(&metrics, "tributary_events_backlog", "nats").await);
    }
    let ingested_during_outage = payments().await - 20;
    assert!(
        backlog.windows(2).any(|w| w[1] > w[0]) && backlog.iter().any(|b| *b > 0.0),
        "the backlog gauge did not grow during the outage: {backlog:?}"
    );

    nats.restart().await;
    let back = Instant::now();
    eventually("the backlog published", Duration::from_secs(60), || async {
        caught_up(&db).await
    })
    .await;
    let drained_in = back.elapsed();
    let in_outbox = outbox_ids(&db).await;
    let messages = stream_contents(&nats.url()).await;
    let (ids, kept) = distinct_and_kept_duplicates(&messages);
    let resent = metric(&metrics, "tributary_events_nats_duplicates_total", "").await;
    stop(&mut service, Signal::SIGTERM).await;
    eprintln!(
        "NATS outage run: {ingested_during_outage} payments ingested during the 15 s outage, \
         backlog samples {backlog:?}; after restart {} events in the outbox, {} distinct \
         delivered in {drained_in:?}, {} messages on the stream, {kept} duplicates kept, \
         {resent} re-sent copies dropped by JetStream (same id)",
        in_outbox.len(),
        ids.len(),
        messages.len()
    );
    assert!(ingested_during_outage > 0);
    assert_eq!(kept, 0, "JetStream kept a duplicate");
    assert_same_events(&ids, &in_outbox);
    assert_connector_order(&messages);
}

#[actix_rt::test]
async fn a_nats_down_at_startup_blocks_nothing_and_events_flow_once_it_is_up() {
    let mut nats = NatsServer::start().await;
    nats.stop();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings();
    settings.events.nats = Some(NatsSettings {
        url: nats.url(),
        stream: STREAM.into(),
        subject: SUBJECT.into(),
    });
    let config = serde_json::json!({
        "directory": dir.path().to_str().expect("utf8"),
        "filePollingPeriod": "100ms",
    });
    settings.connectors = vec![DeclaredConnector {
        provider: "DUMMY-PAY".into(),
        name: "files".into(),
        config: config.as_object().expect("object").clone(),
    }];
    // Builds and serves although nothing answers on the NATS port.
    let app = spawn_app_configured(
        TestDb::new().await,
        tributary::connectors::registry(&settings),
        &settings,
    )
    .await;
    for i in 0..5 {
        drop_file(
            dir.path(),
            &format!("p{i}.json"),
            &payment(&format!("ref-{i}"), "100", "SUCCEEDED"),
        );
    }
    eventually(
        "ingestion without NATS",
        Duration::from_secs(30),
        || async { count(&app.db, "SELECT count(*) FROM payments").await == 5 },
    )
    .await;
    assert!(!caught_up(&app.db).await, "published with no NATS");

    nats.restart().await;
    eventually("the events published", Duration::from_secs(30), || async {
        caught_up(&app.db).await
    })
    .await;
    let (ids, kept) = distinct_and_kept_duplicates(&stream_contents(&nats.url()).await);
    assert_eq!(kept, 0, "JetStream kept a duplicate");
    assert_same_events(&ids, &outbox_ids(&app.db).await);
    app.shutdown.cancel();
}
