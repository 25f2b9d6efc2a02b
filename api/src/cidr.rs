//! CIDR blocks (`10.42.0.0/16`, `fd00::/64`) for pod CIDRs and NetworkPolicy
//! `ipBlock`s, built on `std::net`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address as written (may have host bits set; see [`Cidr::network`]).
    pub addr: IpAddr,
    /// Prefix length: 0..=32 for IPv4, 0..=128 for IPv6.
    pub prefix: u8,
}

/// A string that is not a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR address {input:?}: {reason}")]
pub struct CidrError {
    pub input: String,
    pub reason: &'static str,
}

impl Cidr {
    fn bits(&self) -> u8 {
        match self.addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        }
    }

    fn mask(&self) -> u128 {
        let bits = u32::from(self.bits());
        let prefix = u32::from(self.prefix);
        if prefix == 0 {
            0
        } else {
            (u128::MAX << (bits - prefix)) & (u128::MAX >> (128 - bits))
        }
    }

    fn as_u128(addr: IpAddr) -> u128 {
        match addr {
            IpAddr::V4(a) => u128::from(a.to_bits()),
            IpAddr::V6(a) => a.to_bits(),
        }
    }

    /// The network address with host bits cleared (`10.1.2.3/16` → `10.1.0.0/16`).
    pub fn network(&self) -> Cidr {
        let n = Self::as_u128(self.addr) & self.mask();
        let addr = match self.addr {
            // The masked value of an IPv4 address fits in 32 bits.
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from_bits(u32::try_from(n).unwrap_or(0))),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from_bits(n)),
        };
        Cidr {
            addr,
            prefix: self.prefix,
        }
    }

    /// Whether `ip` is inside this network (same family only).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4()
            && Self::as_u128(ip) & self.mask() == Self::as_u128(self.addr) & self.mask()
    }

    /// Whether `other` lies entirely inside this network.
    pub fn contains_cidr(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| CidrError {
            input: s.to_string(),
            reason,
        };
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| err("expected an address and a prefix length, e.g. 10.0.0.0/16"))?;
        let addr: IpAddr = addr.parse().map_err(|_| err("not an IP address"))?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("prefix length must be a number"));
        }
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| err("prefix length is too long"))?;
        let cidr = Cidr { addr, prefix };
        if prefix > cidr.bits() {
            return Err(err("prefix length is too long for the address family"));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_contains() {
        let n = c("10.42.0.0/16");
        assert!(n.contains("10.42.7.9".parse().unwrap()));
        assert!(!n.contains("10.43.0.1".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        assert!(n.contains_cidr(&c("10.42.3.0/24")));
        assert!(!n.contains_cidr(&c("10.0.0.0/8")));
        assert!(c("0.0.0.0/0").contains("192.168.1.1".parse().unwrap()));
        assert!(c("fd00::/64").contains("fd00::5".parse().unwrap()));
        assert_eq!(c("10.1.2.3/16").network().to_string(), "10.1.0.0/16");
        assert_eq!(c("fd00::1/8").network().to_string(), "fd00::/8");
        assert_eq!(c("10.1.2.3/32").network(), c("10.1.2.3/32"));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/",
            "::/129",
            "1.2.3.4/-1",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let e = "10.0.0.0/33".parse::<Cidr>().unwrap_err();
        assert!(e.to_string().contains("too long"), "{e}");
    }
}
