//! The Mission Layer: definition, 8-state machine, frozen context and
//! boundary, working state and sealed outcome.

pub mod boundary;
mod closed_form;
pub mod context;
pub mod definition;
pub mod execution;
pub mod frozen;
pub mod outcome;
pub mod record;
pub mod retry;
pub mod saga;
pub mod state;
pub mod timeouts;
pub mod tool_call;
mod tool_call_book;

pub use boundary::{
    AuthorityBoundary, AuthorityLevel, DataBoundary, DataClassification, MissionBoundary,
    PolicyBoundary, RuntimeBoundary, RuntimeLimits,
};
pub use context::{ContextError, MissionContext};
pub use definition::{DefinitionError, MissionDefinition};
pub use execution::{Execution, Lease, StepOutcome, StepReport};
pub use frozen::Frozen;
pub use outcome::{MissionOutcome, OutcomeKind, SealedOutcome};
pub use record::{
    CallDecision, HoldKind, Mission, MissionStateData, Plan, PlanStep, Run, StateChange,
    StateDataError, StepHold,
};
pub use retry::{Coefficient, OnExhaustion, RetryPolicy, RetryState};
pub use saga::{Compensation, Saga};
pub use state::{AbortReason, IllegalTransition, MissionState, Step};
pub use timeouts::{StepTimeout, StepTimeouts};
pub use tool_call::{CallFailure, CallResult, ToolCallRecord, ToolCallRequest};
