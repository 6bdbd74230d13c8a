//! The DualToken check run before every tool call: the agent proves it holds
//! its identity key (a signed request), and presents a tenant-signed
//! credential for that key plus a tenant-signed ExecutionToken for the
//! mission. Every failure has its own error so the gateway can say exactly
//! why a call was refused, and audit it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::canonical::{self, CanonicalError, Domain};
use crate::digest::Digest;
use crate::identity::credential::{AgentCredential, CREDENTIAL_DOMAIN};
use crate::identity::key_id::SigningKeyId;
use crate::identity::keys::{KeyPair, PublicKey, Signature};
use crate::identity::rotation::{Keyring, NotHonoured};
use crate::identity::token::{ExecutionToken, ParameterViolation, TOKEN_DOMAIN};
use crate::ids::{AgentId, MissionId, OrgUnitId, TenantId, TokenId, ToolName};
use crate::time::{Millis, Timestamp};

pub const REQUEST_DOMAIN: Domain = Domain::new("aura.agent-request/1");

/// Which signed object a failure is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signed {
    Request,
    Credential,
    Token,
}

impl fmt::Display for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signed::Request => "request",
            Signed::Credential => "agent credential",
            Signed::Token => "execution token",
        })
    }
}

/// Why a DualToken check failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum DualTokenError {
    #[error("the {0} signature does not verify")]
    BadSignature(Signed),
    #[error(
        "the {0} is signed by a tenant key retired as compromised: ask the tenant for a new one"
    )]
    KeyCompromised(Signed),
    #[error("the {object} is not valid before {from}")]
    NotYetValid { object: Signed, from: Timestamp },
    #[error("the {object} expired at {at}")]
    Expired { object: Signed, at: Timestamp },
    #[error("agent credential serial {serial} has been revoked")]
    Revoked { serial: u64 },
    #[error("the {object} belongs to tenant `{found}`, not `{expected}`")]
    WrongTenant {
        object: Signed,
        expected: TenantId,
        found: TenantId,
    },
    #[error("the execution token is for mission `{found}`, not `{expected}`")]
    WrongMission {
        expected: MissionId,
        found: MissionId,
    },
    #[error(
        "the execution token was issued to agent `{token_agent}`, but the credential is for `{credential_agent}`"
    )]
    AgentMismatch {
        token_agent: AgentId,
        credential_agent: AgentId,
    },
    #[error("tool `{0}` is not allowed by the execution token")]
    ToolOutOfScope(ToolName),
    #[error("tool `{tool}`: {violation}")]
    ParameterOutOfBounds {
        tool: ToolName,
        violation: ParameterViolation,
    },
    #[error("nonce was already used; every signed request needs a fresh nonce")]
    ReplayedNonce,
    #[error("nonce must be 16 to 128 visible ASCII characters")]
    MalformedNonce,
    #[error(
        "request time {request} is {skew_ms} ms away from the gateway clock; at most {allowed_ms} ms is allowed"
    )]
    ClockSkew {
        request: Timestamp,
        skew_ms: u64,
        allowed_ms: u64,
    },
    #[error("request could not be encoded: {0}")]
    Encoding(#[from] CanonicalError),
}

impl NotHonoured {
    /// An unknown key id is refused as a bad signature: that way a caller
    /// cannot tell an unknown key from a tenant that does not exist.
    fn refusal(self, object: Signed) -> DualTokenError {
        match self {
            NotHonoured::Unknown => DualTokenError::BadSignature(object),
            NotHonoured::Compromised => DualTokenError::KeyCompromised(object),
        }
    }
}

impl DualTokenError {
    /// A stable machine-readable code, used as the problem type suffix.
    pub fn code(&self) -> &'static str {
        match self {
            DualTokenError::BadSignature(_) => "bad-signature",
            DualTokenError::KeyCompromised(_) => "key-compromised",
            DualTokenError::NotYetValid { .. } => "not-yet-valid",
            DualTokenError::Expired { .. } => "expired",
            DualTokenError::Revoked { .. } => "revoked",
            DualTokenError::WrongTenant { .. } => "wrong-tenant",
            DualTokenError::WrongMission { .. } => "wrong-mission",
            DualTokenError::AgentMismatch { .. } => "agent-mismatch",
            DualTokenError::ToolOutOfScope(_) => "tool-out-of-scope",
            DualTokenError::ParameterOutOfBounds { .. } => "parameter-out-of-bounds",
            DualTokenError::ReplayedNonce => "replayed-nonce",
            DualTokenError::MalformedNonce => "malformed-nonce",
            DualTokenError::ClockSkew { .. } => "clock-skew",
            DualTokenError::Encoding(_) => "malformed-request",
        }
    }
}

/// What the agent signs: the HTTP request it is making, bound to the
/// credential and token it presents with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestClaims {
    pub method: String,
    pub path: String,
    pub body_digest: Digest,
    pub timestamp: Timestamp,
    pub nonce: String,
    pub credential_serial: u64,
    pub token: TokenId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedRequest {
    pub claims: RequestClaims,
    pub signature: Signature,
}

impl SignedRequest {
    /// Signs a request with the agent's own key (what an agent SDK does).
    pub fn sign(claims: RequestClaims, agent_key: &KeyPair) -> Result<Self, CanonicalError> {
        let signature = agent_key.sign(REQUEST_DOMAIN, &claims)?;
        Ok(SignedRequest { claims, signature })
    }
}

/// The tool call the request asks for.
#[derive(Clone, Copy, Debug)]
pub struct ToolCall<'a> {
    pub tenant: &'a TenantId,
    pub mission: &'a MissionId,
    pub tool: &'a ToolName,
    pub arguments: &'a Value,
}

/// What the verifier must know of the tenant.
pub trait TenantTrust {
    /// The honoured tenant key `id` names (no id: the tenant's first key).
    fn tenant_key(&self, id: Option<&SigningKeyId>) -> Result<PublicKey, NotHonoured>;
    fn is_revoked(&self, serial: u64) -> bool;
}

/// A tenant's honoured keys with a set of revoked serials.
#[derive(Debug, Clone)]
pub struct StaticTrust {
    pub keys: Keyring,
    pub revoked: BTreeSet<u64>,
}

impl TenantTrust for StaticTrust {
    fn tenant_key(&self, id: Option<&SigningKeyId>) -> Result<PublicKey, NotHonoured> {
        self.keys.get(id)
    }
    fn is_revoked(&self, serial: u64) -> bool {
        self.revoked.contains(&serial)
    }
}

/// Remembers nonces for as long as a request carrying them could still be
/// inside the clock-skew window. Redis-backed in a cluster, in-process on a
/// single node.
pub trait NonceStore: Send + Sync {
    /// Records the nonce; returns false if it was already recorded and has
    /// not expired.
    fn first_use(&self, key: &str, expires_at: Timestamp, now: Timestamp) -> bool;
}

/// A nonce store for one process.
#[derive(Debug, Default)]
pub struct InMemoryNonceStore {
    inner: Mutex<NonceMap>,
}

#[derive(Debug, Default)]
struct NonceMap {
    seen: HashMap<String, Timestamp>,
    sweep_at: usize,
}

impl NonceStore for InMemoryNonceStore {
    fn first_use(&self, key: &str, expires_at: Timestamp, now: Timestamp) -> bool {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let NonceMap { seen, sweep_at } = &mut *guard;
        // Sweep expired nonces whenever the map has doubled since the last
        // sweep: memory tracks the live window, and the cost stays O(1)
        // amortized however many nonces are live.
        if seen.len() >= (*sweep_at).max(65_536) {
            seen.retain(|_, exp| *exp > now);
            *sweep_at = seen.len() * 2;
        }
        match seen.get(key) {
            Some(exp) if *exp > now => false,
            _ => {
                seen.insert(key.to_owned(), expires_at);
                true
            }
        }
    }
}

/// Digests of (key, message, signature) triples that verified. Credentials
/// and tokens are presented on every call; remembering that their signature
/// checked out leaves one Ed25519 verification per call (the request's).
/// Bounded: when full it is cleared, which only costs re-verification.
#[derive(Debug)]
struct VerifiedSignatures {
    seen: Mutex<HashSet<Digest>>,
    capacity: usize,
}

impl VerifiedSignatures {
    fn key(public: &PublicKey, message: &[u8], signature: &Signature) -> Digest {
        let mut h = Sha256::new();
        h.update(public.as_bytes());
        h.update(signature.0);
        h.update(message);
        Digest(h.finalize().into())
    }

    fn verify(&self, public: &PublicKey, message: &[u8], signature: &Signature) -> Result<(), ()> {
        let key = Self::key(public, message, signature);
        if self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
        {
            return Ok(());
        }
        public.verify_raw(message, signature).map_err(|_| ())?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= self.capacity {
            seen.clear();
        }
        seen.insert(key);
        Ok(())
    }
}

/// The identity of a caller that passed the DualToken check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPrincipal {
    pub tenant: TenantId,
    pub agent: AgentId,
    pub org_unit: OrgUnitId,
    pub credential_serial: u64,
    pub mission: MissionId,
    pub token: TokenId,
    pub tool: ToolName,
}

/// Runs DualToken checks. One per gateway process; cheap to share. The
/// replay cache is the caller's (in-process, or shared through Redis), so
/// it is passed in rather than owned.
pub struct DualTokenVerifier {
    max_skew: Millis,
    cache: VerifiedSignatures,
}

impl fmt::Debug for DualTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DualTokenVerifier")
            .field("max_skew", &self.max_skew)
            .finish_non_exhaustive()
    }
}

impl DualTokenVerifier {
    pub fn new(max_skew: Millis) -> Self {
        DualTokenVerifier {
            max_skew,
            cache: VerifiedSignatures {
                seen: Mutex::new(HashSet::new()),
                capacity: 100_000,
            },
        }
    }

    /// Checks a signed request for `call` at gateway time `now`.
    ///
    /// Order matters: everything that can be decided from signed data is
    /// checked before the nonce is recorded, so a forged or stale request
    /// cannot burn a legitimate agent's nonce.
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        &self,
        nonces: &dyn NonceStore,
        trust: &dyn TenantTrust,
        request: &SignedRequest,
        credential: &AgentCredential,
        token: &ExecutionToken,
        call: ToolCall<'_>,
        now: Timestamp,
    ) -> Result<VerifiedPrincipal, DualTokenError> {
        let (principal, nonce) =
            self.verify_signed(trust, request, credential, token, call, now)?;
        if !nonces.first_use(&nonce.key, nonce.remember_until, now) {
            return Err(DualTokenError::ReplayedNonce);
        }
        Ok(principal)
    }

    /// Every check except the nonce's first use, which the caller records
    /// in its own replay cache (shared by all gateway nodes through Redis,
    /// say) only after this succeeded: a forged or stale request never
    /// burns a legitimate agent's nonce.
    pub fn verify_signed(
        &self,
        trust: &dyn TenantTrust,
        request: &SignedRequest,
        credential: &AgentCredential,
        token: &ExecutionToken,
        call: ToolCall<'_>,
        now: Timestamp,
    ) -> Result<(VerifiedPrincipal, NonceUse), DualTokenError> {
        let rc = &request.claims;
        let skew = now.distance(rc.timestamp);
        if skew > self.max_skew {
            return Err(DualTokenError::ClockSkew {
                request: rc.timestamp,
                skew_ms: skew.0,
                allowed_ms: self.max_skew.0,
            });
        }
        let nonce_ok =
            (16..=128).contains(&rc.nonce.len()) && rc.nonce.bytes().all(|b| b.is_ascii_graphic());
        if !nonce_ok {
            return Err(DualTokenError::MalformedNonce);
        }

        let cc = &credential.claims;
        let tenant_key = trust
            .tenant_key(credential.key_id.as_ref())
            .map_err(|e| e.refusal(Signed::Credential))?;
        let msg = canonical::message(CREDENTIAL_DOMAIN, cc)?;
        self.cache
            .verify(&tenant_key, &msg, &credential.signature)
            .map_err(|()| DualTokenError::BadSignature(Signed::Credential))?;
        if &cc.tenant != call.tenant {
            return Err(DualTokenError::WrongTenant {
                object: Signed::Credential,
                expected: call.tenant.clone(),
                found: cc.tenant.clone(),
            });
        }
        if now < cc.not_before {
            return Err(DualTokenError::NotYetValid {
                object: Signed::Credential,
                from: cc.not_before,
            });
        }
        if now >= cc.not_after {
            return Err(DualTokenError::Expired {
                object: Signed::Credential,
                at: cc.not_after,
            });
        }
        if trust.is_revoked(cc.serial) {
            return Err(DualTokenError::Revoked { serial: cc.serial });
        }

        let tc = &token.claims;
        let tenant_key = trust
            .tenant_key(token.key_id.as_ref())
            .map_err(|e| e.refusal(Signed::Token))?;
        let msg = canonical::message(TOKEN_DOMAIN, tc)?;
        self.cache
            .verify(&tenant_key, &msg, &token.signature)
            .map_err(|()| DualTokenError::BadSignature(Signed::Token))?;
        if &tc.tenant != call.tenant {
            return Err(DualTokenError::WrongTenant {
                object: Signed::Token,
                expected: call.tenant.clone(),
                found: tc.tenant.clone(),
            });
        }
        if &tc.mission != call.mission {
            return Err(DualTokenError::WrongMission {
                expected: call.mission.clone(),
                found: tc.mission.clone(),
            });
        }
        if tc.agent != cc.agent {
            return Err(DualTokenError::AgentMismatch {
                token_agent: tc.agent.clone(),
                credential_agent: cc.agent.clone(),
            });
        }
        if now < tc.issued_at {
            return Err(DualTokenError::NotYetValid {
                object: Signed::Token,
                from: tc.issued_at,
            });
        }
        if now >= tc.expires_at {
            return Err(DualTokenError::Expired {
                object: Signed::Token,
                at: tc.expires_at,
            });
        }

        // The request must name exactly the credential and token presented,
        // and be signed by the key the credential attests.
        if rc.credential_serial != cc.serial || rc.token != tc.token {
            return Err(DualTokenError::BadSignature(Signed::Request));
        }
        cc.agent_key
            .verify(REQUEST_DOMAIN, rc, &request.signature)
            .map_err(|_| DualTokenError::BadSignature(Signed::Request))?;

        if !tc.allowed_tools.contains(call.tool) {
            return Err(DualTokenError::ToolOutOfScope(call.tool.clone()));
        }
        if let Some(rules) = tc.parameters.get(call.tool) {
            rules.check(call.arguments).map_err(|violation| {
                DualTokenError::ParameterOutOfBounds {
                    tool: call.tool.clone(),
                    violation,
                }
            })?;
        }

        let nonce = NonceUse {
            key: format!("{}/{}/{}", cc.tenant, cc.agent, rc.nonce),
            remember_until: rc.timestamp.plus(self.max_skew).plus(Millis(1)),
        };
        let principal = VerifiedPrincipal {
            tenant: cc.tenant.clone(),
            agent: cc.agent.clone(),
            org_unit: cc.org_unit.clone(),
            credential_serial: cc.serial,
            mission: tc.mission.clone(),
            token: tc.token.clone(),
            tool: call.tool.clone(),
        };
        Ok((principal, nonce))
    }
}

/// A nonce to record as used: the request is refused if it was already
/// recorded and has not expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonceUse {
    pub key: String,
    /// After this a request carrying the nonce fails the clock-skew check
    /// anyway, so the nonce need not be remembered longer.
    pub remember_until: Timestamp,
}
