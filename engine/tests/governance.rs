//! Control-plane decisions wired into missions: plans, approvals, the
//! deployment boundary, execution-time holds and canary releases.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use aura_engine::Actor;
use aura_engine::ids::{MissionId, NamespaceId};
use aura_engine::machine::{Advance, CommandBody, ConfigPart, Event, Precondition, Rejection};
use aura_engine::mission::{AuthorityLevel, MissionState, OutcomeKind, PlanStep};
use aura_engine::policy::authority::{
    ApprovalRules, ApprovalStatus, AtDeadline, AuthorityConfig, AuthorityGraph, VoteRefusal,
};
use aura_engine::policy::canary::{self, Classification, Release};
use aura_engine::policy::{BundleSource, Decision};
use aura_engine::sim::{SIM_BUNDLE, sim_bundle};
use aura_engine::time::Millis;
use serde_json::json;
use support::{World, id};

fn vote(
    w: &mut World,
    mission: &str,
    hold: Option<u32>,
    user: &str,
    groups: &[&str],
    approve: bool,
) -> Result<Vec<Event>, Rejection> {
    w.cmd(
        "acme",
        Actor::User(id(user)),
        CommandBody::DecideApproval {
            mission: id(mission),
            hold,
            approve,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            reason: "reviewed".into(),
        },
    )
}

fn set_rules(w: &mut World, rules: ApprovalRules) {
    let graph = AuthorityGraph {
        users: BTreeMap::from([
            (id("approver-a"), AuthorityLevel::L2),
            (id("approver-b"), AuthorityLevel::L3),
            (id("approver-c"), AuthorityLevel::L3),
            (id("junior"), AuthorityLevel::L1),
            (id("alice"), AuthorityLevel::L4),
            (id("bob"), AuthorityLevel::L4),
        ]),
        groups: BTreeMap::from([("board".to_owned(), AuthorityLevel::L4)]),
    };
    w.ok(
        "acme",
        Actor::Platform,
        CommandBody::SetAuthority {
            namespace: id("prod"),
            config: AuthorityConfig { graph, rules },
        },
    );
}

fn planned(w: &mut World, mission: &str, amount: u64) -> Result<Vec<Event>, Rejection> {
    w.create_mission("acme", mission, Millis::from_secs(3600));
    w.advance("acme", mission, Advance::BeginPlanning).unwrap();
    w.submit_plan("acme", mission, amount)
}

fn mission<'w>(w: &'w World, m: &str) -> &'w aura_engine::mission::Mission {
    &w.state.tenant(&id("acme")).unwrap().missions()[&id::<MissionId>(m)]
}

#[test]
fn permit_passes_waiting_approval_at_once_with_the_policy_recorded() {
    let mut w = World::new();
    planned(&mut w, "m1", 10).unwrap();
    let m = mission(&w, "m1");
    assert_eq!(m.state(), MissionState::PendingExecution);
    let moves: Vec<_> = m.timeline().iter().map(|c| (c.from, c.to)).collect();
    assert_eq!(
        moves[1..],
        [
            (MissionState::Planning, MissionState::WaitingApproval),
            (MissionState::WaitingApproval, MissionState::Approved),
            (MissionState::Approved, MissionState::PendingExecution),
        ]
    );
    let plan = m.plan().unwrap();
    assert_eq!(plan.decision.decision, Decision::Permit);
    assert_eq!(plan.decision.determining, ["agents-may-use-tools"]);
    assert_eq!(plan.decision.bundle, sim_bundle().version());
    assert!(m.approval().is_none());
}

#[test]
fn deny_closes_the_mission_with_the_decision_record() {
    let mut w = World::new();
    planned(&mut w, "m1", 500_000).unwrap();
    let m = mission(&w, "m1");
    let o = m.outcome().unwrap().outcome();
    assert_eq!(
        (o.kind, o.left_state),
        (OutcomeKind::Denied, MissionState::Planning)
    );
    assert_eq!(o.result["decision"], "DENY");
    assert_eq!(
        o.result["determining"],
        json!(["large-amounts-need-approval", "no-huge-amounts"])
    );
}

#[test]
fn the_strictest_step_decides_the_plan() {
    let mut w = World::new();
    w.create_mission("acme", "m1", Millis::from_secs(3600));
    w.advance("acme", "m1", Advance::BeginPlanning).unwrap();
    w.cmd(
        "acme",
        Actor::Agent(id("bot")),
        CommandBody::SubmitPlan {
            mission: id("m1"),
            steps: vec![
                PlanStep {
                    timeouts: None,
                    tool: id("erp.post"),
                    arguments: json!({"amount": 5}),
                    retry: None,
                },
                PlanStep {
                    timeouts: None,
                    tool: id("erp.post"),
                    arguments: json!({"amount": 5000}),
                    retry: None,
                },
                PlanStep {
                    timeouts: None,
                    tool: id("erp.post"),
                    arguments: json!({"amount": 7}),
                    retry: None,
                },
            ],
        },
    )
    .unwrap();
    let m = mission(&w, "m1");
    assert_eq!(m.state(), MissionState::WaitingApproval);
    let plan = m.plan().unwrap();
    let each: Vec<_> = plan.decisions.iter().map(|d| d.decision).collect();
    assert_eq!(
        each,
        [Decision::Permit, Decision::Escalate, Decision::Permit]
    );
    assert_eq!(plan.decision.decision, Decision::Escalate);
}

#[test]
fn quorum_needs_distinct_approvers() {
    let mut w = World::new();
    set_rules(
        &mut w,
        ApprovalRules {
            quorum: 2,
            ..ApprovalRules::default()
        },
    );
    planned(&mut w, "m1", 5000).unwrap();
    assert_eq!(
        mission(&w, "m1").approval().unwrap().required_level,
        AuthorityLevel::L2
    );
    vote(&mut w, "m1", None, "approver-a", &[], true).unwrap();
    assert_eq!(mission(&w, "m1").state(), MissionState::WaitingApproval);
    let again = vote(&mut w, "m1", None, "approver-a", &[], true);
    assert_eq!(
        again,
        Err(Rejection::Vote(VoteRefusal::AlreadyDecided {
            approver: id("approver-a")
        }))
    );
    assert_eq!(w.last_audit_kind("acme"), "command.rejected");
    vote(&mut w, "m1", None, "approver-b", &[], true).unwrap();
    let m = mission(&w, "m1");
    assert_eq!(m.state(), MissionState::PendingExecution);
    assert_eq!(m.granted_level(), Some(AuthorityLevel::L2));
    assert_eq!(m.approval().unwrap().votes.len(), 2);
}

#[test]
fn separation_of_duties_keeps_requester_and_owner_out() {
    let mut w = World::new();
    set_rules(&mut w, ApprovalRules::default());
    planned(&mut w, "m1", 5000).unwrap();
    // alice requested the mission; bob owns its agent; both hold L4.
    for who in ["alice", "bob"] {
        assert_eq!(
            vote(&mut w, "m1", None, who, &[], true),
            Err(Rejection::Vote(VoteRefusal::SeparationOfDuties {
                approver: id(who)
            }))
        );
    }
    // Only users can approve.
    let err = w.cmd(
        "acme",
        Actor::Runtime,
        CommandBody::DecideApproval {
            mission: id("m1"),
            hold: None,
            approve: true,
            groups: BTreeSet::new(),
            reason: "auto".into(),
        },
    );
    assert_eq!(err, Err(Rejection::ApproverNotUser));
    // Without the rule, the requester may approve.
    let mut w = World::new();
    set_rules(
        &mut w,
        ApprovalRules {
            separation_of_duties: false,
            ..ApprovalRules::default()
        },
    );
    planned(&mut w, "m2", 5000).unwrap();
    vote(&mut w, "m2", None, "alice", &[], true).unwrap();
    assert_eq!(mission(&w, "m2").state(), MissionState::PendingExecution);
}

#[test]
fn higher_levels_approve_what_lower_levels_may() {
    let mut w = World::new();
    set_rules(&mut w, ApprovalRules::default());
    planned(&mut w, "m1", 5000).unwrap();
    assert_eq!(
        vote(&mut w, "m1", None, "junior", &[], true),
        Err(Rejection::Vote(VoteRefusal::InsufficientLevel {
            approver: id("junior"),
            held: AuthorityLevel::L1,
            required: AuthorityLevel::L2
        }))
    );
    assert!(matches!(
        vote(&mut w, "m1", None, "nobody", &[], true),
        Err(Rejection::Vote(VoteRefusal::NoAuthority { .. }))
    ));
    // A junior who sits on the board holds L4 through the group.
    vote(&mut w, "m1", None, "junior", &["board"], true).unwrap();
    assert_eq!(mission(&w, "m1").state(), MissionState::PendingExecution);
}

#[test]
fn an_approver_can_reject() {
    let mut w = World::new();
    set_rules(&mut w, ApprovalRules::default());
    planned(&mut w, "m1", 5000).unwrap();
    vote(&mut w, "m1", None, "approver-b", &[], false).unwrap();
    let m = mission(&w, "m1");
    let o = m.outcome().unwrap().outcome();
    assert_eq!(
        (o.kind, o.left_state),
        (OutcomeKind::Rejected, MissionState::WaitingApproval)
    );
    assert_eq!(o.result["status"], "rejected");
    // Nobody can request a rejection or denial directly.
    let mut w = World::new();
    planned(&mut w, "m2", 5000).unwrap();
    let err = w.cmd(
        "acme",
        Actor::Runtime,
        CommandBody::CloseMission {
            mission: id("m2"),
            closing: aura_engine::machine::Closing::Abort {
                reason: aura_engine::mission::AbortReason::Rejected,
                note: "shortcut".into(),
            },
        },
    );
    assert!(matches!(err, Err(Rejection::ReservedOutcome(_))));
}

#[test]
fn deadlines_escalate_to_the_next_level_then_reject() {
    let mut w = World::new();
    set_rules(
        &mut w,
        ApprovalRules {
            deadline: Millis::from_secs(600),
            ..ApprovalRules::default()
        },
    );
    planned(&mut w, "m1", 5000).unwrap();
    let expire = |w: &mut World| {
        w.cmd(
            "acme",
            Actor::Runtime,
            CommandBody::ExpireApproval {
                mission: id("m1"),
                hold: None,
            },
        )
    };
    assert!(matches!(
        expire(&mut w),
        Err(Rejection::ApprovalNotDue { .. })
    ));
    w.now = w.now.plus(Millis::from_secs(601));
    expire(&mut w).unwrap();
    let a = mission(&w, "m1").approval().unwrap().clone();
    assert_eq!(
        (a.required_level, a.status, a.escalations),
        (AuthorityLevel::L3, ApprovalStatus::Pending, 1)
    );
    assert!(matches!(
        vote(&mut w, "m1", None, "approver-a", &[], true),
        Err(Rejection::Vote(VoteRefusal::InsufficientLevel { .. }))
    ));
    w.now = w.now.plus(Millis::from_secs(601));
    expire(&mut w).unwrap();
    assert_eq!(
        mission(&w, "m1").approval().unwrap().required_level,
        AuthorityLevel::L4
    );
    w.now = w.now.plus(Millis::from_secs(601));
    expire(&mut w).unwrap();
    let o = mission(&w, "m1").outcome().unwrap().outcome().clone();
    assert_eq!(o.kind, OutcomeKind::Rejected);

    // With the reject rule, the first deadline rejects.
    let mut w = World::new();
    set_rules(
        &mut w,
        ApprovalRules {
            deadline: Millis::from_secs(600),
            at_deadline: AtDeadline::Reject,
            ..ApprovalRules::default()
        },
    );
    planned(&mut w, "m1", 5000).unwrap();
    w.now = w.now.plus(Millis::from_secs(601));
    expire(&mut w).unwrap();
    assert_eq!(mission(&w, "m1").state(), MissionState::Closed);
}

#[test]
fn confidential_data_never_reaches_a_cloud_tool_even_with_l4_approval() {
    let mut w = World::new();
    // Every escalation needs L4; the board approves.
    set_rules(
        &mut w,
        ApprovalRules {
            min_level: AuthorityLevel::L4,
            ..ApprovalRules::default()
        },
    );
    planned(&mut w, "m1", 5000).unwrap();
    vote(&mut w, "m1", None, "junior", &["board"], true).unwrap();
    assert_eq!(mission(&w, "m1").granted_level(), Some(AuthorityLevel::L4));
    w.claim("acme", "m1", "w1", Millis::from_secs(30)).unwrap();
    let events = w
        .evaluate("m1", 0, "crm.read", json!({"amount": 1}))
        .unwrap();
    let Event::ToolCallDecided { decision, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(decision.decision, Decision::Deny);
    assert_eq!(decision.determining, ["aura:data-boundary"]);
    assert!(
        decision.errors[0].contains("may not go to target `cloud`"),
        "{:?}",
        decision.errors
    );
    assert_eq!(
        decision.granted_level, None,
        "the boundary is checked before any approval counts"
    );
    // And at planning time the same step denies the whole plan.
    w.create_mission("acme", "m2", Millis::from_secs(3600));
    w.advance("acme", "m2", Advance::BeginPlanning).unwrap();
    w.ok(
        "acme",
        Actor::Agent(id("bot")),
        CommandBody::SubmitPlan {
            mission: id("m2"),
            steps: vec![PlanStep {
                timeouts: None,
                tool: id("crm.read"),
                arguments: json!({}),
                retry: None,
            }],
        },
    );
    assert_eq!(
        mission(&w, "m2").outcome().unwrap().outcome().kind,
        OutcomeKind::Denied
    );
}

#[test]
fn an_escalation_at_execution_holds_the_step_until_approved() {
    let mut w = World::new();
    set_rules(&mut w, ApprovalRules::default());
    w.create_mission("acme", "m1", Millis::from_secs(3600));
    w.drive_to_in_progress("acme", "m1");
    let call = |w: &mut World| {
        let events = w
            .evaluate("m1", 3, "erp.post", json!({"amount": 5000}))
            .unwrap();
        match &events[0] {
            Event::ToolCallDecided { decision, .. } => decision.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(call(&mut w).decision, Decision::Escalate);
    let m = mission(&w, "m1");
    assert_eq!(
        m.state(),
        MissionState::InProgress,
        "the mission never moves back"
    );
    assert_eq!(m.holds()[&3].approval.status, ApprovalStatus::Pending);
    // Asking again does not open a second hold.
    assert_eq!(call(&mut w).decision, Decision::Escalate);
    assert_eq!(mission(&w, "m1").holds().len(), 1);
    vote(&mut w, "m1", Some(3), "approver-a", &[], true).unwrap();
    let permitted = call(&mut w);
    assert_eq!(permitted.decision, Decision::Permit);
    assert_eq!(permitted.granted_level, Some(AuthorityLevel::L2));
    assert_eq!(permitted.determining, ["large-amounts-need-approval"]);
    assert_eq!(mission(&w, "m1").calls().len(), 3);
    // The approval covers that step only.
    let events = w
        .evaluate("m1", 4, "erp.post", json!({"amount": 5000}))
        .unwrap();
    let Event::ToolCallDecided { decision, .. } = &events[0] else {
        panic!()
    };
    assert_eq!(decision.decision, Decision::Escalate);
}

#[test]
fn canary_assignment_is_sticky_and_close_to_the_share() {
    for bp in [500u32, 2_500, 5_000] {
        let ids: Vec<MissionId> = (0..10_000).map(|i| id(&format!("mission-{i}"))).collect();
        let in_canary = ids
            .iter()
            .filter(|m| canary::assign(m, bp) == Release::Canary)
            .count();
        let expected = bp as usize;
        assert!(
            in_canary.abs_diff(expected) <= 150,
            "{bp} bp: {in_canary} of 10000"
        );
        for m in ids.iter().take(200) {
            assert_eq!(canary::assign(m, bp), canary::assign(m, bp));
        }
        // Growing the share only adds missions to the canary.
        for m in &ids {
            if canary::assign(m, bp) == Release::Canary {
                assert_eq!(canary::assign(m, bp + 1000), Release::Canary);
            }
        }
    }
}

fn stricter_bundle() -> BundleSource {
    BundleSource {
        policies: SIM_BUNDLE.replace("amount > 1000", "amount > 100"),
        schema: None,
    }
}

fn looser_bundle() -> BundleSource {
    BundleSource {
        policies: SIM_BUNDLE.replace("amount > 1000", "amount > 10000"),
        schema: None,
    }
}

#[test]
fn shadow_differences_are_counted_exactly_and_releases_are_analysed() {
    let mut w = World::new();
    let ns: NamespaceId = id("prod");
    // Recent traffic under the stable bundle: amounts 10, 500 and 5000.
    for (i, amount) in [10u64, 500, 5000, 10, 500].iter().enumerate() {
        planned(&mut w, &format!("warm-{i}"), *amount).unwrap();
    }
    for source in [stricter_bundle(), looser_bundle()] {
        w.ok(
            "acme",
            Actor::Platform,
            CommandBody::PutPolicyBundle { source },
        );
    }
    // Analysis: the stricter bundle escalates 500 (tightening twice).
    let events = w.ok(
        "acme",
        Actor::Platform,
        CommandBody::StartCanary {
            namespace: ns.clone(),
            version: stricter_bundle().version(),
            basis_points: 5_000,
        },
    );
    let Event::CanaryStarted { analysis, .. } = &events[0] else {
        panic!()
    };
    assert_eq!(
        (analysis.replayed, analysis.tightening, analysis.loosening),
        (5, 2, 0)
    );
    assert_eq!(analysis.classification, Classification::Tightening);
    assert_eq!(analysis.examples.len(), 2);

    // Run missions on both releases; every decision is shadowed.
    let amounts = [10u64, 500, 5000, 500, 10, 500, 10, 5000];
    let mut expected_tightening = 0;
    let mut expected_same = 0;
    for (i, amount) in amounts.iter().cycle().take(40).enumerate() {
        planned(&mut w, &format!("c-{i}"), *amount).unwrap();
        if *amount == 500 {
            expected_tightening += 1;
        } else {
            expected_same += 1;
        }
    }
    let t = w.state.tenant(&id("acme")).unwrap();
    let releases: BTreeSet<_> = (0..40)
        .map(|i| {
            t.missions()[&id::<MissionId>(&format!("c-{i}"))]
                .boundary()
                .get()
                .policy
                .release
        })
        .collect();
    assert_eq!(releases.len(), 2, "both releases got missions");
    let stats = t.namespaces()[&ns]
        .policy
        .canary
        .as_ref()
        .unwrap()
        .stats
        .clone();
    assert_eq!(stats.evaluated, 40);
    assert_eq!(stats.tightening, expected_tightening);
    assert_eq!(stats.same, expected_same);
    assert_eq!(stats.loosening, 0);

    // A second canary cannot start while one runs; roll back, then try the
    // looser one, whose analysis says loosening.
    assert_eq!(
        w.cmd(
            "acme",
            Actor::Platform,
            CommandBody::StartCanary {
                namespace: ns.clone(),
                version: looser_bundle().version(),
                basis_points: 100
            }
        ),
        Err(Rejection::CanaryRunning)
    );
    w.ok(
        "acme",
        Actor::Platform,
        CommandBody::RollbackCanary {
            namespace: ns.clone(),
        },
    );
    assert_eq!(w.last_audit_kind("acme"), "policy.canary_rollback");
    let t = w.state.tenant(&id("acme")).unwrap();
    assert_eq!(
        t.namespaces()[&ns].policy.stable,
        Some(sim_bundle().version())
    );
    let events = w.ok(
        "acme",
        Actor::Platform,
        CommandBody::StartCanary {
            namespace: ns.clone(),
            version: looser_bundle().version(),
            basis_points: 100,
        },
    );
    let Event::CanaryStarted { analysis, .. } = &events[0] else {
        panic!()
    };
    assert_eq!(analysis.classification, Classification::Loosening);
    w.ok(
        "acme",
        Actor::Platform,
        CommandBody::PromoteCanary {
            namespace: ns.clone(),
        },
    );
    let t = w.state.tenant(&id("acme")).unwrap();
    assert_eq!(
        t.namespaces()[&ns].policy.stable,
        Some(looser_bundle().version())
    );
    assert!(t.namespaces()[&ns].policy.canary.is_none());
    // Missions launched before keep the bundle frozen into their boundary.
    assert_eq!(
        mission(&w, "warm-0").boundary().get().policy.bundle,
        Some(sim_bundle().version())
    );
}

#[test]
fn bad_bundles_are_refused_with_locations_and_change_nothing() {
    let mut w = World::new();
    let before = w.state.digest();
    let err = w
        .cmd(
            "acme",
            Actor::Platform,
            CommandBody::PutPolicyBundle {
                source: BundleSource {
                    policies:
                        "@id(\"p\")\npermit(principal, action, resource) when { resource.nope };"
                            .into(),
                    schema: None,
                },
            },
        )
        .unwrap_err();
    let Rejection::BadBundle(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.problems[0].policy.as_deref(), Some("p"));
    assert_eq!(e.problems[0].line, 2);
    assert_eq!(w.state.digest(), before);
    assert!(matches!(
        w.cmd(
            "acme",
            Actor::Platform,
            CommandBody::SetStableBundle {
                namespace: id("prod"),
                version: aura_engine::Digest::of(b"x")
            }
        ),
        Err(Rejection::UnknownBundle(_))
    ));
}

#[test]
fn decisions_survive_snapshot_and_replay() {
    let mut w = World::new();
    set_rules(&mut w, ApprovalRules::default());
    planned(&mut w, "m1", 5000).unwrap();
    let restored = aura_engine::machine::EngineState::restore(&w.state.snapshot()).unwrap();
    assert!(restored == w.state);
    let mut w2 = World {
        state: restored,
        now: w.now,
    };
    vote(&mut w2, "m1", None, "approver-a", &[], true).unwrap();
    vote(&mut w, "m1", None, "approver-a", &[], true).unwrap();
    assert_eq!(w.state.digest(), w2.state.digest());
}

#[test]
fn tool_calls_are_decided_only_while_in_progress() {
    let mut w = World::new();
    planned(&mut w, "m1", 10).unwrap();
    let err = w.evaluate("m1", 0, "erp.post", json!({"amount": 1}));
    assert_eq!(
        err,
        Err(Rejection::NotExecuting(MissionState::PendingExecution))
    );
    assert_eq!(w.last_audit_kind("acme"), "command.rejected");
}

#[test]
fn a_configuration_change_applies_only_at_the_version_its_author_read() {
    let mut w = World::new();
    let ns: NamespaceId = id("prod");
    let version = |w: &World, part| {
        w.state.tenant(&id("acme")).unwrap().namespaces()[&ns].config_version(part)
    };
    let read = version(&w, ConfigPart::Routing);
    let routing = |targets: &[&str]| CommandBody::SetRouting {
        namespace: ns.clone(),
        routing: aura_engine::policy::routing::RoutingTable(BTreeMap::from([(
            aura_engine::mission::DataClassification::Public,
            targets.iter().map(|t| t.to_string()).collect(),
        )])),
    };
    let at = |v| {
        Some(Precondition::ConfigVersion {
            namespace: ns.clone(),
            part: ConfigPart::Routing,
            version: v,
        })
    };
    // The first writer, at the version read, wins.
    w.cmd_if("acme", Actor::Platform, routing(&["cloud"]), at(read))
        .unwrap();
    let after_first = version(&w, ConfigPart::Routing);
    assert_ne!(after_first, read);
    // The second, at the same (now stale) version, changes nothing.
    let audit_len = w.state.tenant(&id("acme")).unwrap().audit().len();
    let r = w.cmd_if("acme", Actor::Platform, routing(&["on-prem"]), at(read));
    assert_eq!(
        r.unwrap_err(),
        Rejection::StaleConfig {
            part: ConfigPart::Routing,
            current: after_first
        }
    );
    assert_eq!(version(&w, ConfigPart::Routing), after_first);
    assert_eq!(
        w.state.tenant(&id("acme")).unwrap().audit().len(),
        audit_len
    );
    // Other parts keep their own versions.
    let authority = version(&w, ConfigPart::Authority);
    w.cmd_if(
        "acme",
        Actor::Platform,
        routing(&["region:eu"]),
        at(after_first),
    )
    .unwrap();
    assert_eq!(version(&w, ConfigPart::Authority), authority);
}

/// Every decision about a mission carries the same entities (the mission's,
/// its boundary's tools', the constants'), so the engine prepares them once
/// per mission: the plan's steps and the later call share one rendering.
#[test]
fn a_missions_decisions_share_one_set_of_entities() {
    let mut w = World::new();
    // Both of the mission's tools within reach of its confidential data.
    w.ok(
        "acme",
        Actor::Platform,
        CommandBody::RegisterTool {
            tool: id("crm.read"),
            spec: aura_engine::tool::ToolSpec {
                timeouts: None,
                risk: AuthorityLevel::L1,
                classification: aura_engine::mission::DataClassification::Confidential,
                target: "on-prem".into(),
                invocation: None,
            },
        },
    );
    w.create_mission("acme", "m1", Millis::from_secs(3600));
    w.advance("acme", "m1", Advance::BeginPlanning).unwrap();
    let step = |tool: &str| PlanStep {
        timeouts: None,
        tool: id(tool),
        arguments: json!({"amount": 10}),
        retry: None,
    };
    w.ok(
        "acme",
        Actor::Agent(id("bot")),
        CommandBody::SubmitPlan {
            mission: id("m1"),
            steps: vec![step("crm.read"), step("erp.post")],
        },
    );
    w.claim("acme", "m1", "w1", Millis::from_secs(30)).unwrap();
    w.evaluate("m1", 0, "crm.read", json!({"amount": 10}))
        .unwrap();

    let ns = &w.state.tenant(&id("acme")).unwrap().namespaces()[&id::<NamespaceId>("prod")];
    let recent: Vec<_> = ns.recent.iter().collect();
    assert_eq!(recent.len(), 3, "two plan steps and one call");
    let resources: Vec<&str> = recent
        .iter()
        .map(|d| d.request.resource.id.as_str())
        .collect();
    assert_eq!(resources, ["crm.read", "erp.post", "crm.read"]);
    for d in &recent[1..] {
        assert!(std::sync::Arc::ptr_eq(&recent[0].entities, &d.entities));
        assert_ne!(
            d.input_digest, recent[0].input_digest,
            "the requests differ"
        );
    }
    let tools: Vec<&str> = recent[0]
        .entities
        .iter()
        .filter(|e| e["uid"]["type"] == "Aura::Tool")
        .map(|e| e["uid"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["crm.read", "erp.post"]);
}
