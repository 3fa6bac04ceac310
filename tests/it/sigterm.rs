//! Graceful shutdown under load, through the binary: `tributary serve` on its embedded
//! PostgreSQL ingests hundreds of DUMMY-PAY JSON Lines files; SIGTERM arrives while some
//! stream and the rest wait for a slot or a stream permit. The process must exit 0 within 10 s
//! leaving no PostgreSQL behind, the shutdown must move no task to FAILED or STOPPED (the
//! statuses are read from the stopped cluster), and the next start must resume everything:
//! every file's payments exactly once, every ingest task TERMINATED.
//!
//! DUMMY-PAY streams at most `STREAMS` (50) JSON Lines files at once, so "1,000 live tasks"
//! means 50 streaming plus 950 waiting for a slot or a permit. The CI size is small (250 files of
//! 200 lines); `scripts/sigterm-test.sh` runs the same test on the release build with 1,000
//! larger files through `TRIBUTARY_SIGTERM_FILES` and `TRIBUTARY_SIGTERM_LINES`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use tokio_postgres::NoTls;
use tributary::storage::embedded::{EmbeddedConfig, EmbeddedPostgres, socket_url};

use crate::cli::{free_port, postmaster_pid, signal, wait_exit};
use crate::embedded::process_exists;

/// The most JSON Lines files DUMMY-PAY streams at once.
const STREAMING: i64 = tributary::connectors::dummypay::connector::STREAMS as i64;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A blocking SQL client on the embedded cluster (the test itself is synchronous: it drives a
/// child process).
struct Sql {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Sql {
    /// Connects once the cluster of `data_dir` answers and is migrated; panics after 60 s.
    /// `between` runs between attempts (to notice a service that died).
    fn connect(data_dir: &Path, mut between: impl FnMut()) -> Sql {
        let url = socket_url(&data_dir.join("postgres"), 5432, "tributary");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let attempt = rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&url, NoTls).await.ok()?;
                tokio::spawn(conn);
                client
                    .simple_query("SELECT 1 FROM tasks LIMIT 1")
                    .await
                    .ok()?;
                Some(client)
            });
            if let Some(client) = attempt {
                return Sql { rt, client };
            }
            between();
            assert!(Instant::now() < deadline, "the database never came up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The integers of the first row of `sql`.
    fn row(&self, sql: &str) -> Vec<i64> {
        self.rt.block_on(async {
            let row = self.client.query_one(sql, &[]).await.expect(sql);
            (0..row.len()).map(|i| row.get(i)).collect()
        })
    }
}

/// When the service logged that it was shutting down (text log lines start with an RFC 3339
/// timestamp).
fn shutdown_time(log: &Path) -> chrono::DateTime<chrono::FixedOffset> {
    let text = std::fs::read_to_string(log).expect("the service's log");
    text.lines()
        .find(|l| l.contains("shutting down"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("no timestamped 'shutting down' line in the log:\n{text}"))
}

/// Panics with the service's log if it exited.
fn alive(child: &mut Child, log: &Path) {
    if let Ok(Some(status)) = child.try_wait() {
        panic!(
            "tributary exited early with {status}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

/// Ingest tasks: (scheduled, ACTIVE, live, TERMINATED), and payments.
const PROGRESS: &str = "SELECT count(*) FILTER (WHERE descriptor->>'key' = 'ingest'),
        count(*) FILTER (WHERE descriptor->>'key' = 'ingest' AND status = 'ACTIVE'),
        count(*) FILTER (WHERE descriptor->>'key' = 'ingest' AND status IN ('ACTIVE', 'PENDING')),
        count(*) FILTER (WHERE descriptor->>'key' = 'ingest' AND status = 'TERMINATED'),
        (SELECT count(*) FROM payments)
     FROM tasks";

/// Tasks of any kind by final status: (FAILED, STOPPED).
const ENDED_BADLY: &str = "SELECT count(*) FILTER (WHERE status = 'FAILED'),
        count(*) FILTER (WHERE status = 'STOPPED') FROM tasks";

/// Kills the service if the test fails before stopping it (its embedded PostgreSQL follows).
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let pid = nix::unistd::Pid::from_raw(self.0 as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

struct Service {
    data_dir: PathBuf,
    config: PathBuf,
    port: u16,
}

impl Service {
    fn start(&self, log: &Path) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tributary"));
        // `TRIBUTARY_*` variables are settings to the service, which refuses unknown ones:
        // this test's own parameters (and anything else in the caller's environment) stay out.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("TRIBUTARY_") {
                cmd.env_remove(key);
            }
        }
        // Its embedded PostgreSQL runs as `postgres` when we are root and must be able to
        // resolve its working directory: the test's own (mode 0755), not the caller's.
        if let Some(dir) = self.data_dir.parent() {
            cmd.current_dir(dir);
        }
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--bind", &format!("127.0.0.1:{}", self.port)])
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn,tributary::app=info,tributary::cli=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("spawn tributary serve")
    }

    /// SIGTERM; asserts exit 0 within 10 s and no PostgreSQL left. Returns the exit time.
    fn terminate(&self, child: &mut Child, log: &Path) -> Duration {
        let pg = postmaster_pid(&self.data_dir);
        let sent = Instant::now();
        signal(child, Signal::SIGTERM);
        let status = wait_exit(child, Duration::from_secs(10)).unwrap_or_else(|| {
            let _ = child.kill();
            panic!(
                "no exit within 10 s of SIGTERM:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
        let took = sent.elapsed();
        assert!(
            status.success(),
            "exit status {status}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        assert!(!process_exists(pg), "postgres {pg} outlived the service");
        took
    }
}

/// A directory for one service run, under /tmp: the embedded PostgreSQL runs as `postgres`
/// when we are root, so it must be able to traverse it.
fn service_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("tempdir");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    dir
}

#[test]
fn sigterm_under_load_exits_fast_keeps_statuses_and_resumes_every_payment_once() {
    let files = env_usize("TRIBUTARY_SIGTERM_FILES", 250);
    let lines = env_usize("TRIBUTARY_SIGTERM_LINES", 200);
    let total = (files * lines) as i64;
    let dir = service_dir("tributary-sigterm-");
    let inbox = dir.path().join("files");
    std::fs::create_dir_all(&inbox).expect("mkdir");
    // Modified in the past, so that the first poll takes every file.
    let past = SystemTime::now() - Duration::from_secs(120);
    for f in 0..files {
        let file = std::fs::File::create(inbox.join(format!("f{f:05}.jsonl"))).expect("create");
        let mut out = std::io::BufWriter::new(file);
        for l in 0..lines {
            writeln!(
                out,
                r#"{{"reference":"f{f}-{l}","amount":{l},"asset":"EUR/2","type":"PAY-IN","status":"SUCCEEDED","scheme":"sepa","createdAt":"2026-01-01T00:00:00Z"}}"#
            )
            .expect("write");
        }
        out.into_inner()
            .expect("flush")
            .set_modified(past)
            .expect("mtime");
    }
    let config = dir.path().join("tributary.toml");
    std::fs::write(
        &config,
        format!(
            "[[connectors]]\nprovider = \"DUMMY-PAY\"\nname = \"load\"\n\
             config = {{ directory = \"{}\", filePollingPeriod = \"200ms\" }}\n",
            inbox.display()
        ),
    )
    .expect("config");
    let service = Service {
        data_dir: dir.path().join("data"),
        config,
        port: free_port(),
    };

    // Run 1: SIGTERM once every file has its task and a tenth of the payments are in: every
    // stream permit is taken (a run shorter than 100 ms never shows ACTIVE, so streaming ones
    // are counted by the permit limit, not by status).
    let log1 = dir.path().join("run1.log");
    let mut child = service.start(&log1);
    let _kill1 = KillOnDrop(child.id());
    let sql = Sql::connect(&service.data_dir, || alive(&mut child, &log1));
    let deadline = Instant::now() + Duration::from_secs(120);
    let at_sigterm = loop {
        let p = sql.row(PROGRESS);
        if p[0] == files as i64 && p[4] >= total / 10 {
            break p;
        }
        alive(&mut child, &log1);
        assert!(
            Instant::now() < deadline,
            "never every file scheduled with a tenth of the payments in (last: {p:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        at_sigterm[4] < total,
        "ingestion finished before the SIGTERM: use larger files"
    );
    drop(sql);
    let exit_time = service.terminate(&mut child, &log1);
    // Runs that did not reach a cancellation point within the grace period (a JSON Lines
    // ingest checks between batches) were dropped: that, not the database, sets the exit time.
    let dropped = std::fs::read_to_string(&log1)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("did not stop within the grace period"))
        .count();

    // The stopped cluster, read directly: the shutdown wrote no end status.
    let pg = EmbeddedPostgres::start(&EmbeddedConfig::for_data_dir(
        &service.data_dir,
        Path::new(""),
        5432,
    ))
    .expect("start the service's cluster");
    // When the service began its shutdown, by its own log (the signal's delivery and handling
    // take a moment, longer on a loaded machine: the test's clock would not do).
    let shutdown_at = shutdown_time(&log1);
    let (after, badly, ended_after_shutdown) = {
        let sql = Sql::connect(&service.data_dir, || {});
        let ended_after = format!(
            "SELECT count(*) FROM tasks WHERE descriptor->>'key' = 'ingest' \
             AND status = 'TERMINATED' AND updated_at > '{}'::timestamptz",
            shutdown_at.to_rfc3339()
        );
        (
            sql.row(PROGRESS),
            sql.row(ENDED_BADLY),
            sql.row(&ended_after)[0],
        )
    };
    pg.stop();
    assert_eq!(badly, vec![0, 0], "the shutdown failed or stopped tasks");
    assert_eq!(after[2] + after[3], files as i64, "{after:?}");
    // Runs in progress may commit their end while the shutdown stops them; a task still
    // waiting for a slot or a stream permit when the shutdown began is never started, so at
    // most the runs that held a stream permit end after it.
    assert!(
        ended_after_shutdown <= STREAMING,
        "{ended_after_shutdown} ingest tasks ended after the shutdown began (at most \
         {STREAMING} were running): a waiting task was started; at SIGTERM {at_sigterm:?}, \
         after {after:?}"
    );
    assert!(after[4] < total, "{after:?}");

    // Run 2: everything resumes and finishes; every payment once.
    let log2 = dir.path().join("run2.log");
    let mut child = service.start(&log2);
    let _kill2 = KillOnDrop(child.id());
    let sql = Sql::connect(&service.data_dir, || alive(&mut child, &log2));
    let deadline = Instant::now() + Duration::from_secs(120.max(total as u64 / 2_000));
    loop {
        let p = sql.row(PROGRESS);
        if p[4] == total && p[3] == files as i64 {
            break;
        }
        alive(&mut child, &log2);
        assert!(
            Instant::now() < deadline,
            "the resumed ingestion did not finish (last: {p:?})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let distinct = sql.row("SELECT count(DISTINCT reference) FROM payments")[0];
    let badly = sql.row(ENDED_BADLY);
    drop(sql);
    service.terminate(&mut child, &log2);
    assert_eq!(distinct, total, "a payment is missing or twice");
    assert_eq!(
        badly,
        vec![0, 0],
        "tasks failed or stopped after the restart"
    );
    // One line of figures for scripts/sigterm-test.sh.
    println!(
        "{}",
        serde_json::json!({
            "test": "sigterm",
            "files": files,
            "lines_per_file": lines,
            "ingest_tasks_live_at_sigterm": at_sigterm[2],
            "ingest_runs_active_at_sigterm": at_sigterm[1],
            "payments_at_sigterm": at_sigterm[4],
            "exit_ms": exit_time.as_millis() as u64,
            "runs_dropped_after_grace_period": dropped,
            "live_after_shutdown": after[2],
            "failed_or_stopped_by_shutdown": badly[0] + badly[1],
            "payments_after_resume": total,
            "distinct_payments": distinct,
            "expected_payments": total,
        })
    );
}

/// A SIGTERM while the service boots (its embedded PostgreSQL just started, migrations and the
/// listener still to come) stops it gracefully once it is up: exit 0, "stopped" logged, its
/// PostgreSQL stopped. Before the signals were listened for from the start, the default action
/// killed the process there and left its PostgreSQL running.
#[test]
fn a_sigterm_during_boot_stops_the_service_gracefully() {
    let dir = service_dir("tributary-sigterm-boot-");
    let config = dir.path().join("tributary.toml");
    std::fs::write(&config, "").expect("config");
    let service = Service {
        data_dir: dir.path().join("data"),
        config,
        port: free_port(),
    };
    let log = dir.path().join("boot.log");
    let mut child = service.start(&log);
    let _kill = KillOnDrop(child.id());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("embedded PostgreSQL started") {
            break;
        }
        alive(&mut child, &log);
        assert!(Instant::now() < deadline, "no embedded PostgreSQL:\n{text}");
        std::thread::sleep(Duration::from_millis(5));
    }
    service.terminate(&mut child, &log);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("stopped"), "no graceful stop:\n{text}");
}
