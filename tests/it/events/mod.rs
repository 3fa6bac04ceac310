//! Events out (issue 15): the outbox written with every change, and its publishers.

mod nats;
mod outbox;
mod prune;
mod publisher;
mod sources;
mod webhooks;
