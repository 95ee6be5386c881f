//! The one integration-test binary: starts the real router (or the built binary) on
//! 127.0.0.1:0 with a temporary data directory.

mod accounts;
mod binary;
mod browser;
mod cli;
mod cli_run;
mod clients;
mod cloudrun;
mod conformance;
mod deploy_scan;
mod gateway;
mod gateway_http;
mod google_fake;
mod hosting;
mod manifests;
mod mirror;
mod official;
mod registry;
mod scan;
mod secrets;
mod snapshots;
mod support;
mod tidy;
mod web;
