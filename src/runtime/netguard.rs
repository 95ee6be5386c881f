//! Which upstream addresses the gateway may connect to.
//!
//! A remote MCP server URL comes from a publisher, so without a check anyone who can
//! publish could make Sigil fetch from its own loopback services, the cloud metadata
//! endpoint or the private network behind it (SSRF). Those ranges are refused unless the
//! admin allow-lists them (`runtime.allow_private_upstreams`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Host names that resolve to instance metadata services on the big clouds.
const METADATA_HOSTS: &[&str] = &["metadata.google.internal", "metadata", "instance-data"];

#[derive(Debug, Clone, Default)]
pub struct NetGuard {
    allow: Vec<Allowed>,
}

#[derive(Debug, Clone)]
enum Allowed {
    Host(String),
    Net(IpAddr, u8),
}

impl NetGuard {
    /// Entries are host names, IP addresses or CIDR ranges; unparsable ones are reported.
    pub fn new(entries: &[String]) -> Result<Self, String> {
        let mut allow = Vec::new();
        for e in entries {
            let e = e.trim();
            if let Some((ip, bits)) = e.split_once('/') {
                let ip: IpAddr = ip
                    .parse()
                    .map_err(|_| format!("allow_private_upstreams: {e:?} is not a CIDR range"))?;
                let bits: u8 = bits
                    .parse()
                    .ok()
                    .filter(|b| *b <= if ip.is_ipv4() { 32 } else { 128 })
                    .ok_or_else(|| format!("allow_private_upstreams: bad prefix in {e:?}"))?;
                allow.push(Allowed::Net(ip, bits));
            } else if let Ok(ip) = e.trim_matches(['[', ']']).parse::<IpAddr>() {
                allow.push(Allowed::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
            } else {
                allow.push(Allowed::Host(e.to_ascii_lowercase()));
            }
        }
        Ok(NetGuard { allow })
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.allow
            .iter()
            .any(|a| matches!(a, Allowed::Host(h) if h == host))
    }

    fn ip_allowed(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|a| match a {
            Allowed::Net(net, bits) => in_net(ip, *net, *bits),
            Allowed::Host(_) => false,
        })
    }

    /// Check a host and the addresses it resolved to. `Err` says why it is refused.
    pub fn check(&self, host: &str, addrs: &[IpAddr]) -> Result<(), String> {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        if self.host_allowed(&host) {
            return Ok(());
        }
        if METADATA_HOSTS.contains(&host.as_str()) {
            return Err(format!("{host} is a cloud metadata host"));
        }
        if addrs.is_empty() {
            return Err(format!("{host} did not resolve to any address"));
        }
        for ip in addrs {
            if let Some(kind) = restricted(*ip) {
                if !self.ip_allowed(*ip) {
                    return Err(format!("{host} resolves to {ip}, a {kind} address"));
                }
            }
        }
        Ok(())
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V4(_)) => a
            .to_ipv4_mapped()
            .is_some_and(|v4| in_net(IpAddr::V4(v4), net, bits)),
        _ => false,
    }
}

/// Why an address is off-limits by default, if it is.
fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return restricted_v4(v4);
            }
            restricted_v6(v6)
        }
    }
}

fn restricted_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_link_local() {
        Some("link-local (metadata)")
    } else if ip.is_private() || (o[0] == 100 && (64..128).contains(&o[1])) {
        Some("private")
    } else if ip.is_unspecified() || ip.is_broadcast() || o[0] == 0 {
        Some("unspecified")
    } else {
        None
    }
}

fn restricted_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("private (unique local)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_internal_ranges_unless_allowed() {
        let g = NetGuard::default();
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
        ] {
            assert!(g.check("h", &[ip(a)]).is_err(), "{a}");
        }
        assert!(g.check("example.com", &[ip("93.184.216.34")]).is_ok());
        assert!(
            g.check("metadata.google.internal", &[ip("8.8.8.8")])
                .is_err()
        );
        let g =
            NetGuard::new(&["127.0.0.1".into(), "10.0.0.0/8".into(), "internal".into()]).unwrap();
        assert!(g.check("localhost", &[ip("127.0.0.1")]).is_ok());
        assert!(g.check("x", &[ip("10.9.9.9")]).is_ok());
        assert!(g.check("x", &[ip("192.168.0.1")]).is_err());
        assert!(g.check("internal", &[ip("192.168.0.1")]).is_ok());
        assert!(NetGuard::new(&["10.0.0.0/99".into()]).is_err());
    }
}
