//! Failover time: a three-process cluster (`aura serve`, default `lan`
//! timing) has its leader killed with SIGKILL, over and over; each round
//! measures from the kill to the first write acknowledged afterwards,
//! proposed through a surviving node.
//!
//! `cargo bench --bench failover` (`AURA_FAILOVER_KILLS`, default 24).

// Shared with the tests, which use all of it; this benchmark does not.
#[allow(dead_code)]
#[path = "../tests/support/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use aura_engine::sim::{self, WorkloadShape};
use cluster::ProcessCluster;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let kills: usize = std::env::var("AURA_FAILOVER_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let cmds = sim::generate(
        9,
        WorkloadShape {
            missions: (kills * 4) as u32,
            ..WorkloadShape::default()
        },
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut times = Vec::new();
    rt.block_on(async {
        let mut c = ProcessCluster::start(3).await;
        let mut next = 0;
        // Tenants and namespaces first, so later commands apply.
        let leader = c.leader(Duration::from_secs(20)).await;
        while next < 40 {
            c.propose(leader, &cmds[next]).await.expect("warm-up write");
            next += 1;
        }
        for round in 0..kills {
            let leader = c.leader(Duration::from_secs(20)).await;
            let via = (1..=3).find(|n| *n != leader).unwrap();
            c.kill(leader);
            let killed = Instant::now();
            loop {
                match c.propose(via, &cmds[next % cmds.len()]).await {
                    Ok(_) => break,
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
                assert!(
                    killed.elapsed() < Duration::from_secs(30),
                    "no write within 30 s"
                );
            }
            let took = killed.elapsed();
            next += 1;
            times.push(took);
            eprintln!("kill {round}: first acknowledged write after {took:?}");
            c.restart(leader);
            c.converged(Duration::from_secs(30)).await;
        }
        c.stop_all();
    });
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "failover over {} leader kills: p50 {:?}, p99 {:?}, max {:?} (goal p99 <= 2 s)",
        times.len(),
        pct(0.50),
        pct(0.99),
        times[times.len() - 1]
    );
}
