//! Authentication, authorization, the directory and idempotency over HTTP,
//! each against SQLite and a real PostgreSQL.

use aura_api::Role;
use aura_api::store::idempotency::Claim;
use aura_api::testkit::{Db, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_authenticate_and_roles_authorize() {
    for db in Db::ALL {
        let s = TestServer::start(db).await;
        // No key, a malformed key, an unknown key: 401 with a challenge.
        for client in [
            s.anonymous(),
            s.client("not-a-key"),
            s.client("aura_0123456789abcdef_c2VjcmV0"),
        ] {
            let r = client.raw(Method::GET, "/v1/tenants", None, &[]).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{db:?} {:?}", r.body);
            assert_eq!(r.body["type"], "urn:aura:problem:unauthorized");
            assert!(
                r.headers["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
        }
        // The right id with the wrong secret is as unknown as any other.
        let id = s.platform_key.split('_').nth(1).unwrap();
        let forged = s.client(&format!(
            "aura_{id}_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
        let e = forged.tenants().await.unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);

        let created = s.platform().create_tenant("acme").await.unwrap();
        assert_eq!(created.tenant.id, "acme");
        assert_eq!(created.admin_key.roles, vec![Role::Admin]);
        let admin = s.client(&created.admin_key.key);

        // The platform key manages tenants, never their contents.
        let e = s
            .platform()
            .create_namespace("acme", "ops")
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND, "{:?}", e.problem);
        // A tenant key cannot create tenants.
        let e = admin.create_tenant("other").await.unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);

        admin.create_namespace("acme", "ops").await.unwrap();
        admin.create_user("acme", "alice").await.unwrap();
        let auditor = s.client(
            &admin
                .create_key("acme", "alice", &[Role::Auditor])
                .await
                .unwrap()
                .key,
        );
        // Members read; a role they lack is a 403 naming the role.
        let ns: Vec<Value> = auditor.get("/v1/tenants/acme/namespaces").await.unwrap();
        assert_eq!(ns.len(), 1);
        let e = auditor.create_namespace("acme", "x").await.unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(e.problem.detail.contains("`admin`"), "{}", e.problem.detail);
        // Keys are listed without secrets; revoking one stops it at once.
        let keys = admin.keys("acme").await.unwrap();
        assert_eq!(keys.len(), 2);
        let listed = serde_json::to_string(&keys).unwrap();
        assert!(!listed.contains("aura_"), "no secret in listings: {listed}");
        let auditor_key = keys
            .iter()
            .find(|k| k.roles == vec![Role::Auditor])
            .unwrap();
        admin
            .delete(&format!("/v1/tenants/acme/api-keys/{}", auditor_key.id))
            .await
            .unwrap();
        let e = auditor
            .get::<Value>("/v1/tenants/acme/namespaces")
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert!(e.problem.detail.contains("revoked"));
        // Revoking again finds nothing to revoke.
        let e = admin
            .delete(&format!("/v1/tenants/acme/api-keys/{}", auditor_key.id))
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_and_removed_users_stop_working() {
    for db in Db::ALL {
        let s = TestServer::start(db).await;
        let admin = s.tenant_admin("acme").await;
        admin.create_user("acme", "bob").await.unwrap();
        let soon = aura_api::time::now_millis() + 300;
        let k: Value = admin
            .post(
                "/v1/tenants/acme/api-keys",
                &json!({"name": "short", "user_id": "bob", "roles": ["operator"], "expires_at": soon}),
            )
            .await
            .unwrap();
        let bob = s.client(k["key"].as_str().unwrap());
        bob.get::<Value>("/v1/tenants/acme").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let e = bob.get::<Value>("/v1/tenants/acme").await.unwrap_err();
        assert!(e.problem.detail.contains("expired"), "{:?}", e.problem);

        let k = admin
            .create_key("acme", "bob", &[Role::Operator])
            .await
            .unwrap();
        let bob = s.client(&k.key);
        bob.get::<Value>("/v1/tenants/acme").await.unwrap();
        admin.delete("/v1/tenants/acme/users/bob").await.unwrap();
        let e = bob.get::<Value>("/v1/tenants/acme").await.unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        // Keys only for active users of the directory, with tenant roles.
        for (body, pointer) in [
            (
                json!({"name": "k", "user_id": "nobody", "roles": ["admin"]}),
                "/user_id",
            ),
            (
                json!({"name": "k", "user_id": "admin", "roles": []}),
                "/roles",
            ),
            (
                json!({"name": "k", "user_id": "admin", "roles": ["platform_admin"]}),
                "/roles/0",
            ),
            (
                json!({"name": "k", "user_id": "admin", "roles": ["root"]}),
                "/roles/0",
            ),
            (
                json!({"name": "k", "user_id": "admin", "roles": ["admin"], "expires_at": 1}),
                "/expires_at",
            ),
        ] {
            let r = admin
                .raw(Method::POST, "/v1/tenants/acme/api-keys", Some(&body), &[])
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body} {:?}",
                r.body
            );
            assert_eq!(
                r.body["errors"][0]["pointer"], pointer,
                "{body} {:?}",
                r.body
            );
        }
        assert_eq!(
            admin.keys("acme").await.unwrap().len(),
            3,
            "no key was added"
        );
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_resources_are_indistinguishable_from_missing_ones() {
    let s = TestServer::start(Db::Sqlite).await;
    let a = s.tenant_admin("alpha").await;
    let b = s.tenant_admin("beta").await;
    b.create_namespace("beta", "secret-ns").await.unwrap();
    b.create_user("beta", "carol").await.unwrap();
    b.create_group("beta", "finance").await.unwrap();
    for path in [
        "/v1/tenants/beta",
        "/v1/tenants/beta/namespaces",
        "/v1/tenants/beta/namespaces/secret-ns",
        "/v1/tenants/beta/users",
        "/v1/tenants/beta/users/carol",
        "/v1/tenants/beta/groups/finance",
        "/v1/tenants/beta/api-keys",
    ] {
        let theirs = a.raw(Method::GET, path, None, &[]).await;
        let missing = a
            .raw(Method::GET, &path.replace("beta", "gamma"), None, &[])
            .await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            theirs.body["detail"]
                .as_str()
                .unwrap()
                .replace("beta", "gamma"),
            missing.body["detail"],
            "{path}: the answers differ only by the name asked for"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_violations_are_conflicts_and_change_nothing() {
    for db in Db::ALL {
        let s = TestServer::start(db).await;
        let admin = s.tenant_admin("acme").await;
        let u = admin.create_user("acme", "dave").await.unwrap();
        let e = admin.create_user("acme", "dave").await.unwrap_err();
        assert_eq!(e.status, StatusCode::CONFLICT, "{db:?}");
        assert_eq!(e.problem.kind, "urn:aura:problem:conflict");
        // Same user name, other id: the unique index refuses it too.
        let r = admin
            .raw(
                Method::POST,
                "/v1/tenants/acme/users",
                Some(&json!({"id": "dave2", "user_name": u.user_name, "display_name": "D"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{db:?} {:?}", r.body);
        admin.create_group("acme", "ops").await.unwrap();
        assert_eq!(
            admin.create_group("acme", "ops").await.unwrap_err().status,
            StatusCode::CONFLICT
        );
        assert_eq!(
            s.platform().create_tenant("acme").await.unwrap_err().status,
            StatusCode::CONFLICT
        );
        let users: Vec<Value> = admin.get("/v1/tenants/acme/users").await.unwrap();
        assert_eq!(users.len(), 2, "admin and dave, nothing more");
        // Membership: adding twice is a no-op, and unknown users are 404.
        admin.add_member("acme", "ops", "dave").await.unwrap();
        admin.add_member("acme", "ops", "dave").await.unwrap();
        let g: Value = admin.get("/v1/tenants/acme/groups/ops").await.unwrap();
        assert_eq!(g["members"], json!(["dave"]));
        assert_eq!(
            admin
                .add_member("acme", "ops", "nobody")
                .await
                .unwrap_err()
                .status,
            StatusCode::NOT_FOUND
        );
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_the_first_response_and_creates_nothing_new() {
    for db in Db::ALL {
        let s = TestServer::start(db).await;
        let admin = s.tenant_admin("acme").await;
        let body = json!({"id": "ops", "display_name": "Operations"});
        let key = [("idempotency-key", "ns-create-1")];
        let first = admin
            .raw(
                Method::POST,
                "/v1/tenants/acme/namespaces",
                Some(&body),
                &key,
            )
            .await;
        assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
        let again = admin
            .raw(
                Method::POST,
                "/v1/tenants/acme/namespaces",
                Some(&body),
                &key,
            )
            .await;
        assert_eq!(
            again.status,
            StatusCode::CREATED,
            "the first answer, not a conflict"
        );
        assert_eq!(again.body, first.body);
        assert_eq!(again.headers["location"], first.headers["location"]);
        assert_eq!(again.headers["idempotent-replayed"], "true");
        // Without the key the same request is a new one: a conflict.
        let plain = admin
            .raw(
                Method::POST,
                "/v1/tenants/acme/namespaces",
                Some(&body),
                &[],
            )
            .await;
        assert_eq!(plain.status, StatusCode::CONFLICT);
        // The key with another body is refused, and does nothing.
        let other = json!({"id": "ops2", "display_name": "Other"});
        let r = admin
            .raw(
                Method::POST,
                "/v1/tenants/acme/namespaces",
                Some(&other),
                &key,
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["type"], "urn:aura:problem:idempotency-key-reused");
        let ns: Vec<Value> = admin.get("/v1/tenants/acme/namespaces").await.unwrap();
        assert_eq!(ns.len(), 1);
        // Errors replay too: the same refused request gives the same problem.
        let bad = json!({"id": "Not Valid", "display_name": "x"});
        let k2 = [("idempotency-key", "ns-bad")];
        let r1 = admin
            .raw(Method::POST, "/v1/tenants/acme/namespaces", Some(&bad), &k2)
            .await;
        let r2 = admin
            .raw(Method::POST, "/v1/tenants/acme/namespaces", Some(&bad), &k2)
            .await;
        assert_eq!(r1.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            (r2.status, &r2.body["detail"]),
            (r1.status, &r1.body["detail"])
        );
        // Keys are per caller: another key's same Idempotency-Key is fresh.
        let other_admin = s.client(
            &admin
                .create_key("acme", "admin", &[Role::Admin])
                .await
                .unwrap()
                .key,
        );
        let r = other_admin
            .raw(
                Method::POST,
                "/v1/tenants/acme/namespaces",
                Some(&body),
                &key,
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "ran again, found it exists");
        s.stop().await;
    }
}

/// A key claimed by a request whose server stopped part way (the claim
/// is older than any request runs) is not run again: the write may have
/// taken effect before the server stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_left_claimed_by_a_stopped_server_is_not_run_again() {
    for db in Db::ALL {
        let s = TestServer::start(db).await;
        let admin = s.tenant_admin("acme").await;
        let path = "/v1/tenants/acme/namespaces";
        let body = json!({"id": "ops", "display_name": "Operations"});
        let (key_id, _) = aura_api::app::keys::secret::parse(admin.key().unwrap()).unwrap();
        let digest = aura_api::http::idempotency::request_digest(
            &Method::POST,
            path,
            &serde_json::to_vec(&body).unwrap(),
        );
        // What a server that stopped an hour ago, mid-request, left.
        let an_hour_ago = aura_api::time::now_millis() - 3_600_000;
        let claim = s
            .store
            .claim_idempotent(key_id.as_str(), "ns-1", &digest, an_hour_ago, 300_000)
            .await
            .unwrap();
        assert_eq!(claim, Claim::Fresh);

        let key = [("idempotency-key", "ns-1")];
        for _ in 0..2 {
            let r = admin.raw(Method::POST, path, Some(&body), &key).await;
            assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
            assert_eq!(r.headers["idempotent-replayed"], "true");
            let detail = r.body["detail"].as_str().unwrap_or_default();
            assert!(detail.contains("may have taken effect"), "{detail}");
        }
        let ns: Vec<Value> = admin.get(path).await.unwrap();
        assert!(ns.is_empty(), "ran again: {ns:?}");
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_point_at_the_field() {
    let s = TestServer::start(Db::Sqlite).await;
    let admin = s.tenant_admin("acme").await;
    for (body, status, pointer) in [
        (json!({"id": "ops"}), 422, Some("")),
        (json!({"id": 5, "display_name": "x"}), 422, Some("/id")),
        (
            json!({"id": "ops", "display_name": "x", "extra": 1}),
            422,
            Some("/extra"),
        ),
        (
            json!({"id": "UPPER", "display_name": "x"}),
            422,
            Some("/id"),
        ),
    ] {
        let r = admin
            .raw(
                Method::POST,
                "/v1/tenants/acme/namespaces",
                Some(&body),
                &[],
            )
            .await;
        assert_eq!(r.status.as_u16(), status, "{body} {:?}", r.body);
        assert_eq!(r.headers["content-type"], "application/problem+json");
        if let Some(p) = pointer {
            assert_eq!(r.body["errors"][0]["pointer"], p, "{body} {:?}", r.body);
        }
    }
    let r = admin
        .raw(
            Method::POST,
            "/v1/tenants/acme/namespaces",
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = admin
        .raw(Method::POST, "/v1/tenants/acme/namespaces", None, &[])
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let ns: Vec<Value> = admin.get("/v1/tenants/acme/namespaces").await.unwrap();
    assert!(ns.is_empty(), "nothing was created");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_paths_are_bad_requests() {
    let s = TestServer::start(Db::Sqlite).await;
    let admin = s.tenant_admin("acme").await;
    for path in [
        "/v1/tenants/acme/missions/%00%ff",
        "/v1/tenants/acme/namespaces/%c3%28",
        "/v1/tenants/%ff/missions",
    ] {
        let r = admin.raw(Method::GET, path, None, &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {:?}", r.body);
        assert_eq!(r.headers["content-type"], "application/problem+json");
        assert_eq!(r.body["type"], "urn:aura:problem:bad-request", "{path}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_needs_the_database() {
    let s = TestServer::start(Db::Postgres).await;
    let r = s.anonymous().raw(Method::GET, "/readyz", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    aura_api::testkit::drop_postgres_database(s.postgres_database().unwrap()).await;
    let r = s.anonymous().raw(Method::GET, "/readyz", None, &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert_eq!(r.body["type"], "urn:aura:problem:not-ready");
    assert!(r.body["detail"].as_str().unwrap().contains("database"));
    // Liveness does not depend on it.
    let r = s.anonymous().raw(Method::GET, "/healthz", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_the_engine_refuses_leaves_no_directory_or_keys() {
    let s = TestServer::start(Db::Sqlite).await;
    let too_long = "x".repeat(10_000);
    let r = s
        .platform()
        .raw(
            Method::POST,
            "/v1/tenants",
            Some(&json!({"id": "acme", "display_name": too_long})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let tenants: Vec<Value> = s.platform().get("/v1/tenants").await.unwrap();
    assert!(tenants.is_empty(), "{tenants:?}");
    // The same tenant can then be created normally.
    let admin = s.tenant_admin("acme").await;
    let users: Vec<Value> = admin.get("/v1/tenants/acme/users").await.unwrap();
    assert_eq!(users.len(), 1);
    s.stop().await;
}
