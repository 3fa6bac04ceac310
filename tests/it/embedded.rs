//! The embedded PostgreSQL cluster: start, stop, restart with data, leftovers, missing binaries.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_postgres::NoTls;
use tributary::storage::embedded::{EmbeddedConfig, EmbeddedError, EmbeddedPostgres};

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tributary-emb-")
        .tempdir_in("/tmp")
        .expect("tempdir")
}

fn query(url: &str, sql: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
        tokio::spawn(conn);
        client
            .simple_query(sql)
            .await
            .expect("query")
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .collect()
    })
}

pub fn process_exists(pid: u32) -> bool {
    // A zombie is gone for our purposes: it holds no resources and is being reaped.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.contains(") Z "),
        Err(_) => false,
    }
}

pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while process_exists(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn start_stop_and_restart_keeps_the_data() {
    let dir = tempdir();
    let config = EmbeddedConfig::for_data_dir(dir.path(), Path::new(""), 5432);

    let pg = EmbeddedPostgres::start(&config).expect("first start");
    let url = pg.url("postgres");
    query(
        &url,
        "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('kept')",
    );
    let pid = pg.pid();
    pg.stop();
    assert!(
        !process_exists(pid),
        "postmaster {pid} still running after stop"
    );

    let pg = EmbeddedPostgres::start(&config).expect("second start");
    assert_eq!(
        query(&pg.url("postgres"), "SELECT v FROM marker"),
        vec!["kept"]
    );
    let pid = pg.pid();
    drop(pg);
    assert!(
        !process_exists(pid),
        "postmaster {pid} still running after drop"
    );
}

#[test]
fn a_leftover_server_on_the_same_directory_is_stopped_first() {
    let dir = tempdir();
    let config = EmbeddedConfig::for_data_dir(dir.path(), Path::new(""), 5432);
    let leftover = EmbeddedPostgres::start(&config).expect("first start");
    let leftover_pid = leftover.pid();
    // Forget the handle: as if the process that started it had lost track of it.
    std::mem::forget(leftover);

    let pg = EmbeddedPostgres::start(&config).expect("start over a leftover");
    assert_ne!(pg.pid(), leftover_pid);
    assert!(
        wait_gone(leftover_pid, Duration::from_secs(10)),
        "leftover still running"
    );
    assert_eq!(query(&pg.url("postgres"), "SELECT 1"), vec!["1"]);
}

#[test]
fn missing_binaries_give_a_message_that_says_what_to_do() {
    let dir = tempdir();
    let config = EmbeddedConfig::for_data_dir(dir.path(), Path::new("/nonexistent/bin"), 5432);
    match EmbeddedPostgres::start(&config) {
        Err(e @ EmbeddedError::BinariesNotFound { .. }) => {
            let message = e.to_string();
            assert!(message.contains("/nonexistent/bin"), "{message}");
            assert!(message.contains("Install PostgreSQL"), "{message}");
            assert!(message.contains("DATABASE_URL"), "{message}");
        }
        Err(other) => panic!("expected BinariesNotFound, got {other}"),
        Ok(_) => panic!("expected BinariesNotFound, got a running server"),
    }
}
