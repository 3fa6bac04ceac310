//! The keyring: AES-256 keys by key id, the last one current (new values are encrypted under
//! it; the others only decrypt values not yet re-encrypted).
//!
//! Format, the same in `TRIBUTARY_ENCRYPTION_KEY` and in a key file: entries `kid=<base64 of
//! 32 bytes>` separated by newlines, commas or spaces, `#` starting a comment line. A lone
//! `<base64 of 32 bytes>` is the key id `default` (the simplest env-var setup). A key id is 1 to
//! 64 of `A-Z a-z 0-9 _ . -`. Anything else is refused with a message naming the source and
//! the entry's position, never its text.
//!
//! Sources, first found wins: `TRIBUTARY_ENCRYPTION_KEY`, `encryption.key_file`, then
//! `<data_dir>/encryption.key`, created at first start (mode 0600, written to a temporary file
//! and linked into place, so it is never half-written and never overwrites an existing one).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::OsRng;
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{KEY_ENV, SecretsError};

/// The key file's name under the data directory when no source is configured.
pub const DEFAULT_KEY_FILE: &str = "encryption.key";

/// The id a lone key (no `kid=`) gets.
pub const DEFAULT_KID: &str = "default";

/// Keys by id, in order; the last is current.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(String, Aes256Gcm)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The ids only: never key material.
        f.debug_struct("Keyring")
            .field("kids", &self.kids())
            .finish()
    }
}

/// Whether `kid` is a well-formed key id.
fn valid_kid(kid: &str) -> bool {
    (1..=64).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// 32 bytes from standard base64, or `None`.
fn key_bytes(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok().filter(|b| b.len() == 32)
}

/// The entries of one line of a keyring: none on a comment line.
fn line_entries(line: &str) -> impl Iterator<Item = &str> {
    let comment = line.trim_start().starts_with('#');
    line.split(|c: char| c == ',' || c.is_whitespace())
        .filter(move |e| !comment && !e.is_empty())
}

/// The key id an entry stands for: [`DEFAULT_KID`] for a lone key (whose base64 padding also
/// holds a `=`), the text before `=` otherwise.
fn entry_kid(entry: &str) -> &str {
    match key_bytes(entry) {
        Some(_) => DEFAULT_KID,
        None => entry.split_once('=').map_or(entry, |(kid, _)| kid),
    }
}

impl Keyring {
    /// Parses a keyring; `source_name` names the variable or file in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, SecretsError> {
        let bad = |problem: String| SecretsError::BadKeyMaterial {
            source_name: source_name.to_string(),
            problem,
        };
        let mut keys: Vec<(String, Aes256Gcm)> = Vec::new();
        let entries = text.lines().flat_map(line_entries);
        for (i, entry) in entries.enumerate() {
            let n = i + 1;
            let (kid, bytes) = match key_bytes(entry) {
                Some(bytes) => (DEFAULT_KID, bytes),
                None => {
                    let Some((kid, key)) = entry.split_once('=') else {
                        return Err(bad(format!(
                            "entry {n} is neither `kid=<base64 of 32 bytes>` nor a base64 key of 32 bytes"
                        )));
                    };
                    if !valid_kid(kid) {
                        return Err(bad(format!(
                            "entry {n}: the key id must be 1 to 64 of A-Z a-z 0-9 _ . -"
                        )));
                    }
                    let bytes = match STANDARD.decode(key) {
                        Ok(b) if b.len() == 32 => b,
                        Ok(b) => {
                            return Err(bad(format!(
                                "key {kid:?} is {} bytes; AES-256 needs exactly 32 (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)",
                                b.len()
                            )));
                        }
                        Err(_) => {
                            return Err(bad(format!("key {kid:?} is not standard base64")));
                        }
                    };
                    (kid, bytes)
                }
            };
            if keys.iter().any(|(k, _)| k == kid) {
                return Err(bad(format!("key id {kid:?} appears twice")));
            }
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| bad(format!("key {kid:?} is not 32 bytes")))?;
            keys.push((kid.to_string(), cipher));
        }
        if keys.is_empty() {
            return Err(bad("holds no key".into()));
        }
        Ok(Self { keys })
    }

    /// The current key: its id and cipher.
    pub fn current(&self) -> (&str, &Aes256Gcm) {
        let (kid, key) = self.keys.last().expect("a keyring is never empty");
        (kid, key)
    }

    /// The key with id `kid`.
    pub fn get(&self, kid: &str) -> Option<&Aes256Gcm> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, c)| c)
    }

    /// Every key id, oldest first.
    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|(k, _)| k.clone()).collect()
    }
}

/// Where the keyring comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `TRIBUTARY_ENCRYPTION_KEY` (read once: a process's environment does not change).
    Env,
    /// A key file (re-read when it changes, so a running service sees a rotation).
    File(PathBuf),
    /// A random key held in memory only ([`super::Vault::ephemeral`]: benchmarks and tests
    /// whose connectors are never read back by another process).
    Memory,
}

impl KeySource {
    /// How errors and logs name it.
    pub fn name(&self) -> String {
        match self {
            KeySource::Env => KEY_ENV.to_string(),
            KeySource::File(p) => format!("key file {}", p.display()),
            KeySource::Memory => "the in-memory keyring".to_string(),
        }
    }

    /// Picks the source: the variable, the configured file, or the default file under
    /// `data_dir` (created if missing). Answers the source and its keyring.
    pub fn resolve(key_file: &Path, data_dir: &Path) -> Result<(Self, Keyring), SecretsError> {
        if let Ok(text) = std::env::var(KEY_ENV)
            && !text.trim().is_empty()
        {
            if !key_file.as_os_str().is_empty() {
                tracing::warn!(key_file = %key_file.display(),
                    "{KEY_ENV} is set: encryption.key_file is ignored");
            }
            return Ok((KeySource::Env, Keyring::parse(&text, KEY_ENV)?));
        }
        let path = if key_file.as_os_str().is_empty() {
            let path = data_dir.join(DEFAULT_KEY_FILE);
            if !path.exists() {
                create_key_file(&path)?;
                tracing::warn!(path = %path.display(),
                    "created a new encryption key file for connector secrets: back it up (without it the stored secrets cannot be read), or set {KEY_ENV} or encryption.key_file");
            }
            path
        } else {
            key_file.to_path_buf()
        };
        let source = KeySource::File(path);
        let keyring = source.read()?;
        Ok((source, keyring))
    }

    /// Reads the keyring from this source.
    pub fn read(&self) -> Result<Keyring, SecretsError> {
        match self {
            KeySource::Env => {
                let text = std::env::var(KEY_ENV).unwrap_or_default();
                Keyring::parse(&text, KEY_ENV)
            }
            KeySource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
                if let Ok(meta) = std::fs::metadata(path)
                    && meta.permissions().mode() & 0o077 != 0
                {
                    tracing::warn!(path = %path.display(),
                        "the encryption key file is readable by other users: chmod 600 it");
                }
                Keyring::parse(&text, &self.name())
            }
            KeySource::Memory => Err(SecretsError::BadKeyMaterial {
                source_name: self.name(),
                problem: "cannot be read again".into(),
            }),
        }
    }
}

fn file_error(path: &Path, e: std::io::Error) -> SecretsError {
    SecretsError::KeyFile {
        path: path.display().to_string(),
        problem: e.to_string(),
    }
}

/// A fresh `kid=base64` entry with a random key and a key id not in `taken`.
pub fn new_entry(taken: &[String]) -> (String, String) {
    let key = Aes256Gcm::generate_key(&mut OsRng);
    loop {
        let kid = format!("k{:08x}", rand::random::<u32>());
        if !taken.contains(&kid) {
            let line = format!("{kid}={}", STANDARD.encode(key));
            return (kid, line);
        }
    }
}

/// `text` written to a new 0600 file in `path`'s directory, synced, ready to be put in place.
fn staged(path: &Path, text: &str) -> Result<tempfile::NamedTempFile, SecretsError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
    // tempfile creates it with mode 0600.
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| file_error(path, e))?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.as_file().sync_all())
        .map_err(|e| file_error(path, e))?;
    Ok(file)
}

/// Syncs a directory so that a file just linked or renamed into it survives a crash.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let _ = d.sync_all();
    }
}

const HEADER: &str = "# Tributary's keys for connector secrets at rest: kid=base64, the last one current.\n# Keep this file secret and backed up; `tributary rotate-key` adds keys.\n";

/// Creates a key file with one new key, atomically; an existing file is never overwritten (a
/// concurrent creator's file is kept and used).
pub fn create_key_file(path: &Path) -> Result<(), SecretsError> {
    let (_, line) = new_entry(&[]);
    let file = staged(path, &format!("{HEADER}{line}\n"))?;
    match file.persist_noclobber(path) {
        Ok(_) => {}
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(file_error(path, e.error)),
    }
    sync_dir(path);
    Ok(())
}

/// Appends a new key to a key file, which becomes current; answers its id. The file is
/// replaced atomically (a reader sees the old file or the new one, never a part).
pub fn add_key(path: &Path) -> Result<String, SecretsError> {
    let source = KeySource::File(path.to_path_buf());
    let keyring = source.read()?;
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    let (kid, line) = new_entry(&keyring.kids());
    let mut text = text;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&line);
    text.push('\n');
    replace(path, &text)?;
    Ok(kid)
}

/// Rewrites a key file keeping only the keys whose ids are in `keep` (in their order).
pub fn retain_keys(path: &Path, keep: &[String]) -> Result<(), SecretsError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    // Entry by entry, as `Keyring::parse` reads them: a line may hold several, and a lone
    // key (`default`) has no `kid=` prefix.
    let mut kept = String::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            kept.push_str(line);
            kept.push('\n');
            continue;
        }
        for entry in line_entries(line).filter(|e| keep.iter().any(|k| k == entry_kid(e))) {
            kept.push_str(entry);
            kept.push('\n');
        }
    }
    // Never write a file that would not load.
    Keyring::parse(&kept, &KeySource::File(path.to_path_buf()).name())?;
    replace(path, &kept)
}

fn replace(path: &Path, text: &str) -> Result<(), SecretsError> {
    let file = staged(path, text)?;
    file.persist(path).map_err(|e| file_error(path, e.error))?;
    sync_dir(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn entries_with_ids_the_last_current_and_a_lone_key_as_default() {
        let ring = Keyring::parse(
            &format!("# comment\nold={}\n\nnew={}\n", b64(1), b64(2)),
            "x",
        )
        .unwrap();
        assert_eq!(ring.kids(), ["old", "new"]);
        assert_eq!(ring.current().0, "new");
        let ring = Keyring::parse(&format!("a={}, b={}", b64(1), b64(2)), "x").unwrap();
        assert_eq!(ring.kids(), ["a", "b"]);
        let ring = Keyring::parse(&format!("  {}  ", b64(3)), "x").unwrap();
        assert_eq!(ring.kids(), [DEFAULT_KID]);
    }

    #[test]
    fn bad_material_is_refused_naming_the_source_never_the_key() {
        let short = STANDARD.encode([7u8; 16]);
        for text in [
            String::new(),
            "# only a comment".to_string(),
            "not-a-key".to_string(),
            format!("k1={short}"),
            "k1=***".to_string(),
            format!("bad id={}", b64(1)),
            format!("k1={}\nk1={}", b64(1), b64(2)),
        ] {
            let e = Keyring::parse(&text, "TRIBUTARY_ENCRYPTION_KEY").unwrap_err();
            let shown = e.to_string();
            assert!(shown.starts_with("TRIBUTARY_ENCRYPTION_KEY: "), "{shown}");
            assert!(!shown.contains(&short), "{shown}");
        }
        let e = Keyring::parse(&format!("k1={short}"), "f").unwrap_err();
        assert!(e.to_string().contains("16 bytes"), "{e}");
    }

    #[test]
    fn a_key_file_is_created_0600_never_overwritten_and_grows_on_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/encryption.key");
        create_key_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = std::fs::read_to_string(&path).unwrap();
        create_key_file(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
        let source = KeySource::File(path.clone());
        let old = source.read().unwrap().kids();
        let kid = add_key(&path).unwrap();
        let ring = source.read().unwrap();
        assert_eq!(ring.current().0, kid);
        assert_eq!(ring.kids().len(), 2);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        retain_keys(&path, std::slice::from_ref(&kid)).unwrap();
        assert_eq!(source.read().unwrap().kids(), [kid]);
        assert!(retain_keys(&path, &old).is_err(), "would empty the file");
    }

    #[test]
    fn retaining_keys_reads_entries_as_the_parser_does() {
        // A lone key is `default` (its base64 ends in `=`), and one line may hold several
        // entries: keeping `default` and `b` must keep exactly those two keys.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("encryption.key");
        std::fs::write(
            &path,
            format!("# keys\na={}, b={}\n{}\n", b64(1), b64(2), b64(3)),
        )
        .unwrap();
        let keep = [DEFAULT_KID.to_string(), "b".to_string()];
        retain_keys(&path, &keep).unwrap();
        let ring = KeySource::File(path.clone()).read().unwrap();
        assert_eq!(ring.kids(), ["b", DEFAULT_KID]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# keys\n") && !text.contains(&b64(1)),
            "{text}"
        );
    }
}
