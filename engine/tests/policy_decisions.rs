//! One test per rule of the decision layer.

use aura_engine::mission::AuthorityLevel;
use aura_engine::policy::{
    BundleSource, CompiledBundle, Decision, EntityRef, PolicyRequest, PreparedEntities, decide,
};
use serde_json::{Value, json};

fn entities() -> PreparedEntities {
    PreparedEntities::from_json(
        &json!([
            {"uid": {"type": "Aura::OrgUnit", "id": "finance"}, "attrs": {}, "parents": []},
            {"uid": {"type": "Aura::Agent", "id": "bot"}, "attrs": {}, "parents": [{"type": "Aura::OrgUnit", "id": "finance"}]},
            {"uid": {"type": "Aura::Classification", "id": "internal"}, "attrs": {"rank": 2}, "parents": []},
            {"uid": {"type": "Aura::ApprovalLevel", "id": "L2"}, "attrs": {"rank": 2}, "parents": []},
            {"uid": {"type": "Aura::Tool", "id": "bank.pay"}, "attrs": {
                "risk": 3, "classification": {"__entity": {"type": "Aura::Classification", "id": "internal"}}, "target": "cloud"
            }, "parents": []},
            {"uid": {"type": "Aura::Mission", "id": "m1"}, "attrs": {
                "classification": {"__entity": {"type": "Aura::Classification", "id": "internal"}},
                "authority": {"__entity": {"type": "Aura::ApprovalLevel", "id": "L2"}},
                "requester": "alice"
            }, "parents": []}
        ]),
        None,
    )
    .unwrap()
}

fn request(arguments: Value) -> PolicyRequest {
    PolicyRequest {
        principal: EntityRef::new("Aura::Agent", "bot"),
        action: EntityRef::new("Aura::Action", "call_tool"),
        resource: EntityRef::new("Aura::Tool", "bank.pay"),
        context: json!({
            "mission": {"__entity": {"type": "Aura::Mission", "id": "m1"}},
            "arguments": arguments,
            "granted_level": 0
        }),
    }
}

fn bundle(policies: &str) -> CompiledBundle {
    CompiledBundle::compile(&BundleSource {
        policies: policies.into(),
        schema: None,
    })
    .unwrap()
}

const PERMIT_FINANCE: &str = r#"
@id("finance-agents")
permit(principal in Aura::OrgUnit::"finance", action == Aura::Action::"call_tool", resource);
"#;

#[test]
fn an_evaluation_error_denies_even_when_a_permit_applies() {
    // The forbid overflows at run time: Cedar alone would skip it and allow.
    let b = bundle(&format!(
        "{PERMIT_FINANCE}\n@id(\"overflowing\")\nforbid(principal, action == Aura::Action::\"call_tool\", resource)\nwhen {{ context.arguments has amount && context.arguments.amount * 9223372036854775807 > 0 }};"
    ));
    let raw = cedar_policy::Authorizer::new().is_authorized(
        &aura_engine::policy::decision::cedar_request(&request(json!({"amount": 5})), None)
            .unwrap(),
        b.policies(),
        entities().cedar().unwrap(),
    );
    assert_eq!(
        raw.decision(),
        cedar_policy::Decision::Allow,
        "Cedar on its own fails open"
    );
    let r = decide(
        &b,
        &request(json!({"amount": 5})),
        &entities(),
        AuthorityLevel::L2,
    );
    assert_eq!(r.decision, Decision::Deny);
    assert_eq!(r.errors.len(), 1);
    assert!(r.errors[0].starts_with("overflowing: "), "{:?}", r.errors);
}

#[test]
fn allow_is_permit() {
    let b = bundle(PERMIT_FINANCE);
    let r = decide(&b, &request(json!({})), &entities(), AuthorityLevel::L2);
    assert_eq!(r.decision, Decision::Permit);
    assert_eq!(r.determining, ["finance-agents"]);
    assert_eq!(r.bundle, b.version());
    assert_eq!(r.required_level, None);
}

#[test]
fn no_applicable_policy_is_default_deny() {
    let b = bundle(r#"permit(principal, action == Aura::Action::"approve", resource);"#);
    let r = decide(&b, &request(json!({})), &entities(), AuthorityLevel::L2);
    assert_eq!(r.decision, Decision::Deny);
    assert!(r.determining.is_empty());
    assert!(r.errors.is_empty());
}

#[test]
fn a_determining_forbid_without_escalate_denies() {
    let b = bundle(&format!(
        "{PERMIT_FINANCE}
@id(\"big\") @escalate @level(\"3\")
forbid(principal, action == Aura::Action::\"call_tool\", resource) when {{ context.arguments has amount && context.arguments.amount > 1000 }};
@id(\"huge\")
forbid(principal, action == Aura::Action::\"call_tool\", resource) when {{ context.arguments has amount && context.arguments.amount > 100000 }};"
    ));
    let r = decide(
        &b,
        &request(json!({"amount": 500000})),
        &entities(),
        AuthorityLevel::L2,
    );
    assert_eq!(r.decision, Decision::Deny);
    assert_eq!(r.determining, ["big", "huge"]);
}

#[test]
fn escalatable_forbids_escalate_to_their_highest_level() {
    let b = bundle(&format!(
        "{PERMIT_FINANCE}
@id(\"big\") @escalate @level(\"3\")
forbid(principal, action == Aura::Action::\"call_tool\", resource) when {{ context.arguments has amount && context.arguments.amount > 1000 }};
@id(\"bigger\") @escalate @level(\"L4\")
forbid(principal, action == Aura::Action::\"call_tool\", resource) when {{ context.arguments has amount && context.arguments.amount > 50000 }};
@id(\"foreign\") @escalate
forbid(principal, action == Aura::Action::\"call_tool\", resource) when {{ context.arguments has currency && context.arguments.currency != \"EUR\" }};"
    ));
    let e = entities();
    let r = decide(
        &b,
        &request(json!({"amount": 5000})),
        &e,
        AuthorityLevel::L2,
    );
    assert_eq!(
        (r.decision, r.required_level),
        (Decision::Escalate, Some(AuthorityLevel::L3))
    );
    let r = decide(
        &b,
        &request(json!({"amount": 60000})),
        &e,
        AuthorityLevel::L2,
    );
    assert_eq!(
        (r.decision, r.required_level),
        (Decision::Escalate, Some(AuthorityLevel::L4))
    );
    assert_eq!(r.determining, ["big", "bigger"]);
    // An escalatable forbid with no level escalates to the default level.
    let r = decide(
        &b,
        &request(json!({"currency": "USD"})),
        &e,
        AuthorityLevel::L2,
    );
    assert_eq!(
        (r.decision, r.required_level),
        (Decision::Escalate, Some(AuthorityLevel::L2))
    );
    let r = decide(
        &b,
        &request(json!({"amount": 5, "currency": "EUR"})),
        &e,
        AuthorityLevel::L2,
    );
    assert_eq!(r.decision, Decision::Permit);
}

#[test]
fn decisions_are_reproducible_and_input_digests_differ_by_input() {
    let b = bundle(PERMIT_FINANCE);
    let a = decide(
        &b,
        &request(json!({"amount": 1})),
        &entities(),
        AuthorityLevel::L2,
    );
    let again = decide(
        &b,
        &request(json!({"amount": 1})),
        &entities(),
        AuthorityLevel::L2,
    );
    let other = decide(
        &b,
        &request(json!({"amount": 2})),
        &entities(),
        AuthorityLevel::L2,
    );
    assert_eq!(a, again);
    assert_ne!(a.input_digest, other.input_digest);
}

#[test]
fn a_malformed_request_denies_with_a_reason() {
    let b = bundle(PERMIT_FINANCE);
    let mut req = request(json!({}));
    req.principal.kind = "Not A Type".into();
    let r = decide(&b, &req, &entities(), AuthorityLevel::L2);
    assert_eq!(r.decision, Decision::Deny);
    assert!(r.errors[0].contains("malformed request"), "{:?}", r.errors);
}

#[test]
fn slices_hold_only_the_policies_that_can_apply() {
    let b = bundle(
        r#"
@id("team-a") permit(principal in Aura::Group::"team-a", action == Aura::Action::"approve", resource);
@id("team-b") permit(principal in Aura::Group::"team-b", action == Aura::Action::"approve", resource);
@id("org") forbid(principal in Aura::Group::"org", action == Aura::Action::"approve", resource) when { context.level < 2 };
@id("tools") permit(principal, action == Aura::Action::"call_tool", resource);
@id("anyone") permit(principal is Aura::User, action, resource) when { context.level > 3 };
"#,
    );
    let e = PreparedEntities::from_json(
        &json!([
            {"uid": {"type": "Aura::Group", "id": "org"}, "attrs": {}, "parents": []},
            {"uid": {"type": "Aura::Group", "id": "team-a"}, "attrs": {}, "parents": [{"type": "Aura::Group", "id": "org"}]},
            {"uid": {"type": "Aura::User", "id": "u"}, "attrs": {"level": 1}, "parents": [{"type": "Aura::Group", "id": "team-a"}]},
        ]),
        None,
    )
    .unwrap();
    let principal: cedar_policy::EntityUid = r#"Aura::User::"u""#.parse().unwrap();
    let action: cedar_policy::EntityUid = r#"Aura::Action::"approve""#.parse().unwrap();
    let slice = b.slicer().slice(&principal, &action, e.cedar().unwrap());
    let mut ids: Vec<String> = slice.policies().map(|p| p.id().to_string()).collect();
    ids.sort();
    assert_eq!(ids, ["anyone", "org", "team-a"]);
}

/// Slicing must never change a decision: compare with Cedar evaluating the
/// whole bundle, over random principals, groups and actions, with policies
/// of every scope shape and some that raise errors.
#[test]
fn sliced_decisions_equal_whole_bundle_decisions() {
    use aura_engine::policy::decision::{DecisionRecord, cedar_request, interpret};
    use aura_engine::sim::SimRng;
    let b = bundle(
        r#"
@id("g0") permit(principal in Aura::Group::"g0", action == Aura::Action::"approve", resource);
@id("g1") permit(principal in Aura::Group::"g1", action in [Aura::Action::"approve", Aura::Action::"call_tool"], resource) when { context.level > 1 };
@id("g2-escalate") @escalate @level("3") forbid(principal in Aura::Group::"g2", action == Aura::Action::"approve", resource) when { context.level < 3 };
@id("u3-only") permit(principal == Aura::User::"u3", action, resource);
@id("users-big") permit(principal is Aura::User, action == Aura::Action::"approve", resource) when { context.level > 3 };
@id("users-in-g4") forbid(principal is Aura::User in Aura::Group::"g4", action, resource) when { context.level == 2 };
@id("overflow") forbid(principal in Aura::Group::"g5", action == Aura::Action::"approve", resource) when { context.level * 9223372036854775807 > 1 };
@id("any") permit(principal, action == Aura::Action::"plan_step", resource);
"#,
    );
    let mut ents = vec![];
    for g in 0..6 {
        let parents: Vec<Value> = if g > 0 {
            vec![json!({"type": "Aura::Group", "id": format!("g{}", g - 1)})]
        } else {
            vec![]
        };
        ents.push(json!({"uid": {"type": "Aura::Group", "id": format!("g{g}")}, "attrs": {}, "parents": parents}));
    }
    let mut rng = SimRng::new(7);
    for u in 0..40 {
        let g = rng.below(7);
        let parents: Vec<Value> = if g < 6 {
            vec![json!({"type": "Aura::Group", "id": format!("g{g}")})]
        } else {
            vec![]
        };
        ents.push(json!({"uid": {"type": "Aura::User", "id": format!("u{u}")}, "attrs": {"level": 1}, "parents": parents}));
    }
    let e = PreparedEntities::from_json(&Value::Array(ents), None).unwrap();
    let actions = ["approve", "call_tool", "plan_step"];
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let req = PolicyRequest {
            principal: if rng.chance(90) {
                EntityRef::new("Aura::User", format!("u{}", rng.below(42)))
            } else {
                EntityRef::new("Aura::Group", format!("g{}", rng.below(6)))
            },
            action: EntityRef::new("Aura::Action", actions[rng.below(3) as usize]),
            resource: EntityRef::new("Aura::Mission", "m"),
            context: json!({"level": rng.below(5)}),
        };
        let sliced = decide(&b, &req, &e, AuthorityLevel::L1);
        let full = cedar_policy::Authorizer::new().is_authorized(
            &cedar_request(&req, None).unwrap(),
            b.policies(),
            e.cedar().unwrap(),
        );
        let mut whole = DecisionRecord {
            errors: vec![],
            determining: vec![],
            ..sliced.clone()
        };
        interpret(&b, &full, AuthorityLevel::L1, &mut whole);
        assert_eq!(sliced, whole, "{req:?}");
        seen.insert(format!("{:?}", sliced.decision));
    }
    assert_eq!(seen.len(), 3, "every decision kind was exercised: {seen:?}");
}
