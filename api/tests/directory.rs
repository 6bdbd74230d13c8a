//! The directory and API keys as engine commands: every change is in the
//! tenant's audit chain with who made it, approvals take groups and keys
//! from the replicated directory, and directories older versions kept in
//! SQL are adopted once.

use aura_api::Role;
use aura_api::testkit::{Client, Db, TestServer};
use aura_engine::Actor;
use aura_engine::ids::TenantId;
use aura_engine::machine::{CommandBody, SigningSeed};
use aura_engine::mission::AuthorityLevel;
use aura_engine::policy::authority::{ApprovalRules, AuthorityConfig, AuthorityGraph};
use reqwest::{Method, StatusCode};
use sea_orm::{ActiveModelTrait, ConnectionTrait, IntoActiveModel};
use serde_json::{Value, json};

/// The tenant's audit entries whose kind starts with `prefix`.
async fn entries(auditor: &Client, tenant: &str, prefix: &str) -> Vec<Value> {
    let audit: Value = auditor
        .get(&format!("/v1/tenants/{tenant}/audit/entries?limit=1000"))
        .await
        .unwrap();
    audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"]["kind"].as_str().unwrap().starts_with(prefix))
        .cloned()
        .collect()
}

async fn status(c: &Client, method: Method, path: &str, body: Option<&Value>) -> StatusCode {
    c.raw(method, path, body, &[]).await.status
}

/// A namespace `prod` whose `board` group approves at L4, two votes
/// needed, and a mission there that policy escalates.
async fn escalated_mission(s: &TestServer, admin: &Client) {
    admin.create_namespace("acme", "prod").await.unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let ns = aura_engine::ids::NamespaceId::new("prod").unwrap();
    for body in aura_engine::sim::namespace_governance(&ns) {
        s.propose(&tenant, Actor::Platform, body).await;
    }
    let config = AuthorityConfig {
        graph: AuthorityGraph {
            users: Default::default(),
            groups: [("board".to_owned(), AuthorityLevel::L4)].into(),
        },
        rules: ApprovalRules {
            quorum: 2,
            ..ApprovalRules::default()
        },
    };
    s.propose(
        &tenant,
        Actor::Platform,
        CommandBody::SetAuthority {
            namespace: ns,
            config,
        },
    )
    .await;
    let key = aura_engine::identity::KeyPair::from_seed([3; 32])
        .public()
        .to_base64();
    admin
        .post::<_, Value>(
            "/v1/tenants/acme/agents",
            &json!({"id": "bot", "org_unit": "ops", "public_key": key}),
        )
        .await
        .unwrap();
    let m: Value = admin
        .post(
            "/v1/tenants/acme/missions",
            &json!({
                "id": "m1", "namespace": "prod", "agent": "bot",
                "definition": {"objective": "pay", "tools": ["erp.post"],
                               "authority": "L2", "timeout": 3_600_000},
                "context": {"inputs": {}, "classification": "confidential"},
                "plan": [{"tool": "erp.post", "arguments": {"amount": 5000}}]
            }),
        )
        .await
        .unwrap();
    assert_eq!(m["state"], "WAITING_APPROVAL", "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_met_with_keys_an_admin_minted_for_others_is_on_the_record_as_such() {
    let s = TestServer::start(Db::Sqlite).await;
    let admin = s.tenant_admin("acme").await;
    for u in ["ann", "ben"] {
        admin.create_user("acme", u).await.unwrap();
    }
    admin.create_group("acme", "board").await.unwrap();
    admin.add_member("acme", "board", "ann").await.unwrap();
    admin.add_member("acme", "board", "ben").await.unwrap();
    let ann = admin
        .create_key("acme", "ann", &[Role::Approver])
        .await
        .unwrap();
    let ben = admin
        .create_key("acme", "ben", &[Role::Approver])
        .await
        .unwrap();
    escalated_mission(&s, &admin).await;

    for key in [&ann.key, &ben.key] {
        s.client(key)
            .post::<_, Value>(
                "/v1/tenants/acme/missions/m1/decisions",
                &json!({"approve": true, "reason": "checked"}),
            )
            .await
            .unwrap();
    }
    let m: Value = admin.get("/v1/tenants/acme/missions/m1").await.unwrap();
    assert_eq!(m["state"], "PENDING_EXECUTION", "{m}");

    // Each vote names the key it was cast with and that the admin minted
    // it; each mint, that the admin minted it for someone else.
    let votes = entries(&admin, "acme", "mission.approval").await;
    assert_eq!(votes.len(), 2);
    for (vote, key) in votes.iter().zip([&ann, &ben]) {
        assert_eq!(vote["entry"]["actor"], json!({"user": key.user_id}));
        assert_eq!(
            vote["payload"][0],
            json!({"event": "vote_key", "mission": "m1", "hold": null, "key": key.id,
                   "minted_by": {"user": "admin"}})
        );
        assert_eq!(vote["payload"][1]["vote"]["groups"], json!(["board"]));
    }
    let mints = entries(&admin, "acme", "directory.key_mint").await;
    let minted: Vec<(&Value, &Value, &Value)> = mints
        .iter()
        .map(|e| {
            let p = &e["payload"][0];
            (&p["user"], &p["minted_by"], &p["for_another_user"])
        })
        .collect();
    assert_eq!(
        minted,
        [
            (&json!("admin"), &json!("platform"), &json!(true)),
            (&json!("ann"), &json!({"user": "admin"}), &json!(true)),
            (&json!("ben"), &json!({"user": "admin"}), &json!(true)),
        ]
    );
    assert!(
        !mints.iter().any(|e| e.to_string().contains(&ann.key)),
        "never the key itself"
    );
    // The key list says who minted each key.
    let keys = admin.keys("acme").await.unwrap();
    let listed = keys.iter().find(|k| k.id == ann.id).unwrap();
    assert_eq!(listed.minted_by, "user:admin");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_changes_revocations_and_deactivations_are_audited_and_take_effect_at_once() {
    let s = TestServer::start(Db::Sqlite).await;
    let admin = s.tenant_admin("acme").await;
    admin.create_user("acme", "ann").await.unwrap();
    admin.create_group("acme", "board").await.unwrap();
    admin.add_member("acme", "board", "ann").await.unwrap();
    let first = admin
        .create_key("acme", "ann", &[Role::Operator])
        .await
        .unwrap();
    let second = admin
        .create_key("acme", "ann", &[Role::Approver])
        .await
        .unwrap();
    let ann_first = s.client(&first.key);
    let ann_second = s.client(&second.key);
    let users = "/v1/tenants/acme/users";
    assert_eq!(
        status(&ann_first, Method::GET, users, None).await,
        StatusCode::OK
    );

    // Only admins change the directory; ann's refused attempt changes
    // nothing.
    let dave = json!({"id": "dave", "user_name": "dave", "display_name": "Dave"});
    let r = ann_first.raw(Method::POST, users, Some(&dave), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    // A user name is unique whatever its case.
    let same = json!({"id": "ann2", "user_name": "ANN@Example.com", "display_name": "Ann"});
    let r = admin.raw(Method::POST, users, Some(&same), &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);

    admin
        .delete(&format!("/v1/tenants/acme/api-keys/{}", first.id))
        .await
        .unwrap();
    let r = ann_first.raw(Method::GET, users, None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["detail"], "the API key has been revoked");
    assert_eq!(
        status(&ann_second, Method::GET, users, None).await,
        StatusCode::OK
    );

    let ann = "/v1/tenants/acme/users/ann";
    let off = json!({"active": false});
    let u: Value = admin.raw(Method::PATCH, ann, Some(&off), &[]).await.body;
    assert_eq!(u["active"], false, "{u}");
    let r = ann_second.raw(Method::GET, users, None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["detail"], "the API key's user is no longer active");
    let on = json!({"active": true});
    admin.raw(Method::PATCH, ann, Some(&on), &[]).await;
    assert_eq!(
        status(&ann_second, Method::GET, users, None).await,
        StatusCode::OK
    );
    // An administrator cannot lock themselves out.
    let r = admin
        .raw(
            Method::PATCH,
            "/v1/tenants/acme/users/admin",
            Some(&off),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);

    admin.delete(ann).await.unwrap();
    assert_eq!(
        status(&ann_second, Method::GET, users, None).await,
        StatusCode::UNAUTHORIZED
    );
    let group: Value = admin.get("/v1/tenants/acme/groups/board").await.unwrap();
    assert_eq!(group["members"], json!([]));

    let kinds: Vec<(String, Value)> = entries(&admin, "acme", "directory.")
        .await
        .iter()
        .map(|e| {
            let kind = e["entry"]["kind"].as_str().unwrap().to_owned();
            (kind, e["entry"]["actor"].clone())
        })
        .collect();
    let by_admin = json!({"user": "admin"});
    let expected: Vec<(String, Value)> = [
        ("directory.user_create", json!("platform")),
        ("directory.key_mint", json!("platform")),
        ("directory.user_create", by_admin.clone()),
        ("directory.group_create", by_admin.clone()),
        ("directory.member_add", by_admin.clone()),
        ("directory.key_mint", by_admin.clone()),
        ("directory.key_mint", by_admin.clone()),
        ("directory.key_revoke", by_admin.clone()),
        ("directory.user_active", by_admin.clone()),
        ("directory.user_active", by_admin.clone()),
        ("directory.user_delete", by_admin.clone()),
    ]
    .into_iter()
    .map(|(k, a)| (k.to_owned(), a))
    .collect();
    assert_eq!(kinds, expected);
    let deleted = entries(&admin, "acme", "directory.user_delete").await;
    assert_eq!(
        deleted[0]["payload"][0],
        json!({"event": "user_deleted", "user": "ann", "groups_left": ["board"],
               "keys_revoked": [second.id]})
    );
    // Refused attempts are on the record too.
    let refused = entries(&admin, "acme", "command.rejected").await;
    assert!(refused.is_empty(), "refused before the engine: {refused:?}");
    s.stop().await;
}

/// A tenant created by a version whose directory lived in SQL: the
/// tenant exists in the engine with an empty directory, and its users,
/// groups and keys are rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_an_older_version_kept_in_sql_is_adopted_once_and_its_keys_keep_working() {
    let s = TestServer::start(Db::Sqlite).await;
    let db = s.store.db();
    let now = aura_api::time::now_millis();
    for (id, active) in [("root", true), ("gone", false)] {
        db.execute_unprepared(&format!(
            "INSERT INTO users (tenant, id, user_name, display_name, email, active, created_at) \
             VALUES ('legacy', '{id}', '{id}', '{id}', NULL, {active}, {now})"
        ))
        .await
        .unwrap();
    }
    db.execute_unprepared(&format!(
        "INSERT INTO groups (tenant, id, display_name, created_at) VALUES ('legacy', 'board', 'Board', {now})"
    ))
    .await
    .unwrap();
    db.execute_unprepared(
        "INSERT INTO group_members (tenant, group_id, user_id) VALUES ('legacy', 'board', 'root')",
    )
    .await
    .unwrap();
    let key = |user: &str, roles: &str, revoked: Option<i64>| {
        let minted = aura_api::app::keys::secret::mint();
        let row = aura_api::store::keys::StoredKey {
            id: minted.id.to_string(),
            tenant: Some("legacy".into()),
            user_id: Some(user.into()),
            name: format!("{user}'s key"),
            roles: roles.into(),
            secret_hash: minted.secret_hash.to_hex(),
            created_at: now,
            expires_at: None,
            revoked_at: revoked,
        };
        (minted.text, row)
    };
    let (root_key, root_row) = key("root", "admin", None);
    let (revoked_key, revoked_row) = key("root", "auditor", Some(now));
    let (gone_key, gone_row) = key("gone", "operator", None);
    for row in [root_row, revoked_row, gone_row] {
        row.into_active_model().insert(db).await.unwrap();
    }
    // The rows first, as an upgrade finds them: nothing adopts a tenant
    // the engine does not hold.
    let tenant = TenantId::new("legacy").unwrap();
    s.propose(
        &tenant,
        Actor::Platform,
        CommandBody::CreateTenant {
            display_name: "Legacy".into(),
            signing_key_seed: SigningSeed([9; 32]).into(),
        },
    )
    .await;
    let users = "/v1/tenants/legacy/users";
    let root = s.client(&root_key);

    let state = aura_api::AppState::connect(
        s.node.clone(),
        s.store.clone(),
        aura_api::testkit::api_config(),
    )
    .await
    .unwrap();
    // The server adopts at start, too: whichever gets there first, the
    // directory is adopted once.
    aura_api::app::adopt::sql_directories(&state.app)
        .await
        .unwrap();
    let listed: Vec<Value> = root.get(users).await.unwrap();
    let active: Vec<(&Value, &Value)> = listed.iter().map(|u| (&u["id"], &u["active"])).collect();
    assert_eq!(
        active,
        [
            (&json!("gone"), &json!(false)),
            (&json!("root"), &json!(true))
        ]
    );
    let group: Value = root.get("/v1/tenants/legacy/groups/board").await.unwrap();
    assert_eq!(group["members"], json!(["root"]));
    for refused in [&revoked_key, &gone_key] {
        let r = s.client(refused).raw(Method::GET, users, None, &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    }
    // On the record, by the platform; never adopted twice.
    let adoption = entries(&root, "legacy", "directory.").await;
    assert_eq!(adoption.len(), 9, "{adoption:?}");
    assert!(adoption.iter().all(|e| e["entry"]["actor"] == "platform"));
    assert_eq!(
        aura_api::app::adopt::sql_directories(&state.app)
            .await
            .unwrap(),
        0
    );
    s.stop().await;
}
