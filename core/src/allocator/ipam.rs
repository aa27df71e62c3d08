//! IPv4 address management: subnets (`10.0.1.0/24`), the address pools subnets are cut
//! from (`DefaultAddrPool` by `SubnetSize`), and the addresses of one subnet.
//!
//! ```text
//! DefaultAddrPool 10.0.0.0/8 ──next_subnet(size 24, taken)──> 10.0.1.0/24 (first free,
//!                                                             first pool first)
//! AddressPool(10.0.1.0/24): network .0, gateway .1, broadcast .255 reserved;
//!   reserve(in-use addresses from the store), then allocate() = lowest free address
//! ```
//!
//! Pure and rebuilt on every pass from the store (see `allocator`), so nothing here
//! frees: an address is free when no live task or service holds it.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 subnet, held in canonical form (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    base: u32,
    prefix: u8,
}

impl Subnet {
    /// A subnet from its parts; host bits of `addr` are cleared.
    pub fn new(addr: u32, prefix: u8) -> Option<Subnet> {
        (prefix <= 32).then(|| Subnet {
            base: addr & mask(prefix),
            prefix,
        })
    }

    /// `a.b.c.d/n` (IPv4 only). Host bits may be set, as Go's `net.ParseCIDR` allows.
    pub fn parse(s: &str) -> Option<Subnet> {
        let (addr, prefix) = s.split_once('/')?;
        let addr = parse_addr(addr)?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Subnet::new(addr, prefix.parse().ok()?)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The network address.
    pub fn network(&self) -> u32 {
        self.base
    }

    /// The last address (broadcast).
    pub fn broadcast(&self) -> u32 {
        self.base | !mask(self.prefix)
    }

    /// Addresses in the subnet, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn contains(&self, addr: u32) -> bool {
        addr & mask(self.prefix) == self.base
    }

    pub fn contains_subnet(&self, other: &Subnet) -> bool {
        other.prefix >= self.prefix && self.contains(other.base)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains_subnet(other) || other.contains_subnet(self)
    }

    /// The first host address (Docker's default gateway).
    pub fn first_host(&self) -> u32 {
        self.base.saturating_add(1)
    }

    /// `addr` written with this subnet's prefix: `10.0.1.5/24`.
    pub fn cidr(&self, addr: u32) -> String {
        format!("{}/{}", Ipv4Addr::from(addr), self.prefix)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// A dotted IPv4 address.
pub fn parse_addr(s: &str) -> Option<u32> {
    s.parse::<Ipv4Addr>().ok().map(u32::from)
}

/// The address part of a CIDR string (`10.0.1.5/24` -> 10.0.1.5), or a bare address.
pub fn parse_cidr_addr(s: &str) -> Option<u32> {
    parse_addr(s.split_once('/').map_or(s, |(a, _)| a))
}

/// The first subnet of `size` bits in `pools` that overlaps none of `taken`: pools in
/// order, low addresses first (libnetwork's order). `None`: the pools are exhausted.
/// A pool smaller than `size` is skipped.
pub fn next_subnet(pools: &[Subnet], size: u8, taken: &[Subnet]) -> Option<Subnet> {
    if size > 32 {
        return None;
    }
    let step = 1u64 << (32 - u32::from(size));
    for pool in pools.iter().filter(|p| p.prefix <= size) {
        let end = u64::from(pool.broadcast()) + 1;
        let mut at = u64::from(pool.network());
        while at + step <= end {
            let candidate = Subnet::new(at as u32, size)?;
            match taken.iter().find(|t| t.overlaps(&candidate)) {
                None => return Some(candidate),
                // Skip past the taken one, to the next boundary of `size`.
                Some(t) => {
                    let past = u64::from(t.broadcast()) + 1;
                    at = past.div_ceil(step) * step;
                    at = at.max(u64::from(candidate.network()) + step);
                }
            }
        }
    }
    None
}

/// The addresses of one subnet: which are used, and the lowest free one. The network
/// and broadcast addresses and the gateway are reserved; allocation stays inside
/// `range` (`--ip-range`) when one is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPool {
    subnet: Subnet,
    range: Subnet,
    gateway: u32,
    used: BTreeSet<u32>,
    /// Nothing below it is free (addresses are only taken during a pass).
    cursor: u64,
}

impl AddressPool {
    /// `range` defaults to the whole subnet, `gateway` to its first host.
    pub fn new(subnet: Subnet, range: Option<Subnet>, gateway: Option<u32>) -> AddressPool {
        let range = range.unwrap_or(subnet);
        let gateway = gateway.unwrap_or_else(|| subnet.first_host());
        let mut used = BTreeSet::new();
        used.insert(subnet.network());
        used.insert(subnet.broadcast());
        used.insert(gateway);
        AddressPool {
            subnet,
            range,
            gateway,
            used,
            cursor: u64::from(range.network()),
        }
    }

    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    pub fn gateway(&self) -> u32 {
        self.gateway
    }

    /// Marks `addr` used; false when it was already, or is not in the subnet.
    pub fn reserve(&mut self, addr: u32) -> bool {
        self.subnet.contains(addr) && self.used.insert(addr)
    }

    pub fn is_used(&self, addr: u32) -> bool {
        self.used.contains(&addr)
    }

    /// The lowest free address in the range, now used; `None` when none is left.
    pub fn allocate(&mut self) -> Option<u32> {
        let end = u64::from(self.range.broadcast());
        while self.cursor <= end {
            let addr = self.cursor as u32;
            self.cursor += 1;
            if self.used.insert(addr) {
                return Some(addr);
            }
        }
        None
    }
}
