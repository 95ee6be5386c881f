//! The one integration-test binary: starts the real router (or the built binary) on
//! 127.0.0.1:0 with a temporary data directory.

mod accounts;
mod binary;
mod cli;
mod cli_run;
mod clients;
mod conformance;
mod deploy_scan;
mod gateway;
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
