//! End-to-end tests: the real `sessiond` binary over HTTP, on SQLite and on
//! PostgreSQL (each test gets a fresh database or schema). PostgreSQL tests
//! are skipped loudly when no server can be reached, and fail under CI.

mod analytics;
mod audit;
mod auth_flow;
mod cache;
mod concurrency;
mod date_ranges;
mod docs_page;
mod errors;
mod forgery;
mod forward_auth;
mod geo;
mod hardening;
mod input_rules;
mod keys;
mod last_admin;
mod lifecycle;
mod limits;
mod logs;
mod metrics;
mod mmdb;
mod multi_instance;
mod nginx;
mod oauth;
mod openapi;
mod outage;
mod password;
mod pg_cluster;
mod sessions;
mod storage_faults;
mod support;
mod tracking_sweeper;
