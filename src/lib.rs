//! Tributary: a payments connector runtime (Formance Payments v1 connectors, rebuilt on actors).
//!
//! The request path: [`api`] handlers send messages to the [`runtime`] actors and read from
//! the [`storage`] pool; every write goes through the storage actor. Connector code sees only
//! the [`sdk`]: the SDK and each connector are crates of their own in the workspace
//! (`crates/`), and a connector crate depends on `tributary-sdk` alone, so the compiler checks
//! it. [`connectors`] lists the built-in ones.

pub mod api;
pub mod app;
pub mod bank_accounts;
pub mod cli;
pub mod connectors;
pub mod declared;
pub mod domain;
pub mod events;
pub mod exit;
pub mod ids;
pub mod money_out;
pub mod monitoring;
pub mod redact;
pub mod runtime;
pub mod secrets;
pub mod settings;
pub mod storage;
pub mod telemetry;
pub mod webhooks;

/// The connector SDK (the `tributary-sdk` crate), under its old path `tributary::sdk`.
pub use tributary_sdk as sdk;
