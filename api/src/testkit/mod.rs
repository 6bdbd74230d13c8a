//! A real server per test: engine, SQL store and HTTP on a loopback port,
//! with the bootstrap platform key and a typed client. SQLite lives in the
//! test's directory; PostgreSQL gets a fresh database per server on the
//! server named by `AURA_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), dropped afterwards.

pub mod agent;

use std::path::PathBuf;

use aura_raft::Node;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::problem::Problem;
use crate::http::v1::directory::{CreateGroup, CreateUser, Group, User};
use crate::http::v1::keys::{ApiKey, CreateKey, KeyCreated};
use crate::http::v1::namespaces::{CreateNamespace, Namespace};
use crate::http::v1::tenants::{CreateTenant, Tenant, TenantCreated};
use crate::store::Store;
use crate::{ApiConfig, AppState, Role};

/// Which database a test server uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    pub const ALL: [Db; 2] = [Db::Sqlite, Db::Postgres];
}

/// Waits until `check` holds, asking every 100 ms; panics naming `what`
/// after 20 s (a cluster that has not caught up by then will not).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let checked = eventually_some(what, || {
        let holds = check();
        async move { if holds.await { Ok(()) } else { Err("not yet") } }
    });
    checked.await
}

/// Waits until `check` yields a value and returns it, asking every
/// 100 ms; after 20 s panics naming `what` and what `check` saw last.
pub async fn eventually_some<T, Seen, F, Fut>(what: &str, mut check: F) -> T
where
    Seen: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Seen>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let seen = match check().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what} (last seen: {seen})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Every file under `dir`, with its path and bytes: what tests grep for
/// values that must never be written down.
pub fn files_under(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p.display().to_string(), b));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}

pub fn postgres_admin_url() -> String {
    std::env::var("AURA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, empty PostgreSQL database; its URL.
pub async fn fresh_postgres_database() -> (String, String) {
    let admin = postgres_admin_url();
    let name = format!("aura_test_{}", crate::random::hex(8));
    let conn = Database::connect(&admin).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {admin} does not answer ({e}); ./deploy/test starts it")
    });
    conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    (format!("{base}/{name}"), name)
}

/// The configuration test servers start with: defaults, and an egress
/// policy that allows loopback, where the tests' tools and model
/// providers listen. (The servers' own listeners stay refused.)
pub fn api_config() -> ApiConfig {
    let mut config = ApiConfig::default();
    config.gateway.egress = crate::egress::EgressPolicy::new([
        "127.0.0.0/8".parse().expect("a block"),
        "::1".parse().expect("an address"),
    ]);
    config
}

/// A configuration whose built-in executor runs (worker `test-node`, 5 s
/// leases, `concurrency` missions at once).
pub fn executor_config(concurrency: usize) -> ApiConfig {
    ApiConfig {
        executor: Some(crate::runtime::executor::ExecutorConfig {
            worker: "test-node".parse().expect("a worker id"),
            lease: aura_engine::time::Millis::from_secs(5),
            concurrency,
        }),
        ..api_config()
    }
}

/// Drops a test database, cutting its open connections.
pub async fn drop_postgres_database(name: &str) {
    if let Ok(conn) = Database::connect(&postgres_admin_url()).await {
        let _ = conn
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}

/// A running server. Dropping it stops nothing at once; call
/// [`TestServer::stop`] to shut down cleanly and drop a PostgreSQL
/// database.
#[derive(Debug)]
pub struct TestServer {
    pub base: String,
    pub node: Node,
    pub store: Store,
    /// The bootstrap `platform_admin` key.
    pub platform_key: String,
    pub db: Db,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pg_database: Option<String>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl TestServer {
    pub async fn start(db: Db) -> TestServer {
        Self::start_with(db, api_config()).await
    }

    /// A node whose built-in executor runs (worker `test-node`, 5 s
    /// leases).
    pub async fn start_with_executor(db: Db) -> TestServer {
        Self::start_with(db, executor_config(4)).await
    }

    pub async fn start_with(db: Db, config: ApiConfig) -> TestServer {
        Self::start_cluster(1, db, config)
            .await
            .pop()
            .expect("one server")
    }

    /// `n` API nodes over one `n`-node engine cluster, sharing the
    /// database (and whatever `config` shares, such as Redis), as a
    /// production deployment does. The first server owns the temporary
    /// directory and the PostgreSQL database: stop it last.
    pub async fn start_cluster(n: u64, db: Db, config: ApiConfig) -> Vec<TestServer> {
        Self::start_cluster_with(n, db, config, |_| {}).await
    }

    /// [`TestServer::start_cluster`] with each node's engine configuration
    /// changed by `adjust` (for `n` > 1).
    pub async fn start_cluster_with(
        n: u64,
        db: Db,
        config: ApiConfig,
        adjust: impl Fn(&mut aura_raft::NodeConfig),
    ) -> Vec<TestServer> {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_owned();
        // The serve default's snapshot interval, not the raft tests' tiny
        // one: snapshots of a growing state every 40 entries would
        // dominate API timings.
        let nodes = if n == 1 {
            let mut cfg = aura_raft::testkit::node_config(
                1,
                &dir,
                &aura_raft::ClusterSecret::random(),
                aura_raft::Bootstrap::Form(Default::default()),
                0,
            );
            cfg.snapshot_every = 10_000;
            vec![Node::start(cfg).await.expect("node starts")]
        } else {
            aura_raft::testkit::cluster(&dir, n, &aura_raft::ClusterSecret::random(), |cfg| {
                cfg.snapshot_every = 10_000;
                adjust(cfg);
            })
            .await
        };
        aura_raft::testkit::formats_agreed(&nodes).await;
        let (url, pg_database) = match db {
            Db::Sqlite => (Store::sqlite_url(&dir), None),
            Db::Postgres => {
                let (url, name) = fresh_postgres_database().await;
                (url, Some(name))
            }
        };
        let store = Store::open(&url).await.expect("store opens");
        let mut tmp = Some(tmp);
        let mut pg_database = pg_database;
        let key_file = dir.join("bootstrap-admin.key");
        let mut platform_key: Option<String> = None;
        let mut servers = Vec::new();
        for node in nodes {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("loopback listener");
            let addr = listener.local_addr().expect("address");
            let base = format!("http://{addr}");
            let mut config = config.clone();
            config.gateway.egress.own_listener(addr);
            let (stop, mut rx) = tokio::sync::watch::channel(false);
            let state = AppState::connect(node.clone(), store.clone(), config)
                .await
                .expect("the API connects");
            // The first node gives the platform its key, as `aura serve`
            // does on a node that forms the cluster.
            if platform_key.is_none() {
                crate::bootstrap::ensure_platform_key(&state.app, &key_file)
                    .await
                    .expect("the platform gets its key");
                let text = std::fs::read_to_string(&key_file).expect("key file");
                platform_key = Some(text.trim().to_owned());
            }
            let platform_key = platform_key.clone().expect("minted above");
            tokio::spawn(crate::serve(listener, state, async move {
                let _ = rx.wait_for(|s| *s).await;
            }));
            servers.push(TestServer {
                base,
                node,
                store: store.clone(),
                platform_key,
                db,
                dir: dir.clone(),
                _tmp: tmp.take(),
                pg_database: pg_database.take(),
                stop,
            });
        }
        servers
    }

    /// Applies a command through the engine directly (setup that the
    /// test is not about); panics if it is refused.
    pub async fn propose(
        &self,
        tenant: &aura_engine::ids::TenantId,
        actor: aura_engine::Actor,
        body: aura_engine::machine::CommandBody,
    ) -> Vec<aura_engine::machine::Event> {
        let cmd = aura_engine::machine::Command {
            tenant: tenant.clone(),
            at: crate::time::now(),
            actor,
            body,
            precondition: None,
        };
        match self.node.propose(cmd).await.expect("the engine answers") {
            aura_raft::Applied::Events(events) => events,
            other => panic!("setup command not applied: {other:?}"),
        }
    }

    /// Claims a queued mission for a worker of the test's (PENDING_EXECUTION
    /// → IN_PROGRESS) with a ten-minute lease; its epoch.
    pub async fn claim(&self, tenant: &str, mission: &str) -> u64 {
        use aura_engine::machine::{CommandBody, Event};
        let events = self
            .propose(
                &tenant.parse().expect("tenant id"),
                aura_engine::Actor::Runtime,
                CommandBody::ClaimMission {
                    mission: mission.parse().expect("mission id"),
                    worker: "testkit".parse().expect("worker id"),
                    lease: aura_engine::time::Millis::from_secs(600),
                    token: format!("tok-{}", crate::random::hex(8))
                        .parse()
                        .expect("token id"),
                },
            )
            .await;
        events
            .iter()
            .find_map(|e| match e {
                Event::MissionClaimed { epoch, .. } => Some(*epoch),
                _ => None,
            })
            .expect("a claim")
    }

    /// The PostgreSQL database of a `Db::Postgres` server.
    pub fn postgres_database(&self) -> Option<&str> {
        self.pg_database.as_deref()
    }

    pub fn client(&self, key: &str) -> Client {
        Client {
            base: self.base.clone(),
            http: reqwest::Client::new(),
            key: Some(key.to_owned()),
        }
    }

    pub fn platform(&self) -> Client {
        self.client(&self.platform_key)
    }

    /// Creates tenant `id` with the platform key; a client with its first
    /// admin's key.
    pub async fn tenant_admin(&self, id: &str) -> Client {
        let created = self
            .platform()
            .create_tenant(id)
            .await
            .expect("tenant created");
        self.client(&created.admin_key.key)
    }

    pub fn anonymous(&self) -> Client {
        Client {
            base: self.base.clone(),
            http: reqwest::Client::new(),
            key: None,
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.node.shutdown().await;
        if let Some(name) = &self.pg_database {
            drop(self.store);
            drop_postgres_database(name).await;
        }
    }
}

/// An error answer: its status and problem.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub problem: Problem,
}

/// A whole response, for tests that look at headers.
#[derive(Debug)]
pub struct Raw {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

/// A typed client of the API, acting with one key.
#[derive(Clone, Debug)]
pub struct Client {
    pub base: String,
    http: reqwest::Client,
    key: Option<String>,
}

impl Client {
    /// A client of the API at `base` (`http://host:port`) sending `key`.
    pub fn connect(base: &str, key: &str) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            key: Some(key.to_owned()),
        }
    }

    /// The API key it sends.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Any request, with optional JSON body and extra headers.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Raw {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read");
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
            })
        };
        Raw {
            status,
            headers,
            body,
        }
    }

    async fn call<R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<R, ApiError> {
        let r = self.raw(method, path, body.as_ref(), &[]).await;
        if r.status.is_success() {
            let body = if r.body.is_null() {
                serde_json::Value::Null
            } else {
                r.body
            };
            Ok(serde_json::from_value(body).expect("the response has the documented shape"))
        } else {
            let problem = serde_json::from_value(r.body.clone())
                .unwrap_or_else(|_| panic!("an error that is not a problem: {}", r.body));
            Err(ApiError {
                status: r.status,
                problem,
            })
        }
    }

    pub async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, ApiError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ApiError> {
        let body = serde_json::to_value(body).expect("request serializes");
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str) -> Result<(), ApiError> {
        self.call(Method::PUT, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Result<(), ApiError> {
        self.call(Method::DELETE, path, None).await
    }

    pub async fn create_tenant(&self, id: &str) -> Result<TenantCreated, ApiError> {
        self.post(
            "/v1/tenants",
            &CreateTenant {
                id: id.into(),
                display_name: format!("Tenant {id}"),
                admin: None,
            },
        )
        .await
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>, ApiError> {
        self.get("/v1/tenants").await
    }

    pub async fn create_namespace(&self, tenant: &str, id: &str) -> Result<Namespace, ApiError> {
        self.post(
            &format!("/v1/tenants/{tenant}/namespaces"),
            &CreateNamespace {
                id: id.into(),
                display_name: format!("Namespace {id}"),
            },
        )
        .await
    }

    pub async fn create_user(&self, tenant: &str, id: &str) -> Result<User, ApiError> {
        self.post(
            &format!("/v1/tenants/{tenant}/users"),
            &CreateUser {
                id: id.into(),
                user_name: format!("{id}@example.com"),
                display_name: id.into(),
                email: Some(format!("{id}@example.com")),
                active: true,
            },
        )
        .await
    }

    pub async fn create_group(&self, tenant: &str, id: &str) -> Result<Group, ApiError> {
        self.post(
            &format!("/v1/tenants/{tenant}/groups"),
            &CreateGroup {
                id: id.into(),
                display_name: format!("Group {id}"),
            },
        )
        .await
    }

    pub async fn add_member(&self, tenant: &str, group: &str, user: &str) -> Result<(), ApiError> {
        self.put(&format!(
            "/v1/tenants/{tenant}/groups/{group}/members/{user}"
        ))
        .await
    }

    pub async fn create_key(
        &self,
        tenant: &str,
        user: &str,
        roles: &[Role],
    ) -> Result<KeyCreated, ApiError> {
        self.post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            &CreateKey {
                name: format!("{user} key"),
                user_id: user.into(),
                roles: roles.to_vec(),
                expires_at: None,
            },
        )
        .await
    }

    pub async fn keys(&self, tenant: &str) -> Result<Vec<ApiKey>, ApiError> {
        self.get(&format!("/v1/tenants/{tenant}/api-keys")).await
    }
}
