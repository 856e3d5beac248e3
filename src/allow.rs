//! Allow-lists: the networks an input takes messages and connections from (`allow = [...]`).
//!
//! Pure. A network is an IPv4 or IPv6 prefix (`10.0.0.0/8`, `2001:db8::/32`) or one address
//! (`192.0.2.7`, `::1`); bits past the prefix are cleared (`10.0.0.1/8` is `10.0.0.0/8`). An IPv4 sender reaching an IPv6 socket arrives as `::ffff:a.b.c.d` and
//! is matched as the IPv4 address it is. An empty list allows everyone.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One network of an allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// True if `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(ip)) << 96, self.prefix)
                    == u128::from(u32::from(net)) << 96
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(ip), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// `bits` with all but the first `prefix` bits cleared (as a 128-bit address; IPv4 is shifted
/// into the top 32 bits by the callers).
fn masked(bits: u128, prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => bits & (u128::MAX << (128 - u32::from(p))),
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Network, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            format!("'{s}' is not a network: expected ADDR/PREFIX (10.0.0.0/8, 2001:db8::/32) or an address")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                format!("'{s}' is not a network: the prefix length must be 0 to {max}")
            })?,
        };
        // Bits past the prefix are cleared, as routers read `10.0.0.1/8`: 10.0.0.0/8.
        let addr = match addr {
            IpAddr::V4(a) => {
                let bits = masked(u128::from(u32::from(a)) << 96, prefix) >> 96;
                IpAddr::from((bits as u32).to_be_bytes())
            }
            IpAddr::V6(a) => IpAddr::from(masked(u128::from(a), prefix).to_be_bytes()),
        };
        Ok(Network { addr, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The networks an input serves; empty means everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<Network>);

impl AllowList {
    /// A list of `networks` (empty: everyone).
    pub fn new(networks: Vec<Network>) -> AllowList {
        AllowList(networks)
    }

    /// True if `ip` may send.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.is_empty() || self.0.iter().any(|n| n.contains(ip))
    }

    /// True when it allows everyone.
    pub fn is_everyone(&self) -> bool {
        self.0.is_empty()
    }

    /// The networks.
    pub fn networks(&self) -> &[Network] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(nets: &[&str]) -> AllowList {
        AllowList::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    #[test]
    fn matches_ipv4_and_ipv6_prefixes() {
        let allow = list(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]);
        for ip in [
            "10.1.2.3",
            "10.255.255.255",
            "192.0.2.7",
            "2001:db8:1::5",
            "::ffff:10.9.9.9",
        ] {
            assert!(allow.allows(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "11.0.0.1",
            "192.0.2.8",
            "2001:db9::1",
            "::1",
            "::ffff:11.0.0.1",
            "::a00:1",
        ] {
            assert!(!allow.allows(ip.parse().unwrap()), "{ip}");
        }
        assert!(AllowList::default().allows("203.0.113.1".parse().unwrap()));
        assert!(list(&["0.0.0.0/0"]).allows("203.0.113.1".parse().unwrap()));
        assert!(!list(&["0.0.0.0/0"]).allows("2001:db8::1".parse().unwrap()));
        assert!(list(&["::/0"]).allows("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn refuses_bad_networks_with_a_reason() {
        for (s, reason) in [
            ("10.0.0.0/33", "0 to 32"),
            ("::/129", "0 to 128"),
            ("10.0.0.0/", "0 to 32"),
            ("example.net/8", "not a network"),
            ("", "not a network"),
        ] {
            let err = s.parse::<Network>().unwrap_err();
            assert!(err.contains(reason), "{s}: {err}");
        }
        assert_eq!(
            "192.0.2.7".parse::<Network>().unwrap().to_string(),
            "192.0.2.7/32"
        );
    }

    #[test]
    fn networks_contain_their_addresses_v4_v6_and_mapped() {
        let lan: Network = "10.0.0.0/8".parse().unwrap();
        assert!(lan.contains("10.255.0.1".parse().unwrap()));
        assert!(!lan.contains("11.0.0.1".parse().unwrap()));
        assert!(lan.contains("::ffff:10.1.2.3".parse().unwrap()));
        let odd: Network = "192.168.4.0/22".parse().unwrap();
        assert!(odd.contains("192.168.7.255".parse().unwrap()));
        assert!(!odd.contains("192.168.8.0".parse().unwrap()));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let host: Network = "192.0.2.7".parse().unwrap();
        assert!(host.contains("192.0.2.7".parse().unwrap()));
        assert!(!host.contains("192.0.2.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "2001:db8::/129", "nonsense", "10.0.0.0/x"] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }
}
