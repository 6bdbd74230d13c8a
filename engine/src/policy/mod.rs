//! Control-plane decisions on Cedar: bundles, the PERMIT / DENY / ESCALATE
//! decision layer, and the entities AURA decides over.

pub mod bundle;
pub mod decision;
pub mod schema;

pub use bundle::{BundleError, BundleProblem, BundleSource, CompiledBundle, Escalation};
pub use decision::{Decision, DecisionRecord, EntityRef, PolicyRequest, PreparedEntities, decide};
