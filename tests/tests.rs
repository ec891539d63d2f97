//! Integration tests: the real binary on real captures. One test binary (see Cargo.toml).

mod util;

mod adversarial;
mod agree;
mod cli;
mod diff;
mod inventory;
mod postgres;
mod protocols;
mod reports;
mod sensor;
mod specs;
mod threads;
mod tls;
