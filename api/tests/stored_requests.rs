//! What the SQL store keeps of requests: `Idempotency-Key` records expire
//! after the configured retention, and no secret shown once (a minted API
//! key, a new tenant's admin key) is ever written there in plaintext.

use std::time::Duration;

use aura_api::Role;
use aura_api::testkit::{self, Db, TestServer};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

/// Every byte the store holds, as text: the SQLite files (with the WAL),
/// or every PostgreSQL table row by row.
async fn everything_stored(s: &TestServer) -> String {
    match s.db {
        Db::Sqlite => {
            let mut all = String::new();
            for entry in std::fs::read_dir(&s.dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.starts_with("aura.db") {
                    all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
                }
            }
            all
        }
        Db::Postgres => {
            let db = s.store.db();
            let tables = db
                .query_all(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT table_name::text AS t FROM information_schema.tables \
                     WHERE table_schema = 'public'",
                ))
                .await
                .unwrap();
            let mut all = String::new();
            for t in tables {
                let table: String = t.try_get("", "t").unwrap();
                let rows = db
                    .query_all(Statement::from_string(
                        db.get_database_backend(),
                        format!("SELECT CAST(x AS TEXT) AS r FROM \"{table}\" x"),
                    ))
                    .await
                    .unwrap();
                for r in rows {
                    all.push_str(&r.try_get::<String>("", "r").unwrap());
                    all.push('\n');
                }
            }
            all
        }
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_shown_once_are_never_stored_and_their_retries_say_so() {
    for db in Db::ALL {
        let s = TestServer::start(db).await;
        let platform = s.platform();
        let key = [("idempotency-key", "tenant-acme-1")];
        let body = json!({"id": "acme", "display_name": "Acme"});
        let first = platform
            .raw(Method::POST, "/v1/tenants", Some(&body), &key)
            .await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        let admin_secret = first.body["admin_key"]["key"].as_str().unwrap().to_owned();
        let again = platform
            .raw(Method::POST, "/v1/tenants", Some(&body), &key)
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
        assert_eq!(again.headers["idempotent-replayed"], "true");
        assert_eq!(again.headers["location"], "/v1/tenants/acme");
        let detail = again.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("its secret was in that response only"),
            "{detail}"
        );
        assert!(!again.body.to_string().contains(&admin_secret));

        let admin = s.client(&admin_secret);
        let mint = json!({"user_id": "admin", "name": "ci", "roles": ["operator"]});
        let key = [("idempotency-key", "mint-ci-1")];
        let first = admin
            .raw(Method::POST, "/v1/tenants/acme/api-keys", Some(&mint), &key)
            .await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        let minted = first.body["key"].as_str().unwrap().to_owned();
        let again = admin
            .raw(Method::POST, "/v1/tenants/acme/api-keys", Some(&mint), &key)
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
        assert!(!again.body.to_string().contains(&minted));
        // A key minted without an Idempotency-Key, too.
        let plain = admin
            .create_key("acme", "admin", &[Role::Approver])
            .await
            .unwrap()
            .key;

        let stored = everything_stored(&s).await;
        assert!(stored.contains("acme"), "the dump reads the store");
        for secret in [&admin_secret, &minted, &plain, &s.platform_key] {
            assert!(
                !stored.contains(secret.as_str()),
                "{db:?}: a secret is stored"
            );
            assert!(!stored.contains(&hex(secret)), "{db:?}: a secret is stored");
        }
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_forgotten_after_the_retention() {
    for db in Db::ALL {
        let mut config = testkit::api_config();
        config.idempotency_retention = Duration::from_millis(400);
        let s = TestServer::start_with(db, config).await;
        let admin = s.tenant_admin("acme").await;
        let key = [("idempotency-key", "ns-1")];
        let post = |body: serde_json::Value| {
            let admin = admin.clone();
            async move {
                admin
                    .raw(
                        Method::POST,
                        "/v1/tenants/acme/namespaces",
                        Some(&body),
                        &key,
                    )
                    .await
            }
        };
        let r = post(json!({"id": "ops", "display_name": "Ops"})).await;
        assert_eq!(r.status, StatusCode::CREATED);
        // Within the retention the key belongs to that request.
        let r = post(json!({"id": "sales", "display_name": "Sales"})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        // Past it, the key is free again.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let r = post(json!({"id": "sales", "display_name": "Sales"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        s.stop().await;
    }
}
