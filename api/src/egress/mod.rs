//! The egress policy: where outbound calls may go. Every call AURA makes
//! on a tenant's behalf (tools, compensations, model providers) leaves
//! through [`connector::EgressConnector`], which resolves the host, checks
//! every address it resolved to, and connects to those checked addresses
//! only, so a name cannot be rebound to another address between the check
//! and the connection.
//!
//! Refused by default: loopback, link-local (cloud metadata), unspecified,
//! multicast, broadcast and private ranges ([`address::Reserved`]), and
//! this node's own listeners whatever the operator allows. The operator
//! opens private destinations with `--egress-allow`: CIDR blocks, host
//! names, or `*.domain` for every name under a domain (docs/security.md).

pub mod address;
pub mod connector;

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use self::address::{Cidr, Reserved, canonical, reserved};

/// One `--egress-allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressRule {
    /// Addresses in this block may be reached, whatever their range.
    Block(Cidr),
    /// This host name (lowercase, no trailing dot) may resolve to any
    /// address but the node's own listeners.
    Host(String),
    /// Every name under this domain, as `Host`.
    Domain(String),
}

impl FromStr for EgressRule {
    type Err = String;
    fn from_str(s: &str) -> Result<EgressRule, String> {
        let s = s.trim();
        if s.parse::<IpAddr>().is_ok() || s.contains('/') {
            return s.parse().map(EgressRule::Block);
        }
        let (wild, name) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(format!(
                "`{s}` is not a CIDR block, an IP address, a host name or `*.domain`"
            ));
        }
        Ok(if wild {
            EgressRule::Domain(name)
        } else {
            EgressRule::Host(name)
        })
    }
}

impl fmt::Display for EgressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EgressRule::Block(c) => c.fmt(f),
            EgressRule::Host(h) => f.write_str(h),
            EgressRule::Domain(d) => write!(f, "*.{d}"),
        }
    }
}

/// Where outbound calls may go; see the module's documentation.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    blocks: Vec<Cidr>,
    hosts: BTreeSet<String>,
    domains: Vec<String>,
    own: Vec<SocketAddr>,
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{} is one of this node's own listeners; no outbound call may reach it", at(.host, .addr.ip(), Some(.addr.port())))]
    OwnListener { host: String, addr: SocketAddr },
    #[error("{}, a {class} address; the egress policy refuses it unless the operator allows it (`aura serve --egress-allow`)", at(.host, *.addr, None))]
    Reserved {
        host: String,
        addr: IpAddr,
        class: Reserved,
    },
}

/// `host` and the address it is, in words.
fn at(host: &str, addr: IpAddr, port: Option<u16>) -> String {
    let addr = match port {
        Some(p) => SocketAddr::new(addr, p).to_string(),
        None => addr.to_string(),
    };
    if host.trim_matches(['[', ']']) == addr || host.parse::<IpAddr>().is_ok() {
        addr
    } else {
        format!("`{host}` resolves to {addr}")
    }
}

impl EgressPolicy {
    pub fn new(rules: impl IntoIterator<Item = EgressRule>) -> EgressPolicy {
        let mut policy = EgressPolicy::default();
        for rule in rules {
            policy.allow(rule);
        }
        policy
    }

    pub fn allow(&mut self, rule: EgressRule) {
        match rule {
            EgressRule::Block(c) => self.blocks.push(c),
            EgressRule::Host(h) => {
                self.hosts.insert(h);
            }
            EgressRule::Domain(d) => self.domains.push(d),
        }
    }

    /// A listener of this node: never reachable by an outbound call.
    pub fn own_listener(&mut self, addr: SocketAddr) {
        self.own.push(addr);
    }

    /// Whether the call to `host` may connect to `addr`, one of the
    /// addresses `host` resolved to.
    pub fn check(&self, host: &str, addr: SocketAddr) -> Result<(), Refused> {
        let host = normalized(host);
        if self.is_own(addr) {
            return Err(Refused::OwnListener { host, addr });
        }
        let ip = canonical(addr.ip());
        let Some(class) = reserved(ip) else {
            return Ok(());
        };
        if self.blocks.iter().any(|b| b.contains(ip)) || self.host_allowed(&host) {
            return Ok(());
        }
        Err(Refused::Reserved {
            host,
            addr: ip,
            class,
        })
    }

    /// The check a URL can be given before any call: one whose host is an
    /// address is judged now; a name is judged each time it is resolved,
    /// since what it resolves to may change.
    pub fn check_url(&self, url: &str) -> Result<(), Refused> {
        let Ok(uri) = url.parse::<hyper::Uri>() else {
            return Ok(());
        };
        let Some((host, port)) = connector::host_port(&uri) else {
            return Ok(());
        };
        match host.parse::<IpAddr>() {
            Ok(ip) => self.check(&host, SocketAddr::new(ip, port)),
            Err(_) => Ok(()),
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.hosts.contains(host)
            || self.domains.iter().any(|d| {
                host.strip_suffix(d.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
            })
    }

    /// A listener bound to an unspecified address answers on loopback
    /// too; one bound to a public address is matched on that address.
    /// (A listener on 0.0.0.0 is also reachable at the machine's other
    /// addresses, which the node does not enumerate: those are private or
    /// public addresses the operator decides about.)
    fn is_own(&self, addr: SocketAddr) -> bool {
        let ip = canonical(addr.ip());
        let local = |ip: IpAddr| ip.is_loopback() || ip.is_unspecified();
        self.own.iter().any(|l| {
            let lip = canonical(l.ip());
            l.port() == addr.port() && (lip == ip || (local(lip) && local(ip)))
        })
    }
}

fn normalized(host: &str) -> String {
    host.trim_matches(['[', ']'])
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn policy(rules: &[&str]) -> EgressPolicy {
        EgressPolicy::new(rules.iter().map(|r| r.parse().unwrap()))
    }

    #[test]
    fn reserved_addresses_are_refused_until_allowed() {
        let strict = policy(&[]);
        let refused = strict
            .check("metadata", addr("169.254.169.254:80"))
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "`metadata` resolves to 169.254.169.254, a link-local address; the egress \
             policy refuses it unless the operator allows it (`aura serve --egress-allow`)"
        );
        assert!(strict.check("10.0.0.5", addr("10.0.0.5:443")).is_err());
        assert!(
            strict
                .check("api.example", addr("93.184.216.34:443"))
                .is_ok()
        );

        let open = policy(&["10.0.0.0/8", "models.corp", "*.tools.corp"]);
        assert!(open.check("x", addr("10.0.0.5:443")).is_ok());
        assert!(open.check("models.corp.", addr("192.168.0.9:443")).is_ok());
        assert!(open.check("a.tools.corp", addr("192.168.0.9:443")).is_ok());
        assert!(open.check("tools.corp", addr("192.168.0.9:443")).is_err());
        assert!(
            open.check("evil-tools.corp", addr("192.168.0.9:443"))
                .is_err()
        );
        assert!(open.check("x", addr("127.0.0.1:80")).is_err());
    }

    #[test]
    fn the_nodes_own_listeners_are_refused_even_when_loopback_is_allowed() {
        let mut p = policy(&["127.0.0.0/8", "::1"]);
        p.own_listener(addr("0.0.0.0:7411"));
        p.own_listener(addr("127.0.0.1:8080"));
        assert!(matches!(
            p.check("127.0.0.1", addr("127.0.0.1:7411")),
            Err(Refused::OwnListener { .. })
        ));
        assert!(p.check("localhost", addr("[::1]:8080")).is_err());
        assert!(p.check("127.0.0.1", addr("127.0.0.1:9000")).is_ok());
    }

    #[test]
    fn literal_urls_are_judged_before_any_call() {
        let p = policy(&[]);
        for url in [
            "http://169.254.169.254/latest/meta-data",
            "http://127.0.0.1:6379/",
            "https://[::1]/x",
            "http://[::ffff:10.0.0.1]/",
        ] {
            assert!(p.check_url(url).is_err(), "{url}");
        }
        // Names are judged when they are resolved, at each call.
        assert!(p.check_url("http://localhost:5432").is_ok());
        assert!(p.check_url("https://api.example.com/v1").is_ok());
        assert!(p.check_url("https://93.184.216.34/").is_ok());
    }

    #[test]
    fn rules_parse_or_say_what_they_are_not() {
        assert_eq!(
            "*.Corp.Example.".parse::<EgressRule>().unwrap(),
            EgressRule::Domain("corp.example".into())
        );
        assert!(matches!(
            "fd00::/8".parse::<EgressRule>().unwrap(),
            EgressRule::Block(_)
        ));
        assert!("bad host!".parse::<EgressRule>().is_err());
        assert!("10.0.0.0/40".parse::<EgressRule>().is_err());
    }
}
