//! IPv4 address management: subnets, gateways, the next free address, the next free subnet.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::error::{Error, Result};

/// An IPv4 network in CIDR form, always stored with the host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Subnet {
        let mask = mask(prefix);
        Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        }
    }

    fn first(&self) -> u32 {
        u32::from(self.network)
    }

    fn last(&self) -> u32 {
        self.first() | !mask(self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.first()
    }

    /// A usable host address: neither the network nor the broadcast address.
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        self.contains(ip) && n != self.first() && n != self.last()
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// The conventional gateway: the first host address.
    pub fn default_gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + 1)
    }

    /// The lowest host address that is neither the gateway nor in `used`.
    pub fn next_free(&self, gateway: Ipv4Addr, used: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        (self.first() + 1..self.last())
            .map(Ipv4Addr::from)
            .find(|ip| *ip != gateway && !used.contains(ip))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = Error;

    /// "a.b.c.d/n" with n in 8..=30; host bits must be zero (docker rejects them too, as a
    /// likely typo).
    fn from_str(s: &str) -> Result<Subnet> {
        let bad = || Error::InvalidSubnet(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        let subnet = Subnet::new(addr, prefix);
        if subnet.network != addr {
            return Err(bad());
        }
        Ok(subnet)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

pub fn parse_ipv4(s: &str) -> Result<Ipv4Addr> {
    s.parse().map_err(|_| Error::InvalidAddress(s.to_string()))
}

/// The first /24 of 172.18.0.0 - 172.31.255.0 that overlaps nothing in `taken` (other
/// networks' subnets and the routes of the namespace the bridges live in).
pub fn pick_subnet(taken: &[Subnet]) -> Result<Subnet> {
    (u32::from(Ipv4Addr::new(172, 18, 0, 0))..=u32::from(Ipv4Addr::new(172, 31, 255, 0)))
        .step_by(256)
        .map(|n| Subnet::new(Ipv4Addr::from(n), 24))
        .find(|candidate| !taken.iter().any(|t| t.overlaps(candidate)))
        .ok_or(Error::NoFreeSubnet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_subnets() {
        let s: Subnet = "10.1.2.0/24".parse().unwrap();
        assert_eq!(s.to_string(), "10.1.2.0/24");
        assert!(s.contains(Ipv4Addr::new(10, 1, 2, 200)));
        assert!(!s.is_host(Ipv4Addr::new(10, 1, 2, 255)));
        assert!(!s.is_host(Ipv4Addr::new(10, 1, 2, 0)));
        assert_eq!(s.default_gateway(), Ipv4Addr::new(10, 1, 2, 1));
        for bad in [
            "10.1.2.0",
            "10.1.2.1/24",
            "10.1.2.0/31",
            "10.1.2.0/x",
            "300.1.2.0/24",
            "",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap_and_allocation() {
        let a: Subnet = "172.18.0.0/16".parse().unwrap();
        let b: Subnet = "172.18.5.0/24".parse().unwrap();
        let c: Subnet = "172.19.0.0/24".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert_eq!(pick_subnet(&[a]).unwrap().to_string(), "172.19.0.0/24");
        assert_eq!(pick_subnet(&[a, c]).unwrap().to_string(), "172.19.1.0/24");
        let small: Subnet = "10.0.0.0/30".parse().unwrap();
        let gw = small.default_gateway();
        let mut used = HashSet::new();
        assert_eq!(small.next_free(gw, &used), Some(Ipv4Addr::new(10, 0, 0, 2)));
        used.insert(Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(small.next_free(gw, &used), None);
    }
}
