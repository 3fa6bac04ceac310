//! Events out (issue 15): the outbox written with every change, and its publishers.

mod outbox;
mod publisher;
mod webhooks;
