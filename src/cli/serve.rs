//! `aura serve`: start a node. With no options it is the embedded default:
//! a one-node cluster in `./aura-data`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use aura_api::gateway::limits::{Limits, Rate};
use aura_engine::identity::Kek;
use aura_raft::{Bootstrap, ClusterSecret, LogFormat, Node, NodeConfig, NodeInfo, Timing};

use super::kek::KekSource;
use clap::Args;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the HTTP API listens.
    #[arg(long, env = "AURA_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Serve the API over TLS with this PEM certificate chain (leaf
    /// first); answers then carry Strict-Transport-Security.
    #[arg(long, env = "AURA_TLS_CERT", requires = "tls_key", value_name = "PATH")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "AURA_TLS_KEY", requires = "tls_cert", value_name = "PATH")]
    tls_key: Option<PathBuf>,
    /// Origins allowed to call the API from a browser (CORS); none by
    /// default.
    #[arg(long = "cors-origin", env = "AURA_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Where this node keeps its log, snapshots and identity.
    #[arg(long, env = "AURA_DATA_DIR", default_value = "aura-data")]
    data_dir: PathBuf,
    /// This node's id in the cluster (1 or more).
    #[arg(long, env = "AURA_NODE_ID", default_value_t = 1)]
    node_id: u64,
    /// Where the cluster listener (Raft RPC and `aura cluster`) binds.
    #[arg(long, env = "AURA_CLUSTER_LISTEN", default_value = "127.0.0.1:7411")]
    cluster_listen: SocketAddr,
    /// The address peers use to reach this node (default: --cluster-listen).
    #[arg(long, env = "AURA_CLUSTER_ADVERTISE")]
    advertise: Option<String>,
    /// Region label of this node.
    #[arg(long, env = "AURA_REGION", default_value = "local")]
    region: String,
    /// Another initial member, as ID=HOST:PORT@REGION; repeat for each.
    /// All initial members must be given the same list.
    #[arg(
        long = "peer",
        env = "AURA_PEERS",
        value_delimiter = ',',
        value_name = "ID=HOST:PORT@REGION"
    )]
    peers: Vec<String>,
    /// Join the cluster at HOST:PORT as a learner (promote it afterwards
    /// with `aura cluster promote`).
    #[arg(
        long,
        env = "AURA_JOIN",
        conflicts_with = "peers",
        value_name = "HOST:PORT"
    )]
    join: Option<String>,
    /// File holding the shared cluster secret (at least 32 bytes). Required
    /// with --peer or --join; a one-node default creates its own in the
    /// data dir.
    #[arg(long, env = "AURA_CLUSTER_SECRET_FILE")]
    secret_file: Option<PathBuf>,
    /// File holding the cluster's key-encryption key (at least 32 bytes,
    /// mode 0600), which seals every tenant's signing key. One of this,
    /// --kek-command or the variable AURA_KEK (the key material itself) is
    /// required with --peer or --join; a one-node default keeps one in its
    /// data dir.
    #[arg(long, env = "AURA_KEK_FILE", value_name = "PATH")]
    kek_file: Option<PathBuf>,
    /// A command (run with `sh -c`) whose output is the key-encryption key,
    /// for example a KMS or secret manager's CLI.
    #[arg(long, env = "AURA_KEK_COMMAND", value_name = "COMMAND")]
    kek_command: Option<String>,
    /// Election and heartbeat profile: `lan` (one region) or `wan`
    /// (members in several regions).
    #[arg(long, env = "AURA_RAFT_TIMING", default_value = "lan")]
    timing: String,
    /// Override the profile's heartbeat interval.
    #[arg(long)]
    heartbeat_ms: Option<u64>,
    /// Override the profile's minimum election timeout.
    #[arg(long)]
    election_min_ms: Option<u64>,
    /// Override the profile's maximum election timeout.
    #[arg(long)]
    election_max_ms: Option<u64>,
    /// The SQL database (directory, API keys, idempotency records):
    /// `postgres://...` in production. Default: SQLite in the data dir.
    #[arg(long, env = "AURA_DATABASE_URL")]
    database_url: Option<String>,
    /// Build a snapshot (and purge the log behind it) after this many
    /// entries, and once the log holds an eighth of the last snapshot's
    /// size (docs/replication.md).
    #[arg(long, env = "AURA_SNAPSHOT_EVERY", default_value_t = 10_000)]
    snapshot_every: u64,
    /// The newest log entry and snapshot format this node lets the
    /// cluster write: 3 (snapshots whose state digest takes missions by
    /// their digests), 2 (commands committed together in one entry) or 1
    /// (one command per entry). An older one holds the whole cluster at it
    /// so that the nodes can still be downgraded (docs/replication.md).
    #[arg(long, env = "AURA_LOG_FORMAT", default_value = "3")]
    log_format: LogFormat,
    /// Redis shared by all API nodes: the gateway's replay cache and rate
    /// limits (redis://[user:password@]host:port[/db]). Without it each
    /// node keeps its own.
    #[arg(long, env = "AURA_REDIS_URL")]
    redis_url: Option<String>,
    /// Gateway calls per agent, e.g. `50/s` or `1000/min`; unlimited if
    /// unset.
    #[arg(long, env = "AURA_RATE_LIMIT_AGENT")]
    rate_limit_agent: Option<Rate>,
    /// Gateway calls per tool (within a tenant).
    #[arg(long, env = "AURA_RATE_LIMIT_TOOL")]
    rate_limit_tool: Option<Rate>,
    /// Gateway calls per tenant.
    #[arg(long, env = "AURA_RATE_LIMIT_TENANT")]
    rate_limit_tenant: Option<Rate>,
    /// Gateway requests per source address (an IPv6 source is its /64),
    /// counted before anything in the request is verified; `off` for
    /// none.
    #[arg(long, env = "AURA_RATE_LIMIT_SOURCE", default_value = "200/s")]
    rate_limit_source: RateOrOff,
    /// Failed API-key authentications per source address before it gets
    /// 429 with Retry-After; `off` for none.
    #[arg(long, env = "AURA_FAILED_AUTH_LIMIT", default_value = "30/min")]
    failed_auth_limit: RateOrOff,
    /// Serve `/metrics`, `/docs/` and `/openapi.json` only to a platform
    /// key (`Authorization: Bearer`), not to anyone who reaches the
    /// listener (docs/api.md says what they reveal).
    #[arg(long, env = "AURA_PRIVATE_METRICS_AND_DOCS")]
    private_metrics_and_docs: bool,
    /// Missions the built-in executor runs at once on this node (missions
    /// labelled `aura.executor: builtin`; docs/runtime.md). 0 turns it off.
    #[arg(long, env = "AURA_EXECUTOR_CONCURRENCY", default_value_t = 8)]
    executor_concurrency: usize,
    /// How long the built-in executor's claims last without a heartbeat
    /// (1000 to 600000 ms): how soon another node (or this one, restarted)
    /// takes over a mission from a node that died.
    #[arg(long, env = "AURA_EXECUTOR_LEASE_MS", default_value_t = 30_000)]
    executor_lease_ms: u64,
    /// Destinations outbound calls (tools, compensations, model
    /// providers) may reach although they are private or otherwise
    /// reserved: CIDR blocks (`10.20.0.0/16`), addresses, host names or
    /// `*.domain`. Loopback, link-local (cloud metadata), multicast and
    /// private addresses are refused otherwise, and this node's own
    /// listeners always (docs/security.md).
    #[arg(
        long = "egress-allow",
        env = "AURA_EGRESS_ALLOW",
        value_delimiter = ',',
        value_name = "CIDR|HOST"
    )]
    egress_allow: Vec<aura_api::egress::EgressRule>,
    /// How long an `Idempotency-Key` is remembered: a retry within it is
    /// answered as the first request was, one after it runs anew.
    #[arg(long, env = "AURA_IDEMPOTENCY_RETENTION_SECS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(1..=30 * 86_400))]
    idempotency_retention_secs: u64,
    /// Sign a tenant's audit chain once this many of its entries are not
    /// covered by a signed checkpoint.
    #[arg(long, env = "AURA_CHECKPOINT_EVERY_ENTRIES", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every_entries: u64,
    /// Sign a tenant's unsigned audit entries once this many seconds have
    /// passed since its last checkpoint.
    #[arg(long, env = "AURA_CHECKPOINT_EVERY_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    checkpoint_every_secs: u64,
}

/// A rate, or `off`.
#[derive(Clone, Copy, Debug)]
struct RateOrOff(Option<Rate>);

impl std::str::FromStr for RateOrOff {
    type Err = String;
    fn from_str(s: &str) -> Result<RateOrOff, String> {
        if s.trim() == "off" {
            Ok(RateOrOff(None))
        } else {
            s.parse().map(|r| RateOrOff(Some(r)))
        }
    }
}

fn parse_peer(s: &str) -> anyhow::Result<(u64, NodeInfo)> {
    let bad = || format!("--peer `{s}` is not ID=HOST:PORT@REGION");
    let (id, rest) = s.split_once('=').with_context(bad)?;
    let (addr, region) = rest.rsplit_once('@').with_context(bad)?;
    let id: u64 = id.trim().parse().ok().with_context(bad)?;
    Ok((
        id,
        NodeInfo {
            addr: addr.trim().to_owned(),
            region: region.trim().to_owned(),
        },
    ))
}

impl ServeArgs {
    fn timing(&self) -> anyhow::Result<Timing> {
        let mut t = Timing::profile(&self.timing).with_context(|| {
            format!(
                "--timing `{}` is not a profile: use `lan` or `wan`",
                self.timing
            )
        })?;
        if let Some(v) = self.heartbeat_ms {
            t.heartbeat_ms = v;
        }
        if let Some(v) = self.election_min_ms {
            t.election_min_ms = v;
        }
        if let Some(v) = self.election_max_ms {
            t.election_max_ms = v;
        }
        Ok(t)
    }

    fn config(&self, secret: ClusterSecret, kek: Kek) -> anyhow::Result<NodeConfig> {
        let advertise = self
            .advertise
            .clone()
            .unwrap_or_else(|| self.cluster_listen.to_string());
        let bootstrap = match &self.join {
            Some(addr) => Bootstrap::Join(addr.clone()),
            None if self.peers.is_empty() => Bootstrap::Form(BTreeMap::new()),
            None => {
                let mut members = BTreeMap::new();
                members.insert(
                    self.node_id,
                    NodeInfo {
                        addr: advertise.clone(),
                        region: self.region.clone(),
                    },
                );
                for p in &self.peers {
                    let (id, info) = parse_peer(p)?;
                    if id == self.node_id && info.addr != advertise {
                        bail!(
                            "--peer {p} has this node's id {id} but a different address than {advertise}"
                        );
                    }
                    if members.insert(id, info).is_some() && id != self.node_id {
                        bail!("--peer lists node {id} twice");
                    }
                }
                Bootstrap::Form(members)
            }
        };
        Ok(NodeConfig {
            id: self.node_id,
            data_dir: self.data_dir.clone(),
            listen: self.cluster_listen,
            advertise,
            region: self.region.clone(),
            secret,
            kek,
            bootstrap,
            timing: self.timing()?,
            snapshot_every: self.snapshot_every,
            log_format: self.log_format,
        })
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    crate::cli::init_tracing();
    if let Err(e) = aura_api::memory::disable_transparent_huge_pages() {
        tracing::warn!(error = %e, "transparent huge pages stay on; the server runs slower");
    }
    // Everything is checked with a throwaway secret first, so that a bad
    // option touches nothing on disk, not even the secret file.
    let throwaway = Kek::from_material(&[0; 32]).expect("32 bytes");
    args.config(ClusterSecret::random(), throwaway)?
        .validate()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(aura_api::http::tls::server_config(cert, key)?),
        _ => None,
    };
    if tls.is_none() && !args.listen.ip().is_loopback() {
        warn_plain_http(args.listen);
    }
    let kek_env = std::env::var(super::kek::ENV).ok();
    let in_cluster = args.join.is_some() || !args.peers.is_empty();
    let kek_source = KekSource::choose(
        args.kek_file.as_deref(),
        args.kek_command.as_deref(),
        kek_env.as_deref(),
        &args.data_dir,
        in_cluster,
    )?;
    let secret = match &args.secret_file {
        Some(path) => ClusterSecret::read(path)?,
        None if in_cluster => {
            bail!(
                "--secret-file is required with --peer or --join: every member needs the same secret"
            )
        }
        None => {
            std::fs::create_dir_all(&args.data_dir)
                .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
            ClusterSecret::load_or_create(&args.data_dir.join("cluster.secret"))?
        }
    };
    keep_private(&args.data_dir)?;
    let kek = kek_source.load(kek_env.as_deref())?;
    tracing::info!(kek = %kek.id(), "key-encryption key loaded");
    let cfg = args.config(secret, kek)?;
    let mut api_config = aura_api::ApiConfig::default();
    api_config.gateway.redis_url = args.redis_url.clone();
    api_config.gateway.egress = aura_api::egress::EgressPolicy::new(args.egress_allow.clone());
    api_config.idempotency_retention =
        std::time::Duration::from_secs(args.idempotency_retention_secs);
    api_config.checkpoints = aura_api::runtime::checkpoints::CheckpointSchedule {
        entries: args.checkpoint_every_entries,
        interval: std::time::Duration::from_secs(args.checkpoint_every_secs),
    };
    api_config.gateway.limits = Limits {
        per_agent: args.rate_limit_agent,
        per_tool: args.rate_limit_tool,
        per_tenant: args.rate_limit_tenant,
        per_source: args.rate_limit_source.0,
    };
    api_config.failed_auth_per_source = args.failed_auth_limit.0;
    api_config.private_metrics_and_docs = args.private_metrics_and_docs;
    api_config.hsts = tls.is_some();
    if args.executor_concurrency > 0 {
        api_config.executor = Some(aura_api::runtime::executor::ExecutorConfig {
            worker: format!("node-{}", args.node_id)
                .parse()
                .context("the node id makes a worker id")?,
            lease: executor_lease(args.executor_lease_ms)?,
            concurrency: args.executor_concurrency,
        });
    }
    for origin in &args.cors_origins {
        api_config.cors_origins.push(
            origin
                .parse()
                .with_context(|| format!("--cors-origin `{origin}` is not a valid origin"))?,
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let started = std::time::Instant::now();
        // Bound first: a port in use must fail before the node starts.
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let api_addr = listener.local_addr()?;
        api_config.gateway.egress.own_listener(api_addr);
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
        let url = args
            .database_url
            .clone()
            .unwrap_or_else(|| aura_api::store::Store::sqlite_url(&args.data_dir));
        let store = aura_api::store::Store::open(&url)
            .await
            .with_context(|| format!("cannot open the database {}", redact(&url)))?;
        let node = Node::start(cfg).await?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let state = aura_api::AppState::connect(node.clone(), store, api_config).await?;
        // A node that forms the cluster makes sure the platform has a key
        // before it serves; one that joins finds the cluster's.
        let key_file = args.data_dir.join("bootstrap-admin.key");
        let minted = match args.join {
            None => bootstrap_platform(&state.app, &key_file).await?,
            Some(_) => false,
        };
        let stopped = async move {
            let mut rx = stop_rx;
            let _ = rx.wait_for(|s| *s).await;
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = match tls {
            Some(config) => {
                let listener = aura_api::http::tls::TlsListener::new(listener, config)?;
                tokio::spawn(aura_api::serve(listener, state, stopped))
            }
            None => tokio::spawn(aura_api::serve(listener, state, stopped)),
        };
        println!(
            "AURA node {} ({}) ready in {} ms: API {scheme}://{api_addr} (docs at /docs), cluster listener {}, data dir {}",
            node.id(),
            args.region,
            started.elapsed().as_millis(),
            node.local_addr(),
            args.data_dir.display()
        );
        if minted {
            println!(
                "A platform admin API key was written to {} (mode 0600). It is shown nowhere else: keep it safe, then delete the file.",
                key_file.display()
            );
        }
        wait_for_signal().await;
        println!("stopping");
        let _ = stop_tx.send(true);
        let _ = server.await;
        node.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// [`aura_api::bootstrap::ensure_platform_key`] once the cluster takes
/// commands: a node forming a cluster with peers waits for a quorum.
async fn bootstrap_platform(app: &aura_api::app::App, key_file: &Path) -> anyhow::Result<bool> {
    use aura_api::app::AppError;
    use aura_api::bootstrap::{BootstrapError, ensure_platform_key};
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        match ensure_platform_key(app, key_file).await {
            Ok(minted) => return Ok(minted),
            Err(BootstrapError::App(AppError::Cluster(e))) => {
                if !told && started.elapsed() > std::time::Duration::from_secs(5) {
                    eprintln!("waiting for the cluster to elect a leader ({e})");
                    told = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).context("cannot give the platform its first key"),
        }
    }
}

/// API keys and tenants' data would cross the network in the clear: said
/// on stderr, where an operator starting the node looks, and in the log.
fn warn_plain_http(listen: SocketAddr) {
    eprintln!(
        "WARNING: the API listens on {listen}, beyond this machine, over plain HTTP: API keys, \
         tokens and tenants' data cross the network unencrypted. Give it --tls-cert and \
         --tls-key, or keep it on loopback behind a TLS-terminating proxy."
    );
    tracing::warn!(%listen, "the API is served over plain HTTP on a non-loopback address");
}

/// The node's files are its own. Whatever umask started the process,
/// everything it creates from here on (log, snapshots, database, keys) is
/// readable by its user alone; and a data directory an older version or
/// another umask left open is closed up: directories 0700, files 0600.
fn keep_private(data_dir: &Path) -> anyhow::Result<()> {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    close_up(data_dir).with_context(|| {
        format!(
            "cannot make data dir {} private to this user",
            data_dir.display()
        )
    })
}

fn close_up(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::symlink_metadata(path)?;
    // A link is not followed: what it points at is not the node's to
    // change.
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = if meta.is_dir() { 0o700 } else { 0o600 };
    if meta.permissions().mode() & 0o777 != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            close_up(&entry?.path())?;
        }
    }
    Ok(())
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn executor_lease(ms: u64) -> anyhow::Result<aura_engine::time::Millis> {
    use aura_engine::mission::execution::{MAX_LEASE, MIN_LEASE};
    let lease = aura_engine::time::Millis(ms);
    if lease < MIN_LEASE || lease > MAX_LEASE {
        anyhow::bail!(
            "--executor-lease-ms {ms} is outside {} to {} ms",
            MIN_LEASE.0,
            MAX_LEASE.0
        );
    }
    Ok(lease)
}
