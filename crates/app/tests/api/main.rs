//! Integration tests: the real application on a random port, a fresh
//! database per test, a real HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod auth;
mod campaigns;
mod dashboard;
mod dashboard_authz;
mod dashboard_campaign_results;
mod dashboard_campaigns;
mod dashboard_imports;
mod dashboard_settings;
mod dashboard_subscribers;
mod dashboard_templates;
mod dkim;
mod dkimpy;
mod helpers;
mod imports;
mod lists;
mod lost_leases;
mod ops;
mod policy;
mod sending;
mod sending_priority;
mod service;
mod smtp_servers;
mod startup;
mod subscribers;
mod template_limits;
mod token_scopes;
mod tokens;
