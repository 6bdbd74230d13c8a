//! OrgKernel identity: tenant signing keys, AgentIdentity credentials,
//! ExecutionTokens and the DualToken check.

pub mod credential;
pub mod dualtoken;
pub mod keys;
pub mod sealed;
pub mod token;

pub use credential::{AgentCredential, AgentIdentityClaims};
pub use dualtoken::{
    DualTokenError, DualTokenVerifier, InMemoryNonceStore, NonceStore, RequestClaims, Signed,
    SignedRequest, StaticTrust, TenantTrust, ToolCall, VerifiedPrincipal,
};
pub use keys::{KeyPair, PublicKey, Signature, SignatureError};
pub use sealed::{Kek, KekId, SealError, SealedSeed, TenantKey, TenantSeed};
pub use token::{
    ExecutionToken, ExecutionTokenClaims, NumericBound, ParameterRules, ParameterViolation,
};
