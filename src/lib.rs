//! Tributary: a payments connector runtime (Formance Payments v1 connectors, rebuilt on actors).
//!
//! The request path: [`api`] handlers send messages to the [`runtime`] actors and read from
//! the [`storage`] pool; every write goes through the storage actor. Connector code in
//! [`connectors`] sees only the [`sdk`].

pub mod api;
pub mod app;
pub mod cli;
pub mod connectors;
pub mod declared;
pub mod domain;
pub mod ids;
pub mod redact;
pub mod runtime;
pub mod sdk;
pub mod settings;
pub mod storage;
pub mod telemetry;
