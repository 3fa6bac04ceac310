//! Formance's own Python SDK (formance-sdk-python, pinned in tests/python/requirements.txt)
//! driving the real service: real clients find what our own tests miss (a field shape the SDK's
//! pydantic models refuse, a header it does not send).
//!
//! The harness, for every SDK test (one Rust test per script under tests/python/):
//! - [`venv_python`]: a virtualenv with the requirements, built once per machine under
//!   `target/python-venv/<hash>` (the hash of the requirements file and of the interpreter's
//!   version, so an edit or a new Python builds a new one). Without Python, venv or pip the
//!   test FAILS saying what to install, unless `TRIBUTARY_SKIP_PYTHON_SDK=1` is set;
//! - [`SdkService`]: the service in process (the SDK only needs HTTP) on a fresh database,
//!   with a static read token and a static write token;
//! - [`run_script`]: runs a script with the service's address and tokens in its environment,
//!   under a deadline, and returns its exit status, its output and its `RESULT` line.
//!
//! A new SDK test is a script under tests/python built on `sdk_harness.py` (its checks, a
//! `RESULT` line) and a Rust test here: `SdkService::start`, `run_script(name, env)`, then
//! assertions on `ScriptRun::result()` and on what the database holds.

mod bank_accounts;
mod connectors;
mod coverage;
mod legacy;
mod lists;
mod pools;
mod transfers;
mod webhooks;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tributary::settings::StaticTokenSettings;

use crate::helpers::{TestApp, TestDb, spawn_app_configured, test_settings};

/// Set to `1` to skip the SDK tests on a machine without Python (CI never sets it).
pub const SKIP_VAR: &str = "TRIBUTARY_SKIP_PYTHON_SDK";
/// The interpreter the venv is built from: `python3` unless this names another.
pub const PYTHON_VAR: &str = "TRIBUTARY_PYTHON";
/// A script that takes longer than this is killed and its test fails.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(180);

const READ_TOKEN: &str = "sdk-read-token-5b1e07";
const WRITE_TOKEN: &str = "sdk-write-token-c94d2a";

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// Whether the SDK tests are switched off on purpose (they never skip on their own).
pub fn skipped() -> bool {
    let skip = std::env::var(SKIP_VAR).is_ok_and(|v| v == "1");
    if skip {
        eprintln!("{SKIP_VAR}=1: the Python SDK test is skipped");
    }
    skip
}

/// What to do when the venv cannot be had.
fn install_hint(what: &str) -> String {
    format!(
        "the Python SDK tests need Python >= 3.10 with venv and pip (and PyPI reachable the \
         first time, to install tests/python/requirements.txt): {what}. On Debian/Ubuntu: \
         `apt-get install python3 python3-venv python3-pip`; another interpreter can be named \
         with {PYTHON_VAR}=/path/to/python3. To skip these tests instead, set {SKIP_VAR}=1."
    )
}

/// Runs a command to completion; its stdout, or what went wrong (with its stderr).
fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| install_hint(&format!("{what}: cannot run {cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(install_hint(&format!(
            "{what}: {cmd:?} exited with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The venv's interpreter, built at most once per process and reused across runs.
pub fn venv_python() -> PathBuf {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match VENV.get_or_init(build_venv) {
        Ok(python) => python.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn build_venv() -> Result<PathBuf, String> {
    let base = std::env::var(PYTHON_VAR).unwrap_or_else(|_| "python3".into());
    let version = run(
        Command::new(&base).args(["-c", "import sys; print(sys.version)"]),
        "python",
    )?;
    let requirements = python_dir().join("requirements.txt");
    let pinned = std::fs::read(&requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let key: String = Sha256::new()
        .chain_update(&pinned)
        .chain_update(version.as_bytes())
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    // CARGO_TARGET_TMPDIR is <target>/tmp: the venvs live beside it, in the target directory.
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("python-venv");
    let venv = root.join(&key);
    let python = venv.join("bin/python");
    if python.exists() {
        // A venv that no longer imports (its interpreter was removed, say) is built anew.
        if run(
            Command::new(&python).args(["-c", "import formance_sdk_python"]),
            "check",
        )
        .is_ok()
        {
            return Ok(python);
        }
        let _ = std::fs::remove_dir_all(&venv);
    }
    // Built under a name of this process's own, then renamed into place: a concurrent run
    // never sees a half-built venv (only `bin/python` is used, and it survives the rename).
    let building = root.join(format!("{key}.building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let started = Instant::now();
    let built = run(
        Command::new(&base).arg("-m").arg("venv").arg(&building),
        "creating the virtualenv",
    )
    .and_then(|_| {
        run(
            Command::new(building.join("bin/python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-input",
                    "-r",
                ])
                .arg(&requirements),
            "installing tests/python/requirements.txt",
        )
    });
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&building);
        return Err(e);
    }
    if std::fs::rename(&building, &venv).is_err() {
        // Another run got there first: use its venv.
        let _ = std::fs::remove_dir_all(&building);
    }
    eprintln!(
        "built the Python SDK venv {} in {:.1} s",
        venv.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(python)
}

fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The service under test: authentication on, a static read token and a static write token.
pub struct SdkService {
    /// The running service.
    pub app: TestApp,
    /// `http://127.0.0.1:<port>`: the SDK's `server_url` (its paths start with /api/payments).
    pub url: String,
}

impl SdkService {
    /// Starts the service on a fresh database with both tokens (named `sdk-reader` and
    /// `sdk-writer` in the audit log).
    pub async fn start() -> SdkService {
        let mut settings = test_settings();
        settings.auth.tokens = vec![
            StaticTokenSettings {
                name: "sdk-reader".into(),
                sha256: sha256_hex(READ_TOKEN),
                scopes: vec!["payments:read".into()],
            },
            StaticTokenSettings {
                name: "sdk-writer".into(),
                sha256: sha256_hex(WRITE_TOKEN),
                scopes: vec!["payments:write".into()],
            },
        ];
        let registry = tributary::connectors::registry(&settings);
        let app = spawn_app_configured(TestDb::new().await, registry, &settings).await;
        let url = app
            .base
            .strip_suffix(tributary::api::BASE_PATH)
            .expect("the base URL ends with the API's base path")
            .to_string();
        SdkService { app, url }
    }

    /// The environment every script reads (tests/python/sdk_harness.py).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("TRIBUTARY_URL".into(), self.url.clone()),
            ("TRIBUTARY_READ_TOKEN".into(), READ_TOKEN.into()),
            ("TRIBUTARY_WRITE_TOKEN".into(), WRITE_TOKEN.into()),
        ]
    }
}

/// What a script did.
#[derive(Debug)]
pub struct ScriptRun {
    /// Whether it exited 0 (every check passed).
    pub success: bool,
    /// Its stdout: one `ok <call>: …` line per SDK call, then `RESULT {json}`.
    pub stdout: String,
    /// Its stderr: the traceback when it failed.
    pub stderr: String,
}

impl ScriptRun {
    /// The JSON of its `RESULT` line; panics with the whole output when it failed.
    pub fn result(&self) -> Value {
        assert!(self.success, "the SDK script failed:\n{self}");
        let line = self
            .stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("RESULT "))
            .unwrap_or_else(|| panic!("no RESULT line:\n{self}"));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("RESULT is not JSON ({e}):\n{self}"))
    }
}

impl std::fmt::Display for ScriptRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// Runs `tests/python/<script>` with the venv's interpreter and `env`, off the test's runtime
/// (the service keeps serving meanwhile); killed and failed past [`SCRIPT_DEADLINE`].
pub async fn run_script(script: &str, env: Vec<(String, String)>) -> ScriptRun {
    let python = venv_python();
    let script = python_dir().join(script);
    actix_rt::task::spawn_blocking(move || {
        let mut child = Command::new(&python)
            .arg(&script)
            .current_dir(python_dir())
            .envs(env)
            // No __pycache__ in the source tree; output as it happens.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
        let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
        let status = crate::cli::wait_exit(&mut child, SCRIPT_DEADLINE);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let run = ScriptRun {
            success: status.is_some_and(|s| s.success()),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        };
        assert!(
            status.is_some(),
            "{} did not finish within {SCRIPT_DEADLINE:?}:\n{run}",
            script.display()
        );
        run
    })
    .await
    .expect("the script's thread")
}
