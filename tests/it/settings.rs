//! Settings: file, environment and DATABASE_URL precedence; errors name the key.

// figment's Jail closures return figment's (large) error type.
#![allow(clippy::result_large_err)]

use std::path::Path;

use figment::Jail;
use tributary::settings::{Settings, SettingsError};

use crate::helpers::ensure_server_started;

fn load_err(jail: &mut Jail, toml: &str) -> String {
    jail.create_file("t.toml", toml).expect("write file");
    match Settings::load(Path::new("t.toml"), true) {
        Ok(s) => panic!("expected an error for {toml:?}, got {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_shipped_settings_file_is_valid_and_documents_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tributary.toml");
    let settings = Settings::from_figment(
        figment::Figment::from(figment::providers::Serialized::defaults(Settings::default()))
            .merge(<figment::providers::Toml as figment::providers::Format>::file_exact(&path)),
    )
    .expect("shipped config is valid");
    // Every documented value is the default; the file also declares the demo connector.
    assert_eq!(
        Settings {
            connectors: Vec::new(),
            ..settings.clone()
        },
        Settings::default()
    );
    assert_eq!(settings.connectors.len(), 1);
    tributary::declared::validate(
        &tributary::connectors::registry(&settings),
        &settings.connectors,
    )
    .expect("the declared connector is valid");
}

#[test]
fn environment_overrides_the_file_and_database_url_wins() {
    // The harness reads DATABASE_URL once; read it before this test changes it.
    ensure_server_started();
    Jail::expect_with(|jail| {
        jail.create_file(
            "t.toml",
            r#"
            data_dir = "/var/lib/x"
            [server]
            bind = "127.0.0.1:9000"
            [database]
            url = "postgres://file@localhost/file"
            [storage]
            batch_size = 10
            "#,
        )?;
        let s = Settings::load(Path::new("t.toml"), true).expect("load");
        assert_eq!(s.server.bind.port(), 9000);
        assert_eq!(s.storage.batch_size, 10);

        jail.set_env("TRIBUTARY_SERVER__BIND", "127.0.0.1:9001");
        jail.set_env("TRIBUTARY_STORAGE__LINGER", "5ms");
        jail.set_env("DATABASE_URL", "postgres://env@localhost/env");
        let s = Settings::load(Path::new("t.toml"), true).expect("load");
        assert_eq!(s.server.bind.port(), 9001);
        assert_eq!(s.storage.linger, std::time::Duration::from_millis(5));
        assert_eq!(s.database.url, "postgres://env@localhost/env");
        assert_eq!(s.data_dir, Path::new("/var/lib/x"));
        assert!(!s.uses_embedded_database());
        Ok(())
    });
}

#[test]
fn the_nats_publisher_can_be_configured_by_environment_alone() {
    ensure_server_started();
    Jail::expect_with(|jail| {
        jail.create_file("t.toml", "")?;
        let s = Settings::load(Path::new("t.toml"), true).expect("load");
        assert_eq!(s.events.nats, None, "no NATS publisher unless configured");
        jail.set_env("TRIBUTARY_EVENTS__NATS__URL", "nats://nats.internal:4222");
        jail.set_env("TRIBUTARY_EVENTS__NATS__SUBJECT", "acme.payments");
        let s = Settings::load(Path::new("t.toml"), true).expect("load");
        let nats = s.events.nats.expect("[events.nats] from the environment");
        assert_eq!(nats.url, "nats://nats.internal:4222");
        assert_eq!(nats.subject, "acme.payments");
        assert_eq!(nats.stream, "payments", "the default stream");
        Ok(())
    });
}

#[test]
fn unknown_keys_and_bad_values_name_the_key_and_the_file() {
    ensure_server_started();
    Jail::expect_with(|jail| {
        // An empty DATABASE_URL is ignored, so the file's database.url is what gets checked.
        jail.set_env("DATABASE_URL", "");
        let e = load_err(jail, "[server]\nbnd = \"127.0.0.1:1\"\n");
        assert!(e.contains("server.bnd") && e.contains("t.toml"), "{e}");

        let e = load_err(jail, "colour = \"blue\"\n");
        assert!(e.contains("colour"), "{e}");

        let e = load_err(jail, "[storage]\nlinger = \"soon\"\n");
        assert!(e.contains("storage.linger"), "{e}");

        let e = load_err(jail, "[storage]\nbatch_size = 0\n");
        assert!(e.contains("storage.batch_size"), "{e}");

        let e = load_err(jail, "[server]\nbind = \"nowhere\"\n");
        assert!(e.contains("server.bind"), "{e}");

        let e = load_err(jail, "[database]\nurl = \"mysql://x\"\n");
        assert!(e.contains("database.url"), "{e}");

        let e = load_err(jail, "[log]\nformat = \"xml\"\n");
        assert!(e.contains("log.format"), "{e}");

        let e = load_err(
            jail,
            "[[connectors]]\nprovider = \"DUMMY-PAY\"\nname = \"a\"\n\
             [[connectors]]\nprovider = \"dummy-pay\"\nname = \"a\"\n",
        );
        assert!(
            e.contains("connectors[1]") && e.contains("declared twice"),
            "{e}"
        );

        jail.set_env("TRIBUTARY_SERVER__BIND", "nope");
        let e = load_err(jail, "");
        assert!(e.contains("server.bind") && e.contains("TRIBUTARY_"), "{e}");
        Ok(())
    });
}

#[test]
fn a_missing_settings_file_is_an_error_only_when_named() {
    let missing = Path::new("/nonexistent/tributary.toml");
    match Settings::load(missing, true) {
        Err(SettingsError::NotFound { path }) => assert_eq!(path, missing),
        other => panic!("expected NotFound, got {other:?}"),
    }
    Settings::load(missing, false).expect("defaults when the default file is absent");
}
