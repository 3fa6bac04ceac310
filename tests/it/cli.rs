//! The `tributary` binary end to end: serve on the embedded database, SIGTERM and SIGKILL,
//! restart with data, second-process refusal, check-config exit codes.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::embedded::{process_exists, wait_gone};
use crate::helpers::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_tributary");

/// A TCP port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn tributary() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn serve(data_dir: &Path, port: u16, database_url: Option<&str>) -> Child {
    let mut cmd = tributary();
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(data_dir);
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.spawn().expect("spawn tributary serve")
}

/// GET a path with a plain HTTP/1.0 request; returns the status code.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

pub fn wait_healthy(child: &mut Child, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http_status(port, "/api/payments/_health") == Some(200) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("tributary exited early with {status}: {}", stderr(child));
        }
        assert!(
            Instant::now() < deadline,
            "tributary did not become healthy"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to `timeout` for the child to exit; its status, or None if it still runs.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn stderr(child: &mut Child) -> String {
    let mut out = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut out);
    }
    out
}

/// The pid of the embedded PostgreSQL of a data directory, from its `postmaster.pid`.
pub fn postmaster_pid(data_dir: &Path) -> u32 {
    let text =
        std::fs::read_to_string(data_dir.join("postgres/postmaster.pid")).expect("postmaster.pid");
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid")
}

/// Sends `sig` to the child.
pub fn signal(child: &Child, sig: Signal) {
    kill(Pid::from_raw(child.id() as i32), sig).expect("signal");
}

fn run_sql(url: &str, sql: &str) -> Vec<String> {
    let url = url.to_string();
    let sql = sql.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(conn);
            client
                .simple_query(&sql)
                .await
                .expect("sql")
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                    _ => None,
                })
                .collect()
        })
    })
    .join()
    .expect("sql thread")
}

fn embedded_url(data_dir: &Path) -> String {
    tributary::storage::embedded::socket_url(&data_dir.join("postgres"), 5432, "tributary")
}

#[test]
fn serve_on_the_embedded_database_survives_sigterm_and_sigkill() {
    let dir = tempfile::Builder::new()
        .prefix("tributary-serve-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let port = free_port();

    // Cold start, write a marker, SIGTERM: exit 0 within 10 s, no postgres left behind.
    let mut child = serve(dir.path(), port, None);
    wait_healthy(&mut child, port);
    let pg = postmaster_pid(dir.path());
    run_sql(
        &embedded_url(dir.path()),
        "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('kept')",
    );
    signal(&child, Signal::SIGTERM);
    let status =
        wait_exit(&mut child, Duration::from_secs(10)).expect("exit within 10 s of SIGTERM");
    assert!(
        status.success(),
        "exit status {status}: {}",
        stderr(&mut child)
    );
    assert!(
        !process_exists(pg),
        "postgres {pg} outlived a SIGTERMed service"
    );

    // Warm start finds the data again; SIGKILL takes postgres down with it.
    let mut child = serve(dir.path(), port, None);
    wait_healthy(&mut child, port);
    let kept = run_sql(&embedded_url(dir.path()), "SELECT v FROM marker");
    assert_eq!(kept, vec!["kept"]);
    let pg = postmaster_pid(dir.path());
    signal(&child, Signal::SIGKILL);
    let _ = child.wait();
    assert!(
        wait_gone(pg, Duration::from_secs(10)),
        "postgres {pg} outlived a SIGKILLed service"
    );

    // And the next start after a SIGKILL succeeds.
    let mut child = serve(dir.path(), port, None);
    wait_healthy(&mut child, port);
    let pg = postmaster_pid(dir.path());
    signal(&child, Signal::SIGINT);
    let status =
        wait_exit(&mut child, Duration::from_secs(10)).expect("exit within 10 s of SIGINT");
    assert!(status.success());
    assert!(!process_exists(pg));
}

#[actix_rt::test]
async fn a_second_serve_on_the_same_database_refuses_to_start() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = db.url.clone();
    let path = dir.path().to_path_buf();
    let (first_port, second_port) = (free_port(), free_port());
    let outcome = actix_rt::task::spawn_blocking(move || {
        let mut first = serve(&path, first_port, Some(&url));
        wait_healthy(&mut first, first_port);
        let mut second = serve(&path, second_port, Some(&url));
        let status = wait_exit(&mut second, Duration::from_secs(20));
        let message = stderr(&mut second);
        signal(&first, Signal::SIGTERM);
        let first_status = wait_exit(&mut first, Duration::from_secs(10));
        (status, message, first_status)
    })
    .await
    .expect("blocking");
    let (status, message, first_status) = outcome;
    let status = status.expect("the second serve should exit, not run");
    assert_eq!(
        status.code(),
        Some(tributary::exit::Exit::InstanceLocked.code().into()),
        "{message}"
    );
    assert!(
        message.contains("another Tributary process"),
        "stderr: {message}"
    );
    assert!(first_status.is_some_and(|s| s.success()));
}

#[test]
fn check_config_exits_zero_on_a_valid_file_and_names_the_key_otherwise() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tributary.toml");
    let out = tributary()
        .arg("check-config")
        .arg(&shipped)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[storage]\nbatch_size = \"many\"\n").expect("write");
    let out = tributary()
        .arg("check-config")
        .arg(&bad)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("storage.batch_size") && err.contains("bad.toml"),
        "{err}"
    );

    let declared = dir.path().join("declared.toml");
    std::fs::write(
        &declared,
        "[[connectors]]\nprovider = \"DUMMY-PAY\"\nname = \"files\"\n\
         config = { directory = \"/tmp/x\", filePollingPeriod = \"-3s\" }\n",
    )
    .expect("write");
    let out = tributary()
        .arg("check-config")
        .arg(&declared)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("connectors[0]") && err.contains("files") && err.contains("filePollingPeriod"),
        "{err}"
    );

    let out = tributary()
        .arg("check-config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

#[test]
fn serve_without_postgresql_binaries_explains_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tributary()
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env("TRIBUTARY_EMBEDDED__BIN_DIR", "/nonexistent/bin")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Install PostgreSQL") && err.contains("DATABASE_URL"),
        "{err}"
    );
}

/// Runs a `tributary-bench` scenario on the test server; returns its JSON line.
fn bench(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tributary-bench"))
        .args(args)
        .env("DATABASE_URL", crate::helpers::admin_url())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run tributary-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON line ({e}) in {stdout}"))
}

#[test]
fn the_benchmarks_run_at_smoke_size() {
    let ingest = bench(&["ingest", "--files", "20", "--lines", "200", "--rounds", "2"]);
    assert_eq!(ingest["bench"], "ingest");
    assert_eq!(
        ingest["files_events_on_vs_off_each_round"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert!(
        ingest["files_payments_per_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{ingest}"
    );
    assert!(
        ingest["lines_payments_per_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{ingest}"
    );
    let api = bench(&["api", "--payments", "200", "--seconds", "1", "--rate", "20"]);
    assert_eq!(api["bench"], "api");
    assert!(api["p99_ms"].as_f64().is_some_and(|p| p > 0.0), "{api}");
    let tasks = bench(&["tasks", "--one-shot", "200", "--idle", "200"]);
    assert_eq!(tasks["bench"], "tasks");
    assert!(
        tasks["one_shot_tasks_per_s"]
            .as_f64()
            .is_some_and(|r| r > 0.0),
        "{tasks}"
    );
    assert_eq!(tasks["restore_live_tasks"], 200, "{tasks}");
    let query = bench(&["query", "--payments", "2000", "--requests", "5"]);
    assert_eq!(query["bench"], "query");
    let cases = query["cases"].as_array().expect("cases");
    assert!(
        cases.len() >= 5 && cases.iter().all(|c| c["plan"].is_string()),
        "{query}"
    );
    let latency = bench(&["latency", "--payments", "200", "--requests", "20"]);
    assert_eq!(latency["bench"], "latency");
    assert!(
        latency["routes"]["GET /connectors"]["p50_ms"]
            .as_f64()
            .is_some_and(|p| p > 0.0),
        "{latency}"
    );
}

#[test]
fn the_publish_benchmark_runs_at_smoke_size() {
    let publish = bench(&["publish", "--lines", "200"]);
    assert_eq!(publish["bench"], "publish");
    assert_eq!(publish["backlog_events"], 200, "{publish}");
    assert_eq!(publish["live_events"], 200, "{publish}");
    assert!(
        publish["drain_events_per_s"]
            .as_f64()
            .is_some_and(|r| r > 0.0),
        "{publish}"
    );
}

/// The exit code the README documents for `exit`.
fn code(exit: tributary::exit::Exit) -> Option<i32> {
    Some(exit.code().into())
}

#[test]
fn a_bad_settings_file_exits_with_the_settings_code() {
    use tributary::exit::Exit;
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nbind = \"not an address\"\n").expect("write");
    let out = tributary()
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), code(Exit::BadSettings), "{err}");
    assert!(err.contains("server.bind"), "{err}");
    let out = tributary()
        .arg("check-config")
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), code(Exit::BadSettings));
    // Not clap's usage code.
    let out = tributary().arg("no-such-command").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    // A malformed database URL is a settings error too, not an unreachable database; the URL
    // itself (it may hold a password) is not echoed.
    let out = tributary()
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .current_dir(dir.path())
        .env("DATABASE_URL", "postgres://u:hunter2@127.0.0.1:notaport/db")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), code(Exit::BadSettings), "{err}");
    assert!(err.contains("database.url"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn an_unreachable_database_exits_with_the_database_code() {
    use tributary::exit::Exit;
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on: the connection is refused.
    let url = format!("postgres://postgres@127.0.0.1:{}/tributary", free_port());
    let out = tributary()
        .args(["serve", "--bind", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(dir.path())
        .current_dir(dir.path())
        .env("DATABASE_URL", &url)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), code(Exit::DatabaseUnavailable), "{err}");
}

#[actix_rt::test]
async fn a_taken_port_exits_with_the_internal_error_code() {
    use tributary::exit::Exit;
    let db = TestDb::new().await;
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let url = db.url.clone();
    let out = actix_rt::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().expect("tempdir");
        tributary()
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path())
            .current_dir(dir.path())
            .env("DATABASE_URL", &url)
            .output()
            .expect("run")
    })
    .await
    .expect("blocking");
    drop(taken);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), code(Exit::Internal), "{err}");
    assert!(err.contains("cannot listen"), "{err}");
}

#[actix_rt::test]
async fn text_logs_to_a_pipe_carry_no_colour_codes() {
    let db = TestDb::new().await;
    let url = db.url.clone();
    let log = actix_rt::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut child = tributary()
            .env("RUST_LOG", "info")
            .env("TRIBUTARY_LOG__FORMAT", "text")
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path())
            .current_dir(dir.path())
            .env("DATABASE_URL", &url)
            .spawn()
            .expect("spawn");
        wait_healthy(&mut child, port);
        signal(&child, Signal::SIGTERM);
        let status = wait_exit(&mut child, Duration::from_secs(10));
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
        stderr(&mut child)
    })
    .await
    .expect("blocking");
    assert!(log.contains("tributary is ready"), "{log}");
    assert!(log.contains("INFO"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "colour codes in a piped log: {log:?}"
    );
}
