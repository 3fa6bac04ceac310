//! Actor-level tests of the runtime: real actix System, real PostgreSQL, test clock.

mod durability;
mod lifecycle;
mod model;
mod observability;
mod races;
mod recovery;
mod restarts;
mod scheduling;
pub mod support;
mod sync;
