//! Roles an API key carries: the engine's, since the directory that
//! grants them is replicated ([`aura_engine::directory::Role`]). Platform
//! keys keep theirs in the database, as these comma-separated names.

use std::collections::BTreeSet;

pub use aura_engine::directory::Role;
pub use aura_engine::directory::role::UnknownRole;

/// Roles as stored: comma-separated names.
pub fn join(roles: &BTreeSet<Role>) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The stored form back.
pub fn parse_list(stored: &str) -> Result<BTreeSet<Role>, UnknownRole> {
    stored.split(',').map(str::parse).collect()
}
