//! Rate limits for gateway calls, per agent, per tool and per tenant, with
//! the generic cell rate algorithm (GCRA): one stored number per key (the
//! theoretical arrival time), so a check is O(1) and needs no sweeping.
//! With Redis every API node shares the same cells through one Lua script
//! (atomic: all keys pass or none is charged); without it each node keeps
//! its own.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use redis::aio::ConnectionManager;

/// `count` calls per `period_ms`, with bursts of up to `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period_ms: u64,
}

impl Rate {
    /// Microseconds between calls at the steady rate.
    fn emission_us(self) -> u64 {
        (self.period_ms * 1000 / u64::from(self.count)).max(1)
    }
    /// How far ahead of the steady rate a burst may run.
    fn tolerance_us(self) -> u64 {
        self.emission_us() * u64::from(self.count - 1)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.period_ms {
            1000 => write!(f, "{}/s", self.count),
            60_000 => write!(f, "{}/min", self.count),
            3_600_000 => write!(f, "{}/h", self.count),
            ms => write!(f, "{}/{ms}ms", self.count),
        }
    }
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Rate, String> {
        let bad = || format!("`{s}` is not a rate: write <count>/s, <count>/min or <count>/h");
        let (count, unit) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let period_ms = match unit.trim() {
            "s" | "sec" => 1000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        if count == 0 || count > 1_000_000 {
            return Err(format!("`{s}`: the count must be 1 to 1000000"));
        }
        Ok(Rate { count, period_ms })
    }
}

/// The configured limits; `None` means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub per_agent: Option<Rate>,
    pub per_tool: Option<Rate>,
    pub per_tenant: Option<Rate>,
}

/// One cell to charge: its key, its rate, and what it limits (for the
/// refusal message).
#[derive(Clone, Debug)]
pub struct Cell {
    pub key: String,
    pub rate: Rate,
    pub scope: &'static str,
}

impl Limits {
    /// The cells a call by `agent` to `tool` in `tenant` is charged to.
    /// Keys share the tenant as a hash tag so a Redis Cluster keeps them
    /// on one shard (a script may only touch one).
    pub fn cells(&self, tenant: &str, agent: &str, tool: &str) -> Vec<Cell> {
        let mut out = Vec::with_capacity(3);
        if let Some(rate) = self.per_agent {
            out.push(Cell {
                key: format!("aura:rl:{{{tenant}}}:agent:{agent}"),
                rate,
                scope: "agent",
            });
        }
        if let Some(rate) = self.per_tool {
            out.push(Cell {
                key: format!("aura:rl:{{{tenant}}}:tool:{tool}"),
                rate,
                scope: "tool",
            });
        }
        if let Some(rate) = self.per_tenant {
            out.push(Cell {
                key: format!("aura:rl:{{{tenant}}}:tenant"),
                rate,
                scope: "tenant",
            });
        }
        out
    }
}

/// The answer to a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Limited {
        /// Which limit refused: agent, tool or tenant.
        scope: &'static str,
        rate: Rate,
        retry_after_ms: u64,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("the shared rate limiter (Redis) did not answer: {0}")]
pub struct LimiterUnavailable(String);

/// Where the cells live.
pub enum Limiter {
    Local(Mutex<HashMap<String, u64>>),
    /// The script is hashed once; calls go by its SHA (EVALSHA), loading it
    /// only when Redis does not know it yet.
    Redis(ConnectionManager, redis::Script),
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limiter::Local(_) => "Limiter::Local",
            Limiter::Redis(..) => "Limiter::Redis",
        })
    }
}

/// The same algorithm as the Lua script below, for one node.
fn gcra(
    cells: &[Cell],
    stored: impl Fn(&str) -> Option<u64>,
    now_us: u64,
) -> Result<Vec<u64>, Verdict> {
    let mut next = Vec::with_capacity(cells.len());
    let mut worst: Option<(u64, &Cell)> = None;
    for cell in cells {
        let tat = stored(&cell.key).unwrap_or(now_us).max(now_us);
        let wait = tat.saturating_sub(cell.rate.tolerance_us() + now_us);
        if wait > 0 && worst.is_none_or(|(w, _)| wait > w) {
            worst = Some((wait, cell));
        }
        next.push(tat + cell.rate.emission_us());
    }
    match worst {
        Some((wait, cell)) => Err(Verdict::Limited {
            scope: cell.scope,
            rate: cell.rate,
            retry_after_ms: wait.div_ceil(1000),
        }),
        None => Ok(next),
    }
}

/// KEYS: the cells; ARGV: emission and tolerance (µs) per cell. Uses the
/// Redis server's clock so that API nodes with skewed clocks agree.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local worst, worst_i = 0, 0
local next = {}
for i, key in ipairs(KEYS) do
  local emission = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local wait = tat - tolerance - now
  if wait > worst then worst, worst_i = wait, i end
  next[i] = tat + emission
end
if worst > 0 then return {0, string.format('%d', worst), worst_i} end
for i, key in ipairs(KEYS) do
  local ttl = math.ceil((next[i] - now) / 1000)
  if ttl < 1 then ttl = 1 end
  redis.call('SET', key, string.format('%d', next[i]), 'PX', ttl)
end
return {1, '0', 0}
";

impl Limiter {
    pub fn local() -> Limiter {
        Limiter::Local(Mutex::new(HashMap::new()))
    }

    pub fn redis(conn: ConnectionManager) -> Limiter {
        Limiter::Redis(conn, redis::Script::new(GCRA_SCRIPT))
    }

    /// Charges every cell, or none if any of them is exhausted.
    pub async fn check(&self, cells: &[Cell]) -> Result<Verdict, LimiterUnavailable> {
        if cells.is_empty() {
            return Ok(Verdict::Allowed);
        }
        match self {
            Limiter::Local(map) => {
                let now_us = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros() as u64);
                let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
                // Cells idle past their tolerance hold no information.
                if map.len() > 100_000 {
                    map.retain(|_, tat| *tat > now_us);
                }
                match gcra(cells, |k| map.get(k).copied(), now_us) {
                    Ok(next) => {
                        for (cell, tat) in cells.iter().zip(next) {
                            map.insert(cell.key.clone(), tat);
                        }
                        Ok(Verdict::Allowed)
                    }
                    Err(limited) => Ok(limited),
                }
            }
            Limiter::Redis(conn, script) => {
                let mut invocation = script.prepare_invoke();
                for cell in cells {
                    invocation
                        .key(&cell.key)
                        .arg(cell.rate.emission_us())
                        .arg(cell.rate.tolerance_us());
                }
                let mut conn = conn.clone();
                let (allowed, wait, index): (i64, String, usize) = invocation
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| LimiterUnavailable(e.to_string()))?;
                if allowed == 1 {
                    return Ok(Verdict::Allowed);
                }
                let cell = cells
                    .get(index.wrapping_sub(1))
                    .ok_or_else(|| LimiterUnavailable("bad script answer".into()))?;
                let wait: u64 = wait.parse().unwrap_or(1000);
                Ok(Verdict::Limited {
                    scope: cell.scope,
                    rate: cell.rate,
                    retry_after_ms: wait.div_ceil(1000),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(key: &str, rate: &str) -> Cell {
        Cell {
            key: key.into(),
            rate: rate.parse().unwrap(),
            scope: "agent",
        }
    }

    #[test]
    fn rates_parse_and_refuse_nonsense() {
        assert_eq!(
            "5/s".parse::<Rate>(),
            Ok(Rate {
                count: 5,
                period_ms: 1000
            })
        );
        assert_eq!("120/min".parse::<Rate>().unwrap().period_ms, 60_000);
        for bad in ["", "5", "0/s", "5/day", "x/s", "2000000/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_burst_of_the_count_passes_then_the_steady_rate() {
        let cells = [cell("a", "5/s")];
        let mut tat: Option<u64> = None;
        let t0 = 1_000_000_000;
        for i in 0..5 {
            let next = gcra(&cells, |_| tat, t0).unwrap_or_else(|v| panic!("call {i}: {v:?}"));
            tat = Some(next[0]);
        }
        let Err(Verdict::Limited { retry_after_ms, .. }) = gcra(&cells, |_| tat, t0) else {
            panic!("the sixth call in the same instant must wait")
        };
        assert_eq!(retry_after_ms, 200);
        assert!(gcra(&cells, |_| tat, t0 + 200_000).is_ok());
    }

    #[test]
    fn the_strictest_cell_refuses_and_none_is_charged() {
        let cells = [cell("loose", "100/s"), cell("tight", "1/s")];
        let stored: HashMap<String, u64> = HashMap::from([("tight".to_owned(), 2_000_000)]);
        let Err(Verdict::Limited { retry_after_ms, .. }) =
            gcra(&cells, |k| stored.get(k).copied(), 1_000_000)
        else {
            panic!()
        };
        assert_eq!(retry_after_ms, 1000);
    }
}
