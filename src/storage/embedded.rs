//! The embedded PostgreSQL cluster: a private server under the data directory, started from
//! the machine's PostgreSQL binaries so that one command runs Tributary on a fresh machine.
//!
//! Decisions (see ECOSYSTEM.md for the measurements behind them):
//! - The cluster listens on a Unix socket inside its own directory and on no TCP port, so it
//!   can never collide with another server on the machine.
//! - `initdb` and `postgres` refuse to run as root; as root we hand the cluster directory to
//!   the `postgres` user and start both as that user.
//! - The server must never outlive us, even on SIGKILL: it is spawned from a dedicated keeper
//!   thread that lives as long as the process, with `PR_SET_PDEATHSIG` set after the uid
//!   switch (which clears it). When the process dies the kernel sends the postmaster SIGINT,
//!   PostgreSQL's fast shutdown.
//! - Readiness is read from `postmaster.pid` (its status line says `ready`), which needs no
//!   client library and no running async runtime.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User};

/// How long to wait for the server to accept connections after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fast shutdown may take before we escalate to SIGQUIT, then SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(8);
/// Unix sockets paths are limited to 107 bytes on Linux.
const MAX_SOCKET_PATH: usize = 100;

/// Why the embedded cluster could not be set up, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No `initdb`/`postgres` binaries were found.
    #[error(
        "no PostgreSQL binaries found (looked in {searched}). Install PostgreSQL \
         (e.g. `apt-get install postgresql`), set embedded.bin_dir / PG_BIN_DIR to the \
         directory holding `initdb` and `postgres`, or set DATABASE_URL to use an existing server"
    )]
    BinariesNotFound { searched: String },
    /// We run as root and there is no unprivileged `postgres` user to run the server as.
    #[error(
        "running as root requires a `postgres` system user to run the embedded PostgreSQL as (PostgreSQL refuses to run as root); create one or set DATABASE_URL"
    )]
    NoPostgresUser,
    /// The cluster directory cannot be reached by the user the server runs as.
    #[error(
        "the embedded PostgreSQL directory {path} is not reachable by the `postgres` user: {reason}. Choose a --data-dir outside a private directory such as /root"
    )]
    NotTraversable { path: PathBuf, reason: String },
    /// The cluster directory path is too long for a Unix socket.
    #[error(
        "data directory {path} is too long for a Unix socket path (at most {MAX_SOCKET_PATH} bytes): choose a shorter --data-dir"
    )]
    PathTooLong { path: PathBuf },
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// `initdb` exited with an error.
    #[error("initdb failed for {path}: {output}")]
    InitDb { path: PathBuf, output: String },
    /// The server did not become ready in time, or exited during startup.
    #[error("embedded PostgreSQL in {path} did not start: {reason} (see {path}/postgres.log)")]
    StartFailed { path: PathBuf, reason: String },
}

/// Where the PostgreSQL binaries and the cluster live, and which socket port names it.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// The cluster directory (`<data_dir>/postgres`).
    pub cluster_dir: PathBuf,
    /// A directory holding `initdb` and `postgres`, or `None` to search.
    pub bin_dir: Option<PathBuf>,
    /// The number in the socket file name `.s.PGSQL.<port>`.
    pub port: u16,
    /// Extra server settings (`-c name=value`), applied after the defaults. Empty for the
    /// service; tests use it for a TCP listener with TLS (tests/it/tls.rs).
    pub server_options: Vec<(String, String)>,
}

/// A running embedded server; stopping it (or dropping it) shuts PostgreSQL down.
pub struct EmbeddedPostgres {
    cluster_dir: PathBuf,
    port: u16,
    pid: Pid,
    /// Fires when the postmaster exits (a Mutex only to make the handle `Sync`).
    exited: Mutex<mpsc::Receiver<()>>,
    stopped: bool,
}

impl EmbeddedConfig {
    /// The cluster of a data directory, with the binaries and port from the settings.
    pub fn for_data_dir(data_dir: &Path, bin_dir: &Path, port: u16) -> Self {
        Self {
            cluster_dir: data_dir.join("postgres"),
            bin_dir: (!bin_dir.as_os_str().is_empty()).then(|| bin_dir.to_path_buf()),
            port,
            server_options: Vec::new(),
        }
    }
}

impl EmbeddedPostgres {
    /// Initialises the cluster if needed, starts the server and waits until it is ready.
    /// Blocking: call it before the async runtime starts, or from a plain thread.
    pub fn start(config: &EmbeddedConfig) -> Result<Self, EmbeddedError> {
        let bin_dir = find_binaries(config.bin_dir.as_deref())?;
        let run_as = unprivileged_user()?;
        let cluster_dir = absolute(&config.cluster_dir)?;
        if cluster_dir.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(EmbeddedError::PathTooLong { path: cluster_dir });
        }
        prepare_dir(&cluster_dir, run_as.as_ref())?;
        if !cluster_dir.join("PG_VERSION").exists() {
            init_cluster(&bin_dir, &cluster_dir, run_as.as_ref())?;
        }
        stop_leftover(&cluster_dir);
        let (pid, exited) = spawn_server(&bin_dir, &cluster_dir, config, run_as.as_ref())?;
        let server = Self {
            cluster_dir,
            port: config.port,
            pid,
            exited: Mutex::new(exited),
            stopped: false,
        };
        server.wait_ready()?;
        tracing::info!(dir = %server.cluster_dir.display(), pid = pid.as_raw(), "embedded PostgreSQL ready");
        Ok(server)
    }

    /// A connection URL for `database` on this server (over its Unix socket).
    pub fn url(&self, database: &str) -> String {
        socket_url(&self.cluster_dir, self.port, database)
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Shuts the server down (fast shutdown, then escalating) and waits until it has exited.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        for signal in [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGKILL] {
            if kill(self.pid, signal).is_err() {
                break; // already gone
            }
            let exited = self.exited.lock().unwrap_or_else(|e| e.into_inner());
            match exited.recv_timeout(STOP_TIMEOUT) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    tracing::warn!(
                        ?signal,
                        "embedded PostgreSQL did not stop in time; escalating"
                    )
                }
            }
        }
        tracing::info!("embedded PostgreSQL stopped");
    }

    fn wait_ready(&self) -> Result<(), EmbeddedError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let pid_file = self.cluster_dir.join("postmaster.pid");
        loop {
            let exited = self
                .exited
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .try_recv();
            if exited.is_ok() {
                return Err(self.start_failed("the server exited during startup".into()));
            }
            if let Ok(text) = std::fs::read_to_string(&pid_file) {
                let lines: Vec<&str> = text.lines().collect();
                let ours = lines.first().map(|l| l.trim()) == Some(&self.pid.to_string());
                if ours && lines.get(7).map(|l| l.trim()) == Some("ready") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(self.start_failed(format!("not ready after {READY_TIMEOUT:?}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn start_failed(&self, reason: String) -> EmbeddedError {
        EmbeddedError::StartFailed {
            path: self.cluster_dir.clone(),
            reason,
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Finds the directory holding `initdb` and `postgres`.
fn find_binaries(configured: Option<&Path>) -> Result<PathBuf, EmbeddedError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    candidates.extend(configured.map(Path::to_path_buf));
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        candidates.push(dir.into());
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        candidates.push(String::from_utf8_lossy(&out.stdout).trim().into());
    }
    // Debian and Ubuntu install each major version under /usr/lib/postgresql/<major>/bin.
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                Some((major, e.path().join("bin")))
            })
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        candidates.extend(versions.into_iter().map(|(_, p)| p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    // A configured directory must hold the binaries: do not silently use another one.
    if let Some(dir) = configured {
        return if has(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(EmbeddedError::BinariesNotFound {
                searched: dir.display().to_string(),
            })
        };
    }
    candidates
        .iter()
        .find(|d| has(d))
        .cloned()
        .ok_or_else(|| EmbeddedError::BinariesNotFound {
            searched: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The user to run PostgreSQL as: `postgres` when we are root, ourselves otherwise.
fn unprivileged_user() -> Result<Option<User>, EmbeddedError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some(user)),
        _ => Err(EmbeddedError::NoPostgresUser),
    }
}

fn absolute(path: &Path) -> Result<PathBuf, EmbeddedError> {
    std::path::absolute(path).map_err(|source| EmbeddedError::Io {
        action: "resolving",
        path: path.to_path_buf(),
        source,
    })
}

/// Creates the cluster directory (mode 0700, owned by the server's user) and checks that the
/// server's user can reach it.
fn prepare_dir(dir: &Path, run_as: Option<&User>) -> Result<(), EmbeddedError> {
    let io = |action, source| EmbeddedError::Io {
        action,
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io("creating", e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io("setting permissions on", e))?;
    let Some(user) = run_as else { return Ok(()) };
    nix::unistd::chown(dir, Some(user.uid), Some(user.gid))
        .map_err(|e| io("changing owner of", e.into()))?;
    // Every ancestor must be searchable by the postgres user.
    for ancestor in dir.ancestors().skip(1) {
        let meta = std::fs::metadata(ancestor).map_err(|e| io("reading", e))?;
        let mode = meta.permissions().mode();
        use std::os::unix::fs::MetadataExt;
        let searchable = mode & 0o001 != 0
            || (meta.uid() == user.uid.as_raw() && mode & 0o100 != 0)
            || (meta.gid() == user.gid.as_raw() && mode & 0o010 != 0);
        if !searchable {
            return Err(EmbeddedError::NotTraversable {
                path: dir.to_path_buf(),
                reason: format!("{} has mode {:o}", ancestor.display(), mode & 0o777),
            });
        }
    }
    Ok(())
}

/// Runs `initdb` for a new cluster.
fn init_cluster(bin_dir: &Path, dir: &Path, run_as: Option<&User>) -> Result<(), EmbeddedError> {
    tracing::info!(dir = %dir.display(), "initialising embedded PostgreSQL cluster");
    let mut cmd = Command::new(bin_dir.join("initdb"));
    cmd.arg("-D")
        .arg(dir)
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        .stdin(Stdio::null());
    if let Some(user) = run_as {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    let out = cmd.output().map_err(|source| EmbeddedError::Io {
        action: "running initdb for",
        path: dir.to_path_buf(),
        source,
    })?;
    if !out.status.success() {
        // A failed initdb leaves a partial directory that would block the next attempt.
        let _ = std::fs::remove_file(dir.join("PG_VERSION"));
        return Err(EmbeddedError::InitDb {
            path: dir.to_path_buf(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Stops a server left running on this cluster by an earlier process, if any. A stale
/// `postmaster.pid` whose process is gone needs nothing: PostgreSQL ignores it.
fn stop_leftover(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(dir.join("postmaster.pid")) else {
        return;
    };
    let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
    else {
        return;
    };
    let pid = Pid::from_raw(pid);
    let is_postgres = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().starts_with("postgres"))
        .unwrap_or(false);
    if !is_postgres {
        return;
    }
    tracing::warn!(
        pid = pid.as_raw(),
        "stopping a leftover embedded PostgreSQL"
    );
    let _ = kill(pid, Signal::SIGINT);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline && kill(pid, None).is_ok() {
        std::thread::sleep(Duration::from_millis(50));
    }
    if kill(pid, None).is_ok() {
        let _ = kill(pid, Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Spawns the postmaster from a keeper thread that lives as long as the process and reaps it.
/// Returns its pid and a channel that fires when it exits.
fn spawn_server(
    bin_dir: &Path,
    dir: &Path,
    config: &EmbeddedConfig,
    run_as: Option<&User>,
) -> Result<(Pid, mpsc::Receiver<()>), EmbeddedError> {
    let log_path = dir.join("postgres.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|source| EmbeddedError::Io {
            action: "opening",
            path: log_path.clone(),
            source,
        })?;
    if let Some(user) = run_as {
        let _ = nix::unistd::chown(&log_path, Some(user.uid), Some(user.gid));
    }
    let mut cmd = Command::new(bin_dir.join("postgres"));
    cmd.arg("-D")
        .arg(dir)
        .arg("-k")
        .arg(dir)
        .args(["-p", &config.port.to_string()])
        .args(["-c", "listen_addresses="])
        .args(["-c", "max_connections=200"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // A later -c wins over an earlier one.
    for (name, value) in &config.server_options {
        cmd.arg("-c").arg(format!("{name}={value}"));
    }
    if let Some(user) = run_as {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    let parent = std::process::id() as i32;
    // SAFETY: the closure only calls async-signal-safe functions (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }

    let (spawned_tx, spawned_rx) = mpsc::channel();
    let (exited_tx, exited_rx) = mpsc::channel();
    let path = dir.to_path_buf();
    std::thread::Builder::new()
        .name("embedded-postgres".into())
        .spawn(move || {
            let mut child = match cmd.spawn() {
                Ok(child) => child,
                Err(e) => {
                    let _ = spawned_tx.send(Err(e));
                    return;
                }
            };
            let _ = spawned_tx.send(Ok(child.id()));
            let _ = child.wait();
            let _ = exited_tx.send(());
            // This thread must outlive the child: PR_SET_PDEATHSIG fires when the thread that
            // forked it ends, so it parks for the rest of the process once the child is gone.
            loop {
                std::thread::park();
            }
        })
        .map_err(|source| EmbeddedError::Io {
            action: "spawning the keeper thread for",
            path: path.clone(),
            source,
        })?;
    match spawned_rx.recv() {
        Ok(Ok(pid)) => Ok((Pid::from_raw(pid as i32), exited_rx)),
        Ok(Err(source)) => Err(EmbeddedError::Io {
            action: "starting postgres for",
            path,
            source,
        }),
        Err(_) => Err(EmbeddedError::StartFailed {
            path,
            reason: "the keeper thread died".into(),
        }),
    }
}

/// The URL of `database` on the cluster in `cluster_dir` (its socket directory).
pub fn socket_url(cluster_dir: &Path, port: u16, database: &str) -> String {
    format!(
        "postgresql://postgres@{}:{port}/{database}",
        urlencode_path(cluster_dir)
    )
}

/// Percent-encodes a socket directory for the host part of a URL.
fn urlencode_path(path: &Path) -> String {
    let mut out = String::new();
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(*b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
