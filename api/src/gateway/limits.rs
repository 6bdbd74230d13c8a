//! Rate limits for gateway calls, per agent, per tool, per tenant and per
//! source address (and for failed API-key authentications per source),
//! with the generic cell rate algorithm (GCRA): one stored number per key
//! (the theoretical arrival time), so a check is O(1) and needs no
//! sweeping.
//! With Redis every API node shares the same cells through one Lua script
//! (atomic: all keys pass or none is charged); without it each node keeps
//! its own.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
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
    /// Gateway requests per source address, charged before anything in
    /// the request is read or verified.
    pub per_source: Option<Rate>,
}

/// The default per-source limit of gateway requests.
pub const DEFAULT_PER_SOURCE: Rate = Rate {
    count: 200,
    period_ms: 1000,
};

/// Who a source is, for limits: an IPv4 address, or an IPv6 address's
/// /64 (one subscriber gets a whole /64, so one address each would be no
/// limit at all).
pub fn source_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The cell of one source address under `what` (a limit's name), at
/// `rate`.
pub fn source_cell(what: &'static str, source: IpAddr, rate: Rate) -> Cell {
    Cell {
        key: format!("aura:rl:{{src:{}}}:{what}", source_key(source)),
        rate,
        scope: what,
    }
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

/// KEYS: the cells; ARGV: tolerance (µs) per cell. Whether a call would
/// be refused now, charging nothing: the longest wait (µs), 0 if none.
const PEEK_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local worst, worst_i = 0, 0
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key) or '0')
  local wait = tat - tonumber(ARGV[i]) - now
  if wait > worst then worst, worst_i = wait, i end
end
return {string.format('%d', worst), worst_i}
";

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn limited(cells: &[Cell], index: usize, wait_us: &str) -> Result<Verdict, LimiterUnavailable> {
    let cell = cells
        .get(index.wrapping_sub(1))
        .ok_or_else(|| LimiterUnavailable("bad script answer".into()))?;
    let wait: u64 = wait_us.parse().unwrap_or(1_000_000);
    Ok(Verdict::Limited {
        scope: cell.scope,
        rate: cell.rate,
        retry_after_ms: wait.div_ceil(1000),
    })
}

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
                let now_us = now_us();
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
                limited(cells, index, &wait)
            }
        }
    }

    /// Whether [`Limiter::check`] would refuse now, charging nothing: for
    /// a limit on failures, which is charged only once a request failed
    /// but must stop the next one before it is tried.
    pub async fn peek(&self, cells: &[Cell]) -> Result<Verdict, LimiterUnavailable> {
        match self {
            Limiter::Local(map) => {
                let map = map.lock().unwrap_or_else(|e| e.into_inner());
                Ok(gcra(cells, |k| map.get(k).copied(), now_us())
                    .map_or_else(|limited| limited, |_| Verdict::Allowed))
            }
            Limiter::Redis(conn, _) => {
                if cells.is_empty() {
                    return Ok(Verdict::Allowed);
                }
                let script = redis::Script::new(PEEK_SCRIPT);
                let mut invocation = script.prepare_invoke();
                for cell in cells {
                    invocation.key(&cell.key).arg(cell.rate.tolerance_us());
                }
                let mut conn = conn.clone();
                let (wait, index): (String, usize) = invocation
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| LimiterUnavailable(e.to_string()))?;
                if index == 0 {
                    return Ok(Verdict::Allowed);
                }
                limited(cells, index, &wait)
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

    #[tokio::test]
    async fn a_peek_says_what_a_check_would_and_charges_nothing() {
        let limiter = Limiter::local();
        let cells = [cell("p", "2/min")];
        for _ in 0..5 {
            assert_eq!(limiter.peek(&cells).await.unwrap(), Verdict::Allowed);
        }
        assert_eq!(limiter.check(&cells).await.unwrap(), Verdict::Allowed);
        assert_eq!(limiter.check(&cells).await.unwrap(), Verdict::Allowed);
        assert!(matches!(
            limiter.peek(&cells).await.unwrap(),
            Verdict::Limited { .. }
        ));
    }

    #[test]
    fn sources_are_addresses_or_ipv6_subnets() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(source_key(ip("192.0.2.7")), "192.0.2.7");
        assert_eq!(source_key(ip("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(
            source_key(ip("2001:db8:1:2:aaaa::1")),
            source_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            source_key(ip("2001:db8:1:2::1")),
            source_key(ip("2001:db8:1:3::1"))
        );
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
