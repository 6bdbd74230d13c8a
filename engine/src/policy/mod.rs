//! Control-plane decisions on Cedar: bundles, the PERMIT / DENY / ESCALATE
//! decision layer, and the entities AURA decides over.

pub mod authority;
pub mod bundle;
pub mod canary;
pub mod decision;
mod direct;
pub mod entities;
pub mod reasoner;
pub mod routing;
pub mod schema;
pub mod testing;

pub use bundle::{BundleError, BundleProblem, BundleSource, CompiledBundle, Escalation};
pub use decision::{Decision, DecisionRecord, EntityRef, PolicyRequest, PreparedEntities, decide};
