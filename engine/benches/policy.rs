//! Policy decision cost, on the same policies, entities and requests:
//!
//! * `raw_cedar`: the bare `cedar_policy::Authorizer` on a prebuilt request;
//! * `aura_decision`: AURA's full decision (request building, evaluation,
//!   the PERMIT/DENY/ESCALATE rules, the decision record and its input
//!   digest);
//! * `rego_regorus`: the same rules in Rego, evaluated by regorus.
//!
//! The bundle has 60 policies over an org of 1,000 users in nested groups
//! (user → team → department → division → org). Run with
//! `cargo bench -p aura-engine --bench policy`.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use aura_engine::mission::AuthorityLevel;
use aura_engine::policy::decision::cedar_request;
use aura_engine::policy::{
    BundleSource, CompiledBundle, Decision, EntityRef, PolicyRequest, PreparedEntities, decide,
};
use aura_engine::sim::SimRng;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

const USERS: usize = 1000;
const TEAMS: usize = 100;
const DEPTS: usize = 20;
const DIVISIONS: usize = 5;

struct Org {
    entities: Value,
    /// For Rego: parent edges of every node.
    parents: serde_json::Map<String, Value>,
}

fn org() -> Org {
    let mut entities = Vec::new();
    let mut parents = serde_json::Map::new();
    let group = |id: String,
                 parent: Option<String>,
                 entities: &mut Vec<Value>,
                 parents: &mut serde_json::Map<String, Value>| {
        entities.push(json!({"uid": {"type": "Aura::Group", "id": id}, "attrs": {},
            "parents": parent.iter().map(|p| json!({"type": "Aura::Group", "id": p})).collect::<Vec<_>>()}));
        parents.insert(id, json!(parent.into_iter().collect::<Vec<_>>()));
    };
    group("org".into(), None, &mut entities, &mut parents);
    for v in 0..DIVISIONS {
        group(
            format!("division-{v}"),
            Some("org".into()),
            &mut entities,
            &mut parents,
        );
    }
    for d in 0..DEPTS {
        group(
            format!("dept-{d}"),
            Some(format!("division-{}", d % DIVISIONS)),
            &mut entities,
            &mut parents,
        );
    }
    for t in 0..TEAMS {
        group(
            format!("team-{t}"),
            Some(format!("dept-{}", t % DEPTS)),
            &mut entities,
            &mut parents,
        );
    }
    for u in 0..USERS {
        let team = format!("team-{}", u % TEAMS);
        entities.push(
            json!({"uid": {"type": "Aura::User", "id": format!("user-{u}")},
            "attrs": {"level": (u % 4) as i64 + 1},
            "parents": [{"type": "Aura::Group", "id": team}]}),
        );
        parents.insert(format!("user-{u}"), json!([team]));
    }
    for c in 0..4 {
        entities.push(json!({"uid": {"type": "Aura::Classification", "id": format!("c{c}")}, "attrs": {"rank": c + 1}, "parents": []}));
        entities.push(json!({"uid": {"type": "Aura::ApprovalLevel", "id": format!("L{}", c + 1)}, "attrs": {"rank": c + 1}, "parents": []}));
    }
    for m in 0..16 {
        entities.push(json!({"uid": {"type": "Aura::Mission", "id": format!("m{m}")}, "parents": [], "attrs": {
            "classification": {"__entity": {"type": "Aura::Classification", "id": format!("c{}", m % 4)}},
            "authority": {"__entity": {"type": "Aura::ApprovalLevel", "id": format!("L{}", m % 4 + 1)}},
            "requester": "user:someone"}}));
    }
    Org {
        entities: Value::Array(entities),
        parents,
    }
}

/// 60 policies, generated once in both languages from the same table.
fn policies() -> (String, String) {
    let mut cedar = String::new();
    let mut rego = String::from(
        "package aura\n\nimport rego.v1\n\nancestors := graph.reachable(data.parents, [input.principal])\n\n",
    );
    // 40 permits: department members at or above a level may approve
    // missions up to a classification.
    for i in 0..40 {
        let dept = i % DEPTS;
        let level = i % 4 + 1;
        let max_rank = 4 - (i % 3);
        cedar.push_str(&format!(
            "@id(\"permit-{i}\")\npermit(principal in Aura::Group::\"dept-{dept}\", action == Aura::Action::\"approve\", resource)\nwhen {{ context.level >= {level} && resource.classification.rank <= {max_rank} }};\n\n"
        ));
        rego.push_str(&format!(
            "permits contains \"permit-{i}\" if {{\n  \"dept-{dept}\" in ancestors\n  input.context.level >= {level}\n  input.resource.classification_rank <= {max_rank}\n}}\n\n"
        ));
    }
    // 15 escalatable forbids by division and classification.
    for i in 0..15 {
        let division = i % DIVISIONS;
        let rank = i % 3 + 2;
        let level = i % 3 + 2;
        cedar.push_str(&format!(
            "@id(\"escalate-{i}\") @escalate @level(\"{level}\")\nforbid(principal in Aura::Group::\"division-{division}\", action == Aura::Action::\"approve\", resource)\nwhen {{ resource.classification.rank >= {rank} && context.level < {level} }};\n\n"
        ));
        rego.push_str(&format!(
            "forbids contains \"escalate-{i}\" if {{\n  \"division-{division}\" in ancestors\n  input.resource.classification_rank >= {rank}\n  input.context.level < {level}\n}}\n\nlevels contains {level} if forbids[\"escalate-{i}\"]\nescalatable contains \"escalate-{i}\"\n\n"
        ));
    }
    // 5 hard forbids for specific teams on restricted data.
    for i in 0..5 {
        let team = i * 7;
        cedar.push_str(&format!(
            "@id(\"deny-{i}\")\nforbid(principal in Aura::Group::\"team-{team}\", action == Aura::Action::\"approve\", resource)\nwhen {{ resource.classification.rank == 4 }};\n\n"
        ));
        rego.push_str(&format!(
            "forbids contains \"deny-{i}\" if {{\n  \"team-{team}\" in ancestors\n  input.resource.classification_rank == 4\n}}\n\n"
        ));
    }
    rego.push_str(
        "hard contains f if {\n  some f in forbids\n  not escalatable[f]\n}\n\n\
decision := \"DENY\" if count(hard) > 0\n\
decision := \"ESCALATE\" if {\n  count(hard) == 0\n  count(forbids) > 0\n}\n\
decision := \"PERMIT\" if {\n  count(forbids) == 0\n  count(permits) > 0\n}\n\
decision := \"DENY\" if {\n  count(forbids) == 0\n  count(permits) == 0\n}\n",
    );
    (cedar, rego)
}

struct Case {
    request: PolicyRequest,
    rego_input: Value,
}

fn cases() -> Vec<Case> {
    let mut rng = SimRng::new(99);
    (0..512)
        .map(|_| {
            let u = rng.below(USERS as u64);
            let m = rng.below(16);
            let level = rng.below(4) as i64 + 1;
            Case {
                request: PolicyRequest {
                    principal: EntityRef::new("Aura::User", format!("user-{u}")),
                    action: EntityRef::new("Aura::Action", "approve"),
                    resource: EntityRef::new("Aura::Mission", format!("m{m}")),
                    context: json!({"level": level}),
                },
                rego_input: json!({
                    "principal": format!("user-{u}"),
                    "context": {"level": level},
                    "resource": {"classification_rank": m % 4 + 1},
                }),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let org = org();
    let (cedar_src, rego_src) = policies();
    let bundle = CompiledBundle::compile(&BundleSource {
        policies: cedar_src,
        schema: None,
    })
    .expect("benchmark bundle validates");
    assert!(bundle.policy_ids().len() >= 50);
    let entities = PreparedEntities::from_json(&org.entities, None).unwrap();
    let cases = cases();
    let raw_requests: Vec<_> = cases
        .iter()
        .map(|c| cedar_request(&c.request, None).unwrap())
        .collect();

    let mut rego = regorus::Engine::new();
    rego.add_policy("aura.rego".into(), rego_src).unwrap();
    rego.add_data(
        regorus::Value::from_json_str(&json!({"parents": org.parents}).to_string()).unwrap(),
    )
    .unwrap();
    let rego_inputs: Vec<_> = cases
        .iter()
        .map(|c| regorus::Value::from_json_str(&c.rego_input.to_string()).unwrap())
        .collect();

    // The three must agree before their speed means anything.
    let mut mix = [0usize; 3];
    for (i, case) in cases.iter().enumerate() {
        let aura = decide(&bundle, &case.request, &entities, AuthorityLevel::L1);
        rego.set_input(rego_inputs[i].clone());
        let r = rego.eval_rule("data.aura.decision".into()).unwrap();
        let rego_decision = r.as_string().unwrap().to_string();
        let expected = match aura.decision {
            Decision::Permit => "PERMIT",
            Decision::Escalate => "ESCALATE",
            Decision::Deny => "DENY",
        };
        assert_eq!(rego_decision, expected, "case {i}: {:?}", case.request);
        mix[aura.decision as usize] += 1;
    }
    eprintln!(
        "decision mix over {} requests: permit {}, escalate {}, deny {}",
        cases.len(),
        mix[0],
        mix[1],
        mix[2]
    );

    let mut g = c.benchmark_group("policy_decision");
    let next = AtomicUsize::new(0);
    let authorizer = cedar_policy::Authorizer::new();
    let cedar_entities = entities.cedar().expect("the bench's entities build");
    g.bench_function("raw_cedar", |b| {
        b.iter(|| {
            let i = next.fetch_add(1, Ordering::Relaxed) % cases.len();
            black_box(authorizer.is_authorized(&raw_requests[i], bundle.policies(), cedar_entities))
        })
    });
    g.bench_function("aura_decision", |b| {
        b.iter(|| {
            let i = next.fetch_add(1, Ordering::Relaxed) % cases.len();
            black_box(decide(
                &bundle,
                &cases[i].request,
                &entities,
                AuthorityLevel::L1,
            ))
        })
    });
    g.bench_function("rego_regorus", |b| {
        b.iter(|| {
            let i = next.fetch_add(1, Ordering::Relaxed) % cases.len();
            rego.set_input(rego_inputs[i].clone());
            black_box(rego.eval_rule("data.aura.decision".into()).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
