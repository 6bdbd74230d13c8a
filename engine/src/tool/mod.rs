//! The tool registry's entries: what a tool is ([`spec`]) and where a
//! call of it goes ([`route`]).

pub mod route;
pub mod spec;

pub use route::{Route, boundary_violation};
pub use spec::{DEFAULT_CALL_TIMEOUT_MS, ToolInvocation, ToolPlacement, ToolSpec};
