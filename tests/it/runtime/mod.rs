//! Actor-level tests of the runtime: real actix System, real PostgreSQL, test clock.

mod durability;
mod lifecycle;
mod observability;
mod recovery;
mod restarts;
mod scheduling;
pub mod support;
mod sync;
