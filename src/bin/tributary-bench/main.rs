//! `tributary-bench`: end-to-end figures on this machine, against its own ceiling.
//!
//! `cargo run --release --bin tributary-bench -- ingest [--files N] [--lines N]` starts the
//! real service (in this process, on a fresh database: `DATABASE_URL`'s server or an embedded
//! one), installs DUMMY-PAY connectors through the HTTP API and times file on disk → payment
//! committed for (a) N single-payment files and (b) one JSON Lines file of N payments; then
//! measures, on the same database, the same rows written by a plain client with 1,000-row
//! multi-row upserts (the batched ceiling) and one row per transaction; both cases run with the
//! outbox off and on (`events.enabled`), in alternating order over `--rounds`, for the ratio.
//! Prints a table and one JSON line.
//! `… -- latency` the latency distribution of single requests on three routes;
//! `… -- api` measures `GET /payments?pageSize=100` latency under an open loop;
//! `… -- query` filtered pages (query language, sort) with their plans;
//! `… -- tasks` the runtime alone: one-shot tasks per second, memory per idle task, restore;
//! `… -- publish` events to a local NATS JetStream (a `nats-server` it starts): a backlog
//! drained, and publishing during ingestion.
//! Not a test: CI runs only a tiny smoke run of each scenario.

mod api;
mod ingest;
mod latency;
mod publish;
mod query;
mod service;
mod tasks;

use std::path::Path;

use clap::{Parser, Subcommand};
use tributary::storage::embedded::{EmbeddedConfig, EmbeddedPostgres};

#[derive(Parser)]
#[command(name = "tributary-bench", about = "End-to-end benchmarks of Tributary")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// `GET /payments?pageSize=100` on 100,000 payments: an open loop at a fixed rate (p50,
    /// p99), then the highest fixed rate whose p99 stays within 10 ms.
    Api {
        /// Payments stored.
        #[arg(long, default_value_t = 100_000)]
        payments: usize,
        /// Seconds per rate.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// The first rate, requests per second.
        #[arg(long, default_value_t = 500)]
        rate: u64,
    },
    /// Single requests' latencies (p1 … max) of `GET /payments?pageSize=100`, `GET
    /// /connectors` and a DUMMY-PAY install, one at a time: what the HTTP latency buckets
    /// were chosen from.
    Latency {
        /// Payments stored.
        #[arg(long, default_value_t = 100_000)]
        payments: usize,
        /// Requests per GET route (a tenth of them, at least 10, installs).
        #[arg(long, default_value_t = 2_000)]
        requests: usize,
    },
    /// Filtered pages of `GET /payments` (query language, sort) on N payments, one request at
    /// a time: p50, p99 and the plan PostgreSQL chooses for each.
    Query {
        /// Payments stored.
        #[arg(long, default_value_t = 100_000)]
        payments: usize,
        /// Requests per case.
        #[arg(long, default_value_t = 500)]
        requests: usize,
    },
    /// Files on disk → payments committed, against the database's own ceiling.
    Ingest {
        /// Single-payment files.
        #[arg(long, default_value_t = 30_000)]
        files: usize,
        /// Lines of the JSON Lines file.
        #[arg(long, default_value_t = 300_000)]
        lines: usize,
        /// Rounds of both cases with the outbox off and on, in alternating order; the table
        /// shows the median round's on/off ratio.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Events to a local NATS JetStream (it starts `nats-server -js`): a backlog of N
    /// payments' events drained, then N more published while they are ingested.
    Publish {
        /// Payments per case (one JSON Lines file each).
        #[arg(long, default_value_t = 100_000)]
        lines: usize,
    },
    /// The runtime alone: one-shot tasks scheduled → TERMINATED durable per second, resident
    /// memory per idle periodic task, boot restore of the live ones.
    Tasks {
        /// One-shot RUN_NOW tasks.
        #[arg(long, default_value_t = 10_000)]
        one_shot: usize,
        /// Idle periodic tasks (each runs once, then waits an hour).
        #[arg(long, default_value_t = 100_000)]
        idle: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (admin_url, _embedded, _dir) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => (url, None, None),
        _ => {
            let dir = tempfile::tempdir_in("/tmp")?;
            let pg = EmbeddedPostgres::start(&EmbeddedConfig::for_data_dir(
                dir.path(),
                Path::new(""),
                5432,
            ))?;
            (pg.url("postgres"), Some(pg), Some(dir))
        }
    };
    actix_rt::System::new().block_on(async move {
        match cli.scenario {
            Scenario::Ingest {
                files,
                lines,
                rounds,
            } => ingest::run(admin_url, files, lines, rounds).await,
            Scenario::Api {
                payments,
                seconds,
                rate,
            } => api::run(admin_url, payments, seconds, rate).await,
            Scenario::Publish { lines } => publish::run(admin_url, lines).await,
            Scenario::Tasks { one_shot, idle } => tasks::run(admin_url, one_shot, idle).await,
            Scenario::Query { payments, requests } => {
                query::run(admin_url, payments, requests).await
            }
            Scenario::Latency { payments, requests } => {
                latency::run(admin_url, payments, requests).await
            }
        }
    })
}
