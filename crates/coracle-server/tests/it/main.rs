//! Handler tests: the router driven in process (no socket), over a real store and executor in
//! a temporary data directory. One module per collection.

mod common;
mod experiments;
mod listing;
mod openapi;
mod pipelines;
mod recurring;
mod runs;
mod ui_pages;
mod ui_runs;
mod v1;
