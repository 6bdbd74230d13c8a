//! What kind of address a destination is: the ranges the egress policy
//! refuses unless the operator allows them, and CIDR blocks to allow them
//! with.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A range no outbound call reaches by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// 127.0.0.0/8, ::1: this machine (the node's listeners, Redis,
    /// PostgreSQL).
    Loopback,
    /// 169.254.0.0/16, fe80::/10: cloud metadata services live here.
    LinkLocal,
    /// 0.0.0.0/8, ::: "this host" on most systems.
    Unspecified,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 255.255.255.255 and 240.0.0.0/4.
    Broadcast,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade NAT),
    /// fc00::/7 and fec0::/10: the deployment's own network.
    Private,
}

impl fmt::Display for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reserved::Loopback => "loopback",
            Reserved::LinkLocal => "link-local",
            Reserved::Unspecified => "unspecified",
            Reserved::Multicast => "multicast",
            Reserved::Broadcast => "broadcast or reserved",
            Reserved::Private => "private",
        })
    }
}

/// The range `ip` falls in, if it is one the policy refuses by default.
/// An IPv6 address that carries an IPv4 one (mapped, NAT64, 6to4) is
/// judged by the IPv4 address it reaches.
pub fn reserved(ip: IpAddr) -> Option<Reserved> {
    match canonical(ip) {
        IpAddr::V4(v4) => reserved_v4(v4),
        IpAddr::V6(v6) => reserved_v6(v6),
    }
}

/// `ip` with any IPv4 address an IPv6 one carries taken out of it.
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let tail = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) route to an IPv4 host.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(tail(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return IpAddr::V4(tail(s[1], s[2]));
    }
    ip
}

fn reserved_v4(ip: Ipv4Addr) -> Option<Reserved> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some(Reserved::Loopback)
    } else if ip.is_link_local() {
        Some(Reserved::LinkLocal)
    } else if a == 0 {
        Some(Reserved::Unspecified)
    } else if ip.is_multicast() {
        Some(Reserved::Multicast)
    } else if a >= 240 {
        Some(Reserved::Broadcast)
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some(Reserved::Private)
    } else {
        None
    }
}

fn reserved_v6(ip: Ipv6Addr) -> Option<Reserved> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some(Reserved::Loopback)
    } else if ip.is_unspecified() {
        Some(Reserved::Unspecified)
    } else if ip.is_multicast() {
        Some(Reserved::Multicast)
    } else if first & 0xffc0 == 0xfe80 {
        Some(Reserved::LinkLocal)
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
        Some(Reserved::Private)
    } else if ip.segments()[..6] == [0; 6] {
        // Deprecated IPv4-compatible addresses (::a.b.c.d): nothing
        // legitimate sends to them.
        Some(Reserved::Unspecified)
    } else {
        None
    }
}

/// An address block, `10.0.0.0/8` or `fd00::/8`; a bare address is a
/// block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u128::from(u32::from(n)), self.prefix, 32)
                    == masked(u128::from(u32::from(a)), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), self.prefix, 128) == masked(u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits >> (width - prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network = canonical(
            addr.parse::<IpAddr>()
                .map_err(|_| format!("`{s}` is not an IP address or CIDR block"))?,
        );
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {width}"))?,
        };
        let cidr = Cidr { network, prefix };
        let bits = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        };
        let host_bits = if prefix == width {
            0
        } else {
            bits(network) & ((1u128 << (width - prefix)) - 1)
        };
        if host_bits != 0 {
            return Err(format!(
                "`{s}` has bits set past its prefix: did you mean {}?",
                Cidr {
                    network: from_bits(bits(network) & !((1u128 << (width - prefix)) - 1), width),
                    prefix
                }
            ));
        }
        Ok(cidr)
    }
}

fn from_bits(bits: u128, width: u8) -> IpAddr {
    if width == 32 {
        IpAddr::V4(Ipv4Addr::from(bits as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_ranges_an_attacker_aims_at_are_reserved() {
        for (addr, class) in [
            ("127.0.0.1", Reserved::Loopback),
            ("127.10.0.3", Reserved::Loopback),
            ("::1", Reserved::Loopback),
            ("::ffff:127.0.0.1", Reserved::Loopback),
            ("64:ff9b::7f00:1", Reserved::Loopback),
            ("2002:7f00:1::", Reserved::Loopback),
            ("169.254.169.254", Reserved::LinkLocal),
            ("::ffff:169.254.169.254", Reserved::LinkLocal),
            ("fe80::1", Reserved::LinkLocal),
            ("0.0.0.0", Reserved::Unspecified),
            ("::", Reserved::Unspecified),
            ("::7f00:1", Reserved::Unspecified),
            ("224.0.0.1", Reserved::Multicast),
            ("ff02::1", Reserved::Multicast),
            ("255.255.255.255", Reserved::Broadcast),
            ("10.1.2.3", Reserved::Private),
            ("172.20.0.1", Reserved::Private),
            ("192.168.1.1", Reserved::Private),
            ("100.64.0.1", Reserved::Private),
            ("fd12::1", Reserved::Private),
        ] {
            assert_eq!(reserved(ip(addr)), Some(class), "{addr}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "172.32.0.1"] {
            assert_eq!(reserved(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn blocks_contain_their_addresses_and_mapped_forms() {
        let block: Cidr = "10.20.0.0/16".parse().unwrap();
        assert!(block.contains(ip("10.20.3.4")));
        assert!(block.contains(ip("::ffff:10.20.3.4")));
        assert!(!block.contains(ip("10.21.0.1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("1.2.3.4")));
    }

    #[test]
    fn a_malformed_block_says_what_is_wrong() {
        assert!(
            "10.0.0.0/33"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("0 to 32")
        );
        assert!("example".parse::<Cidr>().unwrap_err().contains("not an IP"));
        assert!(
            "10.0.0.1/8"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("did you mean 10.0.0.0/8")
        );
    }
}
