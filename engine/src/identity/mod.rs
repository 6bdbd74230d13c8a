//! OrgKernel identity: tenant signing keys, AgentIdentity credentials,
//! ExecutionTokens and the DualToken check.

pub mod credential;
pub mod dualtoken;
mod hex_id;
pub mod key_id;
pub mod keys;
pub mod rotation;
pub mod sealed;
pub mod token;

pub use credential::{AgentCredential, AgentIdentityClaims};
pub use dualtoken::{
    DualTokenError, DualTokenVerifier, InMemoryNonceStore, NonceStore, RequestClaims, Signed,
    SignedRequest, StaticTrust, TenantTrust, ToolCall, VerifiedPrincipal,
};
pub use key_id::SigningKeyId;
pub use keys::{KeyPair, PublicKey, Signature, SignatureError};
pub use rotation::{Keyring, NotHonoured, RetiredKey, Retirement};
pub use sealed::{Kek, KekId, SealError, SealedSeed, TenantKey, TenantSeed};
pub use token::{
    ExecutionToken, ExecutionTokenClaims, NumericBound, ParameterRules, ParameterViolation,
};
