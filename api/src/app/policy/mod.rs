//! Policy: the tenant's Cedar bundles ([`bundles`]) and each namespace's
//! policy configuration ([`config`]): the stable bundle and canary
//! releases, the authority graph with its approval rules, deployment
//! routing and the reasoner.

pub mod bundles;
pub mod config;
