//! The connector SDK: everything a connector author uses, and nothing of the runtime's
//! internals. A connector is a [`Loader`] (validates config, builds the connector), a
//! [`Connector`] (install, uninstall, resolve descriptors into tasks) and its [`Task`]s, which
//! run with a [`TaskContext`].
//!
//! This crate depends on nothing of the runtime (no actix, no PostgreSQL client): a connector
//! crate that depends on it alone cannot reach the runtime's internals, and the compiler checks
//! it. The runtime implements [`host::Host`] behind the contexts. The `openapi` feature derives
//! `utoipa::ToSchema` for the types the HTTP API documents.

pub mod bank_accounts;
pub mod clock;
pub mod connector;
pub mod domain;
pub mod error;
pub mod host;
pub mod ingest;
pub mod money_out;
pub mod schedule;
pub mod task;
pub mod webhooks;

pub use bank_accounts::{BankAccount, ExternalBankAccounts};
pub use clock::{Clock, SystemClock, TestClock};
pub use connector::{
    Config, ConfigError, ConfigSchema, Connector, ConnectorContext, FieldError, FieldSpec, Loader,
};
pub use error::TaskError;
pub use money_out::{
    InitiationOutcome, InitiationType, MoneyOut, PaymentInitiation, PaymentReversal,
    ReversalOutcome,
};
pub use schedule::{OnInterrupt, Restart, Schedule, ScheduleOptions, TaskStatus};
pub use task::{FinalWrite, Scheduler, Task, TaskContext};
pub use webhooks::{Unverified, WebhookRequest, Webhooks};
