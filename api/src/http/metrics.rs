//! Prometheus metrics in the text exposition format: HTTP requests and
//! latencies (recorded by a middleware), and the engine's commits,
//! decisions and missions (read at scrape time).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use aura_engine::mission::MissionState;
use aura_raft::Node;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Http {
    /// (method, route, status) → count.
    requests: BTreeMap<(String, String, u16), u64>,
    /// (method, route) → latencies.
    latency: BTreeMap<(String, String), Histogram>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    http: Mutex<Http>,
}

impl Metrics {
    /// `route` is the matched route template (`/v1/tenants/{tenant}`), never
    /// the raw path, so that ids do not become label values.
    pub fn record(&self, method: &str, route: &str, status: u16, took: Duration) {
        let mut h = self.http.lock().unwrap_or_else(|e| e.into_inner());
        *h.requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let hist = h
            .latency
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                hist.counts[i] += 1;
            }
        }
        hist.count += 1;
        hist.sum += secs;
    }

    /// The exposition: this server's requests, the node's engine and
    /// replication, and the gateway's failed DualToken checks by code
    /// (`refusals`), which are counted all but recorded only sampled.
    pub fn render(&self, node: &Node, refusals: &BTreeMap<&'static str, u64>) -> String {
        let mut out = String::new();
        {
            let h = self.http.lock().unwrap_or_else(|e| e.into_inner());
            out.push_str(
                "# HELP aura_http_requests_total HTTP requests by method, route and status.\n",
            );
            out.push_str("# TYPE aura_http_requests_total counter\n");
            for ((m, r, s), n) in &h.requests {
                let _ = writeln!(
                    out,
                    "aura_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{s}\"}} {n}",
                    escape(r)
                );
            }
            out.push_str("# HELP aura_http_request_duration_seconds HTTP request latency.\n");
            out.push_str("# TYPE aura_http_request_duration_seconds histogram\n");
            for ((m, r), hist) in &h.latency {
                let labels = format!("method=\"{m}\",route=\"{}\"", escape(r));
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "aura_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                        hist.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "aura_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    hist.count
                );
                let _ = writeln!(
                    out,
                    "aura_http_request_duration_seconds_sum{{{labels}}} {}",
                    hist.sum
                );
                let _ = writeln!(
                    out,
                    "aura_http_request_duration_seconds_count{{{labels}}} {}",
                    hist.count
                );
            }
        }
        let status = node.progress();
        let stats = node.applied_stats();
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            &mut out,
            "aura_raft_is_leader",
            "1 if this node is the Raft leader.",
            u64::from(status.role == aura_raft::node::Role::Leader),
        );
        gauge(
            &mut out,
            "aura_raft_term",
            "Current Raft term.",
            status.term,
        );
        gauge(
            &mut out,
            "aura_raft_committed_index",
            "Highest log index known committed.",
            status.committed.unwrap_or(0),
        );
        gauge(
            &mut out,
            "aura_raft_applied_index",
            "Highest log index applied to the engine.",
            status.applied.unwrap_or(0),
        );
        let counter_of = |out: &mut String, name: &str, help: &str, v: &dyn std::fmt::Display| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            counter_of(out, name, help, &v.load(Relaxed));
        };
        let seconds = |out: &mut String, name: &str, help: &str, nanos: &AtomicU64| {
            counter_of(out, name, help, &(nanos.load(Relaxed) as f64 / 1e9));
        };
        counter(
            &mut out,
            "aura_engine_commits_total",
            "Log entries applied by this node since it started.",
            &stats.entries,
        );
        counter(
            &mut out,
            "aura_engine_commands_total",
            "Commands applied or refused by this node since it started (an entry may hold several).",
            &stats.commands,
        );
        counter(
            &mut out,
            "aura_engine_refused_total",
            "Committed commands the engine refused.",
            &stats.refused,
        );
        // What every replica spends again for the same commands: on
        // shared cores, the cluster's rate is bound by their sum.
        seconds(
            &mut out,
            "aura_engine_apply_cpu_seconds_total",
            "CPU time this node spent applying committed entries (every replica spends it again).",
            &stats.cpu_nanos,
        );
        seconds(
            &mut out,
            "aura_raft_log_cpu_seconds_total",
            "CPU time of this node's Raft log writer (writes and fdatasyncs).",
            &node.log().stats().cpu_nanos,
        );
        let snapshots = node.snapshot_stats();
        seconds(
            &mut out,
            "aura_raft_snapshot_cpu_seconds_total",
            "CPU time this node spent building and writing snapshots.",
            &snapshots.cpu_nanos,
        );
        counter(
            &mut out,
            "aura_raft_snapshots_built_total",
            "Snapshots this node has built since it started.",
            &snapshots.built,
        );
        counter(
            &mut out,
            "aura_raft_snapshot_bytes_built_total",
            "Bytes serialized into those snapshots.",
            &snapshots.bytes,
        );
        counter(
            &mut out,
            "aura_raft_snapshot_bytes_written_total",
            "Bytes written to disk for snapshots built or installed (a sealed audit segment is written once).",
            &snapshots.written,
        );
        out.push_str("# HELP aura_policy_decisions_total Policy decisions applied, by outcome.\n");
        out.push_str("# TYPE aura_policy_decisions_total counter\n");
        for (i, outcome) in ["permit", "escalate", "deny"].iter().enumerate() {
            let _ = writeln!(
                out,
                "aura_policy_decisions_total{{outcome=\"{outcome}\"}} {}",
                stats.decisions[i].load(Relaxed)
            );
        }
        let by_state = node.read_local(|s| {
            let mut counts: BTreeMap<&'static str, u64> =
                MissionState::ALL.iter().map(|m| (m.as_str(), 0)).collect();
            // Only open missions are visited: every other one is closed.
            for t in s.tenants() {
                for m in t.open_missions() {
                    *counts.entry(m.state().as_str()).or_default() += 1;
                }
                let closed = t.missions().len() - t.open_mission_count();
                *counts.entry(MissionState::Closed.as_str()).or_default() += closed as u64;
            }
            counts
        });
        out.push_str(
            "# HELP aura_missions Missions on this node, by state.\n# TYPE aura_missions gauge\n",
        );
        for (state, n) in by_state {
            let _ = writeln!(out, "aura_missions{{state=\"{state}\"}} {n}");
        }
        out.push_str(
            "# HELP aura_gateway_refusals_total Gateway calls refused by the DualToken check, by code.\n# TYPE aura_gateway_refusals_total counter\n",
        );
        for (code, n) in refusals {
            let _ = writeln!(out, "aura_gateway_refusals_total{{code=\"{code}\"}} {n}");
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
