//! Integration tests: one binary, so the PostgreSQL server and the migrated template are built
//! once per run (see `helpers`).

mod helpers;

mod api;
mod auth;
mod cli;
mod crash;
mod declared;
mod dummypay;
mod embedded;
mod events;
mod example;
mod health;
mod ingest;
mod instance_lock;
mod metrics;
mod migrations;
mod money_out_crash;
mod outage;
mod python_sdk;
mod runtime;
mod secrets;
mod secrets_at_rest;
mod settings;
mod sigterm;
mod storage_actor;
mod tls;
mod traces;
mod transfers;
mod transfers_model;
