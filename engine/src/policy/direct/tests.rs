//! The direct path against Cedar, on generated policies, entities and
//! requests: wherever the direct path answers, Cedar must report no error
//! and the same decision with the same determining policies.

use cedar_policy::{Authorizer, Context, Entities, PolicySet, Request};
use serde_json::{Value, json};

use super::*;
use crate::policy::bundle::PolicySlicer;
use crate::sim::SimRng;

fn pick<'a>(rng: &mut SimRng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len() as u64) as usize]
}

fn long_expr(rng: &mut SimRng) -> String {
    pick(
        rng,
        &[
            "3",
            "0",
            "1",
            "2",
            "context.level",
            "context.level",
            "principal.level",
            "resource.classification.rank",
            "resource.classification.rank",
            "resource.meta.tier",
            "context.args.amount",
            // Errors: a missing attribute, a string where a number goes.
            "context.missing",
            "principal.name",
        ],
    )
    .to_owned()
}

fn entity_expr(rng: &mut SimRng) -> String {
    pick(
        rng,
        &[
            "principal",
            "resource",
            "principal.manager",
            "context.who",
            "context.team",
            "resource.classification",
            r#"Aura::Group::"g1""#,
            r#"Aura::User::"u3""#,
            // Same id, another type: a different entity.
            r#"Aura::Group::"u3""#,
        ],
    )
    .to_owned()
}

fn any_expr(rng: &mut SimRng, depth: u32) -> String {
    match rng.below(4) {
        0 => long_expr(rng),
        1 => entity_expr(rng),
        2 => pick(rng, &[r#""alice""#, "principal.name", "resource.meta.tag"]).to_owned(),
        _ => bool_expr(rng, depth),
    }
}

fn bool_expr(rng: &mut SimRng, depth: u32) -> String {
    let leaf = depth == 0 || rng.chance(40);
    let choice = if leaf { rng.below(7) } else { 7 + rng.below(5) };
    let d = depth.saturating_sub(1);
    // Parenthesized whole: Cedar's comparisons do not chain.
    let e = match choice {
        0 => {
            let op = pick(rng, &["<", "<=", ">", ">="]);
            format!("{} {op} {}", long_expr(rng), long_expr(rng))
        }
        1 => {
            let op = pick(rng, &["==", "!="]);
            format!("{} {op} {}", any_expr(rng, 0), any_expr(rng, 0))
        }
        2 => {
            let target = pick(
                rng,
                &[
                    r#"Aura::Group::"g0""#,
                    r#"Aura::Group::"g2""#,
                    r#"[Aura::Group::"g1", Aura::Group::"g3"]"#,
                    "principal.manager",
                    "resource",
                    "context.team",
                    "context.team",
                    // A type error: `in` a number.
                    "context.level",
                ],
            );
            format!("{} in {target}", entity_expr(rng))
        }
        3 => pick(
            rng,
            &[
                "principal has level",
                "resource has optional",
                "context has flag",
                "context.args has amount",
                "resource.meta has tier",
            ],
        )
        .to_owned(),
        4 => pick(
            rng,
            &[
                "true",
                "false",
                "context.flag",
                "resource.optional",
                r#"principal == Aura::Group::"u3""#,
                r#"context.who == Aura::User::"u3""#,
                r#"action == Aura::Action::"call""#,
            ],
        )
        .to_owned(),
        // Outside the subset: these must go to Cedar.
        5 => pick(
            rng,
            &[
                r#"principal.name like "a*""#,
                "[1, 2].contains(context.level)",
                "context.level + 1 > 2",
                r#"principal has level.nested"#,
            ],
        )
        .to_owned(),
        6 => format!("{} == {}", long_expr(rng), long_expr(rng)),
        7 => format!("!({})", bool_expr(rng, d)),
        8 => format!("({}) && ({})", bool_expr(rng, d), bool_expr(rng, d)),
        9 => format!("({}) || ({})", bool_expr(rng, d), bool_expr(rng, d)),
        10 => format!(
            "if {} then {} else {}",
            bool_expr(rng, d),
            bool_expr(rng, d),
            bool_expr(rng, d)
        ),
        _ => format!("({}) == ({})", any_expr(rng, d), any_expr(rng, d)),
    };
    format!("({e})")
}

fn policy(rng: &mut SimRng, i: usize) -> String {
    let effect = if rng.chance(40) { "forbid" } else { "permit" };
    let principal = pick(
        rng,
        &[
            "principal",
            "principal",
            "principal",
            "principal",
            r#"principal == Aura::User::"u1""#,
            r#"principal in Aura::Group::"g0""#,
            r#"principal in Aura::Group::"g2""#,
            "principal is Aura::User",
            r#"principal is Aura::User in Aura::Group::"g1""#,
        ],
    );
    let action = pick(
        rng,
        &[
            "action",
            "action",
            "action",
            r#"action == Aura::Action::"approve""#,
            r#"action in [Aura::Action::"approve", Aura::Action::"call"]"#,
        ],
    );
    let resource = pick(
        rng,
        &[
            "resource",
            "resource",
            "resource",
            "resource",
            r#"resource == Aura::Mission::"m1""#,
            r#"resource in Aura::Group::"g3""#,
            "resource is Aura::Mission",
            r#"resource is Aura::Mission in Aura::Group::"g3""#,
        ],
    );
    let mut text = format!("@id(\"p{i}\")\n{effect}({principal}, {action}, {resource})");
    for _ in 0..rng.below(3) {
        let kind = if rng.chance(70) { "when" } else { "unless" };
        text.push_str(&format!(" {kind} {{ {} }}", bool_expr(rng, 3)));
    }
    text.push_str(";\n");
    text
}

fn entity_list(rng: &mut SimRng) -> Vec<Value> {
    let mut list = Vec::new();
    for g in 0..4 {
        let parents: Vec<Value> = if g > 0 && rng.chance(60) {
            vec![json!({"type": "Aura::Group", "id": format!("g{}", rng.below(g))})]
        } else {
            vec![]
        };
        list.push(json!({"uid": {"type": "Aura::Group", "id": format!("g{g}")}, "attrs": {}, "parents": parents}));
    }
    for u in 0..6 {
        let mut attrs = serde_json::Map::new();
        if rng.chance(80) {
            attrs.insert("level".into(), json!(rng.below(5) as i64));
        }
        attrs.insert("name".into(), json!(pick(rng, &["alice", "bob", "ann"])));
        // u9 does not exist: reading its attributes is an error.
        attrs.insert(
            "manager".into(),
            json!({"__entity": {"type": "Aura::User", "id": format!("u{}", [0, 1, 2, 9][rng.below(4) as usize])}}),
        );
        list.push(
            json!({"uid": {"type": "Aura::User", "id": format!("u{u}")}, "attrs": attrs,
            "parents": [{"type": "Aura::Group", "id": format!("g{}", rng.below(4))}]}),
        );
    }
    for c in 1..=4 {
        list.push(json!({"uid": {"type": "Aura::Classification", "id": format!("c{c}")}, "attrs": {"rank": c}, "parents": []}));
    }
    for m in 0..3 {
        let mut attrs = serde_json::Map::new();
        attrs.insert(
            "classification".into(),
            json!({"__entity": {"type": "Aura::Classification", "id": format!("c{}", rng.below(4) + 1)}}),
        );
        let mut meta = json!({"tag": pick(rng, &["alice", "x"])});
        if rng.chance(70) {
            meta["tier"] = json!(rng.below(3) as i64);
        }
        attrs.insert("meta".into(), meta);
        if rng.chance(50) {
            attrs.insert("optional".into(), json!(rng.chance(50)));
        }
        list.push(json!({"uid": {"type": "Aura::Mission", "id": format!("m{m}")}, "attrs": attrs,
            "parents": if rng.chance(50) { vec![json!({"type": "Aura::Group", "id": "g3"})] } else { vec![] }}));
    }
    for a in ["approve", "call", "plan"] {
        list.push(json!({"uid": {"type": "Aura::Action", "id": a}, "attrs": {}, "parents": []}));
    }
    list
}

/// Entities in Cedar's JSON format, closed by Cedar.
fn cedar_entities(list: &[Value]) -> Entities {
    Entities::from_json_value(Value::Array(list.to_vec()), None).unwrap()
}

/// What `DirectEntities::closed` makes of `list`: each entity as Cedar
/// built it, with the parents the JSON names.
fn closed_view(list: &[Value], entities: &Entities) -> Option<DirectEntities> {
    let parts: Vec<(&Entity, Vec<EntityUid>)> = list
        .iter()
        .map(|e| {
            let uid = EntityUid::from_json(e["uid"].clone()).unwrap();
            let parents = e["parents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| EntityUid::from_json(p.clone()).unwrap())
                .collect();
            (entities.get(&uid).unwrap(), parents)
        })
        .collect();
    DirectEntities::closed(parts.iter().map(|(e, p)| (*e, p.as_slice())))
}

fn context(rng: &mut SimRng) -> Value {
    let mut c = serde_json::Map::new();
    if rng.chance(85) {
        c.insert("level".into(), json!(rng.below(5) as i64));
    }
    if rng.chance(70) {
        c.insert("flag".into(), json!(rng.chance(50)));
    }
    c.insert(
        "who".into(),
        json!({"__entity": {"type": "Aura::User", "id": format!("u{}", rng.below(7))}}),
    );
    c.insert(
        "team".into(),
        json!({"__entity": {"type": "Aura::Group", "id": format!("g{}", rng.below(4))}}),
    );
    let args = if rng.chance(80) {
        json!({"amount": rng.below(6) as i64})
    } else {
        json!({})
    };
    c.insert("args".into(), args);
    Value::Object(c)
}

/// Compares the two paths on one request; returns whether the direct path
/// answered.
fn agree(
    set: &PolicySet,
    slicer: &PolicySlicer,
    request: &Request,
    direct: &DirectRequest<'_>,
    entities: &Entities,
    view: &DirectEntities,
    text: &str,
) -> bool {
    let cedar = Authorizer::new().is_authorized(request, set, entities);
    let Some(direct) = slicer.decide_directly(direct, view) else {
        return false;
    };
    let mut reason: Vec<String> = cedar
        .diagnostics()
        .reason()
        .map(|p| p.to_string())
        .collect();
    reason.sort();
    let mut determining = direct.determining.clone();
    determining.sort();
    let errors: Vec<_> = cedar.diagnostics().errors().collect();
    assert!(
        errors.is_empty(),
        "the direct path answered where Cedar reports {errors:?}\n{text}\n{request}"
    );
    assert_eq!(
        (direct.allow, determining),
        (cedar.decision() == cedar_policy::Decision::Allow, reason),
        "{text}\n{request}"
    );
    true
}

/// Each generated bundle is compared as a whole (so slicing is covered)
/// and policy by policy (so a policy is compared on every request, not
/// only on those where all eight happen to be in the subset).
#[test]
fn the_direct_path_agrees_with_cedar_wherever_it_answers() {
    let (mut answered, mut requests, mut compiled, mut policies) = (0, 0, 0, 0);
    for seed in 0..150 {
        let mut rng = SimRng::new(seed);
        let texts: Vec<String> = (0..8).map(|i| policy(&mut rng, i)).collect();
        let mut sets = vec![texts.concat()];
        sets.extend(texts.iter().cloned());
        let sets: Vec<(PolicySet, PolicySlicer, String)> = sets
            .into_iter()
            .map(|text| {
                let set: PolicySet = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
                let slicer = PolicySlicer::new(&set);
                (set, slicer, text)
            })
            .collect();
        for p in sets[0].0.policies() {
            policies += 1;
            compiled += usize::from(DirectPolicy::compile(p).is_some());
        }
        let list = entity_list(&mut rng);
        let entities = cedar_entities(&list);
        let view = DirectEntities::of(&entities);
        assert_eq!(
            closed_view(&list, &entities).as_ref(),
            Some(&view),
            "closing the parents directly differs from Cedar's closure"
        );
        for _ in 0..80 {
            let principal: EntityUid = format!(r#"Aura::User::"u{}""#, rng.below(7))
                .parse()
                .unwrap();
            let action: EntityUid = format!(
                r#"Aura::Action::"{}""#,
                pick(&mut rng, &["approve", "call", "plan"])
            )
            .parse()
            .unwrap();
            let resource: EntityUid = pick(
                &mut rng,
                &[
                    r#"Aura::Mission::"m0""#,
                    r#"Aura::Mission::"m1""#,
                    r#"Aura::Mission::"m2""#,
                    // Does not exist.
                    r#"Aura::Mission::"m3""#,
                    r#"Aura::Group::"g3""#,
                    r#"Aura::User::"u1""#,
                ],
            )
            .parse()
            .unwrap();
            let context = context(&mut rng);
            let request = Request::new(
                principal.clone(),
                action.clone(),
                resource.clone(),
                Context::from_json_value(context.clone(), None).unwrap(),
                None,
            )
            .unwrap();
            let direct = DirectRequest {
                principal: &principal,
                action: &action,
                resource: &resource,
                context: context.as_object().unwrap(),
            };
            for (set, slicer, text) in &sets {
                requests += 1;
                answered += usize::from(agree(
                    set, slicer, &request, &direct, &entities, &view, text,
                ));
            }
        }
    }
    // The comparison means something only if both paths are exercised.
    assert!(
        compiled * 10 > policies * 5 && compiled < policies,
        "{compiled} of {policies} policies compiled"
    );
    assert!(
        answered * 10 > requests * 3 && answered < requests,
        "the direct path answered {answered} of {requests} requests"
    );
}

/// Where Cedar's own build would not hold the same set, the direct closure
/// declines: a cycle (Cedar refuses it) and a uid given twice (Cedar merges
/// identical copies and refuses different ones). A parent that does not
/// exist is still an ancestor, as in Cedar.
#[test]
fn the_direct_closure_declines_what_cedar_would_not_simply_build() {
    let group = |id: &str, parent: Option<&str>| {
        json!({"uid": {"type": "Aura::Group", "id": id}, "attrs": {},
               "parents": parent.map(|p| vec![json!({"type": "Aura::Group", "id": p})]).unwrap_or_default()})
    };
    let chain = vec![
        group("a", Some("b")),
        group("b", Some("c")),
        group("c", Some("ghost")),
    ];
    let entities = cedar_entities(&chain);
    assert_eq!(
        closed_view(&chain, &entities),
        Some(DirectEntities::of(&entities))
    );
    let a: EntityUid = r#"Aura::Group::"a""#.parse().unwrap();
    let ghost: EntityUid = r#"Aura::Group::"ghost""#.parse().unwrap();
    assert!(closed_view(&chain, &entities).unwrap().within(&a, &ghost));

    let cycle = vec![
        group("a", Some("b")),
        group("b", Some("c")),
        group("c", Some("a")),
    ];
    assert!(Entities::from_json_value(Value::Array(cycle.clone()), None).is_err());
    // Cedar refuses to build it, so the closure is asked with entities made
    // one by one.
    let one_by_one: Vec<(Entity, Vec<EntityUid>)> = cycle
        .iter()
        .map(|e| {
            let uid = EntityUid::from_json(e["uid"].clone()).unwrap();
            let parent = EntityUid::from_json(e["parents"][0].clone()).unwrap();
            let entity = Entity::new(uid, Default::default(), [parent.clone()].into()).unwrap();
            (entity, vec![parent])
        })
        .collect();
    assert_eq!(
        DirectEntities::closed(one_by_one.iter().map(|(e, p)| (e, p.as_slice()))),
        None
    );
    let twice = [&one_by_one[0], &one_by_one[0]];
    assert_eq!(
        DirectEntities::closed(twice.iter().map(|(e, p)| (e, p.as_slice()))),
        None
    );
}

/// An entity added to a closed stem is closed with it exactly as the whole
/// set closes; where adding it would change the stem (it is there already,
/// or it is an ancestor of an entity there, or its own parent), adding
/// declines and the whole set is closed instead.
#[test]
fn an_entity_on_a_stem_is_closed_as_in_the_whole_set() {
    let made = |id: &str, parents: &[&str]| {
        let uid: EntityUid = format!(r#"Aura::Group::"{id}""#).parse().unwrap();
        let parents: Vec<EntityUid> = parents
            .iter()
            .map(|p| format!(r#"Aura::Group::"{p}""#).parse().unwrap())
            .collect();
        let attrs = [(
            "n".to_owned(),
            cedar_policy::RestrictedExpression::new_long(id.len() as i64),
        )]
        .into_iter()
        .collect();
        let entity = Entity::new(uid, attrs, parents.iter().cloned().collect()).unwrap();
        (entity, parents)
    };
    let stem_parts = [
        made("a", &["b"]),
        made("b", &["c", "d"]),
        made("c", &["ghost"]),
        made("d", &[]),
    ];
    let stem = DirectEntities::stem(stem_parts.iter().map(|(e, p)| (e, p.as_slice()))).unwrap();
    let whole_with = |extra: &(Entity, Vec<EntityUid>)| {
        DirectEntities::closed(
            stem_parts
                .iter()
                .chain(std::iter::once(extra))
                .map(|(e, p)| (e, p.as_slice())),
        )
    };
    for extra in [
        made("m", &["a"]),
        made("m", &["b", "elsewhere"]),
        made("m", &[]),
    ] {
        let layered = DirectEntities::on_stem(&stem, &extra.0, &extra.1);
        assert!(layered.is_some());
        assert_eq!(layered, whole_with(&extra));
    }
    // Already in the stem, an ancestor of an entity in it (even one that
    // does not exist there), or its own parent.
    for extra in [
        made("b", &[]),
        made("ghost", &[]),
        made("c", &["a"]),
        made("m", &["m"]),
    ] {
        assert_eq!(DirectEntities::on_stem(&stem, &extra.0, &extra.1), None);
    }
}
