//! One test per DualToken failure, plus the happy path and the cache.

use std::collections::{BTreeMap, BTreeSet};

use aura_engine::Digest;
use aura_engine::identity::{
    AgentCredential, AgentIdentityClaims, DualTokenError, DualTokenVerifier, ExecutionToken,
    ExecutionTokenClaims, InMemoryNonceStore, KeyPair, Keyring, NumericBound, ParameterRules,
    ParameterViolation, RequestClaims, Signed, SignedRequest, StaticTrust, ToolCall,
    VerifiedPrincipal,
};
use aura_engine::ids::{AgentId, MissionId, OrgUnitId, TenantId, TokenId, ToolName};
use aura_engine::time::{Millis, Timestamp};
use serde_json::{Value, json};

const NOW: Timestamp = Timestamp(1_795_000_000_000);

struct Fixture {
    tenant_key: KeyPair,
    agent_key: KeyPair,
    credential: AgentCredential,
    token: ExecutionToken,
    tenant: TenantId,
    mission: MissionId,
    tool: ToolName,
    args: Value,
    trust: StaticTrust,
}

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

fn fixture() -> Fixture {
    let tenant_key = KeyPair::from_seed([1; 32]);
    let agent_key = KeyPair::from_seed([2; 32]);
    let tenant: TenantId = id("acme");
    let mission: MissionId = id("m-1");
    let tool: ToolName = id("payments.transfer");
    let credential = AgentCredential::issue(
        AgentIdentityClaims {
            tenant: tenant.clone(),
            agent: id("agent-7"),
            org_unit: id("finance"),
            agent_key: agent_key.public(),
            serial: 3,
            not_before: Timestamp(NOW.0 - 3_600_000),
            not_after: Timestamp(NOW.0 + 3_600_000),
        },
        &tenant_key,
    )
    .unwrap();
    let token = ExecutionToken::issue(token_claims(&tenant, &mission, &tool), &tenant_key).unwrap();
    Fixture {
        trust: StaticTrust {
            keys: Keyring::single(&tenant, tenant_key.public()),
            revoked: BTreeSet::new(),
        },
        tenant_key,
        agent_key,
        credential,
        token,
        tenant,
        mission,
        tool,
        args: json!({"amount": 250, "currency": "EUR"}),
    }
}

fn token_claims(tenant: &TenantId, mission: &MissionId, tool: &ToolName) -> ExecutionTokenClaims {
    ExecutionTokenClaims {
        token: id("tok-1"),
        tenant: tenant.clone(),
        mission: mission.clone(),
        agent: id("agent-7"),
        allowed_tools: BTreeSet::from([tool.clone()]),
        parameters: BTreeMap::from([(
            tool.clone(),
            ParameterRules {
                fixed: BTreeMap::from([("/currency".to_owned(), json!("EUR"))]),
                bounds: BTreeMap::from([(
                    "/amount".to_owned(),
                    NumericBound {
                        min: Some(1.0),
                        max: Some(1000.0),
                    },
                )]),
            },
        )]),
        issued_at: Timestamp(NOW.0 - 60_000),
        expires_at: Timestamp(NOW.0 + 600_000),
        boundary_digest: Digest::of(b"boundary"),
    }
}

/// A verifier with its own replay cache.
struct Verifier {
    checks: DualTokenVerifier,
    nonces: InMemoryNonceStore,
}

impl Verifier {
    fn verify(
        &self,
        trust: &StaticTrust,
        req: &SignedRequest,
        credential: &AgentCredential,
        token: &ExecutionToken,
        call: ToolCall<'_>,
        now: Timestamp,
    ) -> Result<VerifiedPrincipal, DualTokenError> {
        self.checks
            .verify(&self.nonces, trust, req, credential, token, call, now)
    }
}

fn verifier() -> Verifier {
    Verifier {
        checks: DualTokenVerifier::new(Millis(30_000)),
        nonces: InMemoryNonceStore::default(),
    }
}

fn request(f: &Fixture, nonce: &str, at: Timestamp) -> SignedRequest {
    SignedRequest::sign(
        RequestClaims {
            method: "POST".into(),
            path: "/v1/gateway/tool-calls".into(),
            body_digest: Digest::of(f.args.to_string().as_bytes()),
            timestamp: at,
            nonce: nonce.into(),
            credential_serial: f.credential.claims.serial,
            token: f.token.claims.token.clone(),
        },
        &f.agent_key,
    )
    .unwrap()
}

fn check(v: &Verifier, f: &Fixture, req: &SignedRequest) -> Result<(), DualTokenError> {
    v.verify(
        &f.trust,
        req,
        &f.credential,
        &f.token,
        ToolCall {
            tenant: &f.tenant,
            mission: &f.mission,
            tool: &f.tool,
            arguments: &f.args,
        },
        NOW,
    )
    .map(|_| ())
}

const NONCE: &str = "nonce-0000000000000001";

#[test]
fn valid_request_yields_the_principal() {
    let f = fixture();
    let v = verifier();
    let req = request(&f, NONCE, NOW);
    let p = v
        .verify(
            &f.trust,
            &req,
            &f.credential,
            &f.token,
            ToolCall {
                tenant: &f.tenant,
                mission: &f.mission,
                tool: &f.tool,
                arguments: &f.args,
            },
            NOW,
        )
        .unwrap();
    assert_eq!(p.agent, id::<AgentId>("agent-7"));
    assert_eq!(p.org_unit, id::<OrgUnitId>("finance"));
    assert_eq!(p.credential_serial, 3);
    assert_eq!(p.token, id::<TokenId>("tok-1"));
}

#[test]
fn bad_request_signature() {
    let f = fixture();
    let mut req = request(&f, NONCE, NOW);
    req.claims.path = "/v1/gateway/other".into();
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::BadSignature(Signed::Request))
    );
    // Signed by someone else's key.
    let forged =
        SignedRequest::sign(request(&f, NONCE, NOW).claims, &KeyPair::from_seed([9; 32])).unwrap();
    assert_eq!(
        check(&verifier(), &f, &forged),
        Err(DualTokenError::BadSignature(Signed::Request))
    );
}

#[test]
fn bad_credential_signature() {
    let mut f = fixture();
    f.credential.claims.org_unit = id("treasury");
    let req = request(&f, NONCE, NOW);
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::BadSignature(Signed::Credential))
    );
}

#[test]
fn bad_token_signature() {
    let mut f = fixture();
    f.token.claims.allowed_tools.insert(id("payments.refund"));
    let req = request(&f, NONCE, NOW);
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::BadSignature(Signed::Token))
    );
}

#[test]
fn credential_signed_by_another_tenant_key_is_refused() {
    let mut f = fixture();
    let real = f.credential.key_id;
    f.credential =
        AgentCredential::issue(f.credential.claims.clone(), &KeyPair::from_seed([5; 32])).unwrap();
    // It names the key that signed it, which the tenant does not hold:
    // refused as any bad signature is.
    let req = request(&f, NONCE, NOW);
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::BadSignature(Signed::Credential))
    );
    // Naming the tenant's key instead does not make the signature its.
    f.credential.key_id = real;
    let req = request(&f, NONCE, NOW);
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::BadSignature(Signed::Credential))
    );
}

#[test]
fn credential_expired() {
    let mut f = fixture();
    let mut claims = f.credential.claims.clone();
    claims.not_after = Timestamp(NOW.0 - 1);
    f.credential = AgentCredential::issue(claims, &f.tenant_key).unwrap();
    let req = request(&f, NONCE, NOW);
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::Expired {
            object: Signed::Credential,
            at: Timestamp(NOW.0 - 1)
        })
    );
}

#[test]
fn credential_not_yet_valid() {
    let mut f = fixture();
    let mut claims = f.credential.claims.clone();
    claims.not_before = Timestamp(NOW.0 + 1);
    f.credential = AgentCredential::issue(claims, &f.tenant_key).unwrap();
    let req = request(&f, NONCE, NOW);
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::NotYetValid {
            object: Signed::Credential,
            from: Timestamp(NOW.0 + 1)
        })
    );
}

#[test]
fn token_expired() {
    let mut f = fixture();
    let mut claims = f.token.claims.clone();
    claims.expires_at = NOW;
    f.token = ExecutionToken::issue(claims, &f.tenant_key).unwrap();
    let req = request(&f, NONCE, NOW);
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::Expired {
            object: Signed::Token,
            at: NOW
        })
    );
}

#[test]
fn token_not_yet_valid() {
    let mut f = fixture();
    let mut claims = f.token.claims.clone();
    claims.issued_at = Timestamp(NOW.0 + 5);
    f.token = ExecutionToken::issue(claims, &f.tenant_key).unwrap();
    let req = request(&f, NONCE, NOW);
    assert!(matches!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::NotYetValid {
            object: Signed::Token,
            ..
        })
    ));
}

#[test]
fn revoked_credential() {
    let mut f = fixture();
    f.trust.revoked.insert(3);
    let req = request(&f, NONCE, NOW);
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::Revoked { serial: 3 })
    );
}

#[test]
fn wrong_tenant() {
    let mut f = fixture();
    f.tenant = id("globex");
    let req = request(&f, NONCE, NOW);
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::WrongTenant {
            object: Signed::Credential,
            expected: id("globex"),
            found: id("acme"),
        })
    );
}

#[test]
fn wrong_mission() {
    let mut f = fixture();
    f.mission = id("m-2");
    let req = request(&f, NONCE, NOW);
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::WrongMission {
            expected: id("m-2"),
            found: id("m-1"),
        })
    );
}

#[test]
fn token_for_another_agent() {
    let mut f = fixture();
    let mut claims = f.token.claims.clone();
    claims.agent = id("agent-8");
    f.token = ExecutionToken::issue(claims, &f.tenant_key).unwrap();
    let req = request(&f, NONCE, NOW);
    assert!(matches!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::AgentMismatch { .. })
    ));
}

#[test]
fn tool_out_of_scope() {
    let mut f = fixture();
    f.tool = id("payments.refund");
    let req = request(&f, NONCE, NOW);
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::ToolOutOfScope(id("payments.refund")))
    );
}

#[test]
fn parameter_out_of_bounds() {
    let mut f = fixture();
    f.args = json!({"amount": 5000, "currency": "EUR"});
    let req = request(&f, NONCE, NOW);
    let err = check(&verifier(), &f, &req).unwrap_err();
    assert!(matches!(
        err,
        DualTokenError::ParameterOutOfBounds {
            violation: ParameterViolation::AboveMax { .. },
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "tool `payments.transfer`: argument /amount = 5000 is above the maximum 1000"
    );
    f.args = json!({"amount": 5, "currency": "USD"});
    assert!(matches!(
        check(&verifier(), &f, &request(&f, NONCE, NOW)),
        Err(DualTokenError::ParameterOutOfBounds {
            violation: ParameterViolation::FixedChanged { .. },
            ..
        })
    ));
}

#[test]
fn replayed_nonce() {
    let f = fixture();
    let v = verifier();
    let req = request(&f, NONCE, NOW);
    assert_eq!(check(&v, &f, &req), Ok(()));
    assert_eq!(check(&v, &f, &req), Err(DualTokenError::ReplayedNonce));
    // A fresh nonce goes through.
    assert_eq!(
        check(&v, &f, &request(&f, "nonce-0000000000000002", NOW)),
        Ok(())
    );
}

#[test]
fn refused_requests_do_not_burn_the_nonce() {
    let mut f = fixture();
    let v = verifier();
    let good_tool = f.tool.clone();
    f.tool = id("payments.refund");
    let req = request(&f, NONCE, NOW);
    assert!(check(&v, &f, &req).is_err());
    f.tool = good_tool;
    assert_eq!(check(&v, &f, &req), Ok(()));
}

#[test]
fn malformed_nonce() {
    let f = fixture();
    let req = request(&f, "short", NOW);
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::MalformedNonce)
    );
}

#[test]
fn clock_skew_beyond_window() {
    let f = fixture();
    let req = request(&f, NONCE, Timestamp(NOW.0 - 30_001));
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::ClockSkew {
            request: Timestamp(NOW.0 - 30_001),
            skew_ms: 30_001,
            allowed_ms: 30_000
        })
    );
    let req = request(&f, NONCE, Timestamp(NOW.0 + 30_000));
    assert_eq!(check(&verifier(), &f, &req), Ok(()));
}

#[test]
fn request_must_name_the_presented_credential_and_token() {
    let f = fixture();
    let mut claims = request(&f, NONCE, NOW).claims;
    claims.token = id("tok-other");
    let req = SignedRequest::sign(claims, &f.agent_key).unwrap();
    assert_eq!(
        check(&verifier(), &f, &req),
        Err(DualTokenError::BadSignature(Signed::Request))
    );
}

#[test]
fn cached_signatures_still_reject_tampering() {
    let mut f = fixture();
    let v = verifier();
    assert_eq!(check(&v, &f, &request(&f, NONCE, NOW)), Ok(()));
    // The genuine token is now cached; an edited one must not ride on it.
    f.token.claims.expires_at = Timestamp(NOW.0 + 10_000_000);
    assert_eq!(
        check(&v, &f, &request(&f, "nonce-0000000000000003", NOW)),
        Err(DualTokenError::BadSignature(Signed::Token))
    );
}
