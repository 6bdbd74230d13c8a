//! Saga compensation: when a step fails for good, the steps completed
//! before it are undone, latest first, by calling each one's compensation
//! endpoint. Each compensation is a call like any other: committed before
//! it is sent, retried under its tool's retry policy with one idempotency
//! key, its result committed. The mission closes once every compensation
//! has succeeded or failed for good.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::canonical::{self, CanonicalError, Domain};
use crate::ids::{MissionId, TenantId};
use crate::mission::tool_call::ToolCallRecord;
use crate::time::Timestamp;

pub const COMPENSATION_KEY_DOMAIN: Domain = Domain::new("aura.compensation-key/1");

/// The key a compensation endpoint receives: one per compensated step, the
/// same on every retry, never equal to a call's key.
pub fn compensation_key(
    tenant: &TenantId,
    mission: &MissionId,
    step: u32,
) -> Result<String, CanonicalError> {
    Ok(canonical::digest(COMPENSATION_KEY_DOMAIN, &(tenant, mission, step))?.to_hex())
}

/// Undoing one completed step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Compensation {
    pub step: u32,
    /// The idempotency key of the call being undone.
    pub compensates: String,
    /// What the call being undone returned; the compensation endpoint
    /// receives it.
    pub original_output: Value,
    /// The compensation call: its endpoint, key, attempts and result.
    pub call: ToolCallRecord,
}

impl Compensation {
    pub fn is_done(&self) -> bool {
        self.call.succeeded_output().is_some()
    }
    pub fn is_finished(&self) -> bool {
        self.is_done() || self.call.failed_for_good()
    }
}

/// A failed mission's way back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Saga {
    pub failed_step: u32,
    pub reason: String,
    pub started_at: Timestamp,
    /// Steps to undo, latest first: the order they are undone in.
    pub compensations: Vec<Compensation>,
    /// Completed steps that nothing undoes: their tool declares no
    /// compensation endpoint, or is governed only.
    pub not_compensable: Vec<u32>,
}

impl Saga {
    /// The compensation under way: the first not yet finished.
    pub fn current(&self) -> Option<&Compensation> {
        self.compensations.iter().find(|c| !c.is_finished())
    }

    pub fn current_mut(&mut self) -> Option<&mut Compensation> {
        self.compensations.iter_mut().find(|c| !c.is_finished())
    }

    pub fn is_finished(&self) -> bool {
        self.current().is_none()
    }

    /// What the failed mission's outcome says about it.
    pub fn summary(&self) -> Value {
        let steps = |done: bool| -> Vec<u32> {
            self.compensations
                .iter()
                .filter(|c| c.is_finished() && c.is_done() == done)
                .map(|c| c.step)
                .collect()
        };
        json!({
            "failed_step": self.failed_step,
            "reason": self.reason,
            "compensated": steps(true),
            "compensation_failed": steps(false),
            "not_compensable": self.not_compensable,
        })
    }
}
