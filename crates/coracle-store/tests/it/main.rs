//! Integration tests of the metadata store, each against a fresh database in a temporary
//! directory (or in memory).

mod artifacts;
mod catalog;
mod common;
mod concurrency;
mod latency;
mod listing;
mod open;
mod recurring;
mod resources;
mod run_api;
mod runs;
mod tasks;
