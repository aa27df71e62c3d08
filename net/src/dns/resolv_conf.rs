//! resolv.conf for containers served by the embedded DNS, with libnetwork's rules
//! (`internal/resolvconf`: `Parse`, `Path`, the overrides, `TransformForIntNS`):
//!
//! - the host's file is `/etc/resolv.conf`, or `/run/systemd/resolve/resolv.conf` when
//!   the former's only nameserver is systemd-resolved's stub 127.0.0.53;
//! - the container's file lists `nameserver 127.0.0.11` only; the host's nameservers (or
//!   the service's `--dns` ones) become the resolver's upstreams. Loopback ones are kept:
//!   the resolver forwards from the host's namespace, where they answer;
//! - `search` and `options` are the service's when it has any, else the host's; an
//!   invalid `ndots` is dropped and `ndots:0` added when none is left;
//! - unknown directives are copied.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use super::server::ADDR;

/// The systemd-resolved stub that libnetwork looks past.
const SYSTEMD_STUB: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53));

/// A parsed resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    /// The last `search` (or obsolete `domain`) line's domains.
    pub search: Vec<String>,
    /// Every `options` line's options, in order.
    pub options: Vec<String>,
    /// Lines with directives we do not know, verbatim.
    pub other: Vec<String>,
}

impl ResolvConf {
    pub const PATH: &'static str = "/etc/resolv.conf";
    pub const SYSTEMD_PATH: &'static str = "/run/systemd/resolve/resolv.conf";

    /// Parse resolv.conf text; comments, blank lines and unparsable nameservers are
    /// skipped.
    pub fn parse(text: &str) -> Self {
        let mut rc = Self::default();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(first) = fields.first() else {
                continue;
            };
            if first.starts_with('#') || first.starts_with(';') {
                continue;
            }
            let rest = || fields[1..].iter().map(|s| s.to_string());
            match *first {
                "nameserver" => {
                    if let Some(Ok(ip)) = fields.get(1).map(|f| f.parse()) {
                        rc.nameservers.push(ip);
                    }
                }
                "search" | "domain" if fields.len() > 1 => rc.search = rest().collect(),
                "options" => rc.options.extend(rest()),
                "search" | "domain" => {}
                _ => rc.other.push(line.to_string()),
            }
        }
        rc
    }

    /// Which file holds the host's real settings, given the parsed `/etc/resolv.conf`
    /// (libnetwork's `resolvconf.Path`).
    pub fn origin_path(&self) -> &'static Path {
        if self.nameservers == [SYSTEMD_STUB] {
            Path::new(Self::SYSTEMD_PATH)
        } else {
            Path::new(Self::PATH)
        }
    }

    /// Read the host's settings as libnetwork does: `/etc/resolv.conf`, or the file
    /// systemd-resolved keeps behind its stub. A missing file is an empty config.
    pub fn load_host() -> std::io::Result<Self> {
        let read = |p: &Path| match std::fs::read_to_string(p) {
            Ok(s) => Ok(Self::parse(&s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        };
        let etc = read(Path::new(Self::PATH))?;
        match etc.origin_path() {
            p if p == Path::new(Self::PATH) => Ok(etc),
            p => read(p),
        }
    }

    /// The nameservers as upstreams for [`super::Resolver::new`]: port 53, our own
    /// address left out, at most three (libnetwork's `maxExtDNS`).
    pub fn upstreams(&self) -> Vec<SocketAddr> {
        upstreams(&self.nameservers)
    }

    /// The value of the last option `name` (`Some("")` for a flag such as `edns0`).
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.iter().rev().find_map(|o| {
            let (k, v) = o.split_once(':').unwrap_or((o, ""));
            (k == name).then_some(v)
        })
    }
}

fn upstreams(nameservers: &[IpAddr]) -> Vec<SocketAddr> {
    nameservers
        .iter()
        .map(|ip| SocketAddr::new(*ip, 53))
        .filter(|a| *a != ADDR)
        .take(super::forward::MAX_UPSTREAMS)
        .collect()
}

/// A service's `DNSConfig` (`--dns`, `--dns-search`, `--dns-option`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// What a container on the embedded DNS gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDns {
    /// Its `/etc/resolv.conf`.
    pub resolv_conf: String,
    /// Its own upstreams (from the service's nameservers) for [`super::Scope::upstreams`];
    /// `None`: the resolver's (the host's).
    pub upstreams: Option<Vec<SocketAddr>>,
    /// For [`super::Scope::ndots_set`]: `ndots` came from the host or the service.
    pub ndots_set: bool,
}

/// The resolv.conf (and resolver settings) for a container whose DNS is the embedded
/// server, from the host's settings and the service's.
pub fn container_dns(host: &ResolvConf, service: &DnsConfig) -> ContainerDns {
    let mut overrides = Vec::new();
    let upstreams = (!service.nameservers.is_empty()).then(|| {
        overrides.push("nameservers");
        upstreams(&service.nameservers)
    });
    let search: Vec<String> = if service.search.is_empty() {
        host.search.clone()
    } else {
        overrides.push("search");
        service
            .search
            .iter()
            .filter(|s| *s != ".")
            .cloned()
            .collect()
    };
    let mut rc = ResolvConf {
        nameservers: vec![ADDR.ip()],
        search,
        options: if service.options.is_empty() {
            host.options.clone()
        } else {
            overrides.push("options");
            service.options.clone()
        },
        other: host.other.clone(),
    };
    // libnetwork asks before dropping invalid values: an invalid ndots still counts.
    let ndots_set = rc.option("ndots").is_some();
    rc.options.retain(|o| match o.strip_prefix("ndots:") {
        Some(n) => n.parse::<u32>().is_ok(),
        None => o != "ndots",
    });
    if rc.option("ndots").is_none() {
        rc.options.push("ndots:0".into());
    }

    let ext: Vec<String> = upstreams
        .as_deref()
        .map_or_else(|| host.upstreams(), <[_]>::to_vec)
        .iter()
        .map(|a| a.ip().to_string())
        .collect();
    let mut out = format!("nameserver {}\n", ADDR.ip());
    if !rc.search.is_empty() {
        out += &format!("search {}\n", rc.search.join(" "));
    }
    out += &format!("options {}\n", rc.options.join(" "));
    for line in &rc.other {
        out += line;
        out.push('\n');
    }
    out += &format!(
        "\n# ExtServers: [{}]\n# Overrides: [{}]\n",
        ext.join(" "),
        overrides.join(" ")
    );
    ContainerDns {
        resolv_conf: out,
        upstreams,
        ndots_set,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# managed by hand
nameserver 127.0.0.53
nameserver 10.0.0.2
nameserver not-an-ip
search corp.example
options edns0 trust-ad
sortlist 10.0.0.0/8
";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_keeps_what_libnetwork_keeps() {
        let rc = ResolvConf::parse(HOST);
        assert_eq!(
            rc.nameservers,
            vec![
                "127.0.0.53".parse::<IpAddr>().unwrap(),
                "10.0.0.2".parse().unwrap()
            ]
        );
        assert_eq!(rc.search, ["corp.example"]);
        assert_eq!(rc.options, ["edns0", "trust-ad"]);
        assert_eq!(rc.other, ["sortlist 10.0.0.0/8"]);
        assert_eq!(rc.option("edns0"), Some(""));
        assert_eq!(rc.option("ndots"), None);
        let rc = ResolvConf::parse(
            "domain a.example\nsearch b.example c.example\noptions ndots:1\noptions ndots:3\n",
        );
        assert_eq!(rc.search, ["b.example", "c.example"]);
        assert_eq!(rc.option("ndots"), Some("3"));
    }

    #[test]
    fn upstreams_keep_loopback_drop_our_own_address_and_stop_at_three() {
        let rc = ResolvConf::parse(
            "nameserver 127.0.0.11\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\nnameserver 10.0.0.3\n",
        );
        assert_eq!(
            rc.upstreams(),
            vec![sa("127.0.0.53:53"), sa("10.0.0.2:53"), sa("[::1]:53")]
        );
    }

    #[test]
    fn the_systemd_stub_alone_sends_libnetwork_to_resolveds_own_file() {
        let stub = ResolvConf::parse("nameserver 127.0.0.53\noptions edns0\n");
        assert_eq!(stub.origin_path(), Path::new(ResolvConf::SYSTEMD_PATH));
        assert_eq!(
            ResolvConf::parse(HOST).origin_path(),
            Path::new(ResolvConf::PATH)
        );
    }

    #[test]
    fn a_container_gets_the_internal_nameserver_the_hosts_search_and_ndots_0() {
        let dns = container_dns(&ResolvConf::parse(HOST), &DnsConfig::default());
        assert_eq!(
            dns.resolv_conf,
            "nameserver 127.0.0.11\nsearch corp.example\noptions edns0 trust-ad ndots:0\n\
             sortlist 10.0.0.0/8\n\n# ExtServers: [127.0.0.53 10.0.0.2]\n# Overrides: []\n"
        );
        assert_eq!(dns.upstreams, None);
        assert!(!dns.ndots_set);
        let empty = container_dns(&ResolvConf::default(), &DnsConfig::default());
        assert_eq!(
            empty.resolv_conf,
            "nameserver 127.0.0.11\noptions ndots:0\n\n# ExtServers: []\n# Overrides: []\n"
        );
    }

    #[test]
    fn the_services_dns_config_replaces_the_hosts_lines_it_names() {
        let service = DnsConfig {
            nameservers: vec!["10.9.9.9".parse().unwrap()],
            search: vec!["svc.example".into(), ".".into()],
            options: vec!["ndots:2".into(), "timeout:1".into()],
        };
        let dns = container_dns(&ResolvConf::parse(HOST), &service);
        assert_eq!(
            dns.resolv_conf,
            "nameserver 127.0.0.11\nsearch svc.example\noptions ndots:2 timeout:1\n\
             sortlist 10.0.0.0/8\n\n# ExtServers: [10.9.9.9]\n# Overrides: [nameservers search options]\n"
        );
        assert_eq!(dns.upstreams, Some(vec![sa("10.9.9.9:53")]));
        assert!(dns.ndots_set);
    }

    #[test]
    fn an_invalid_ndots_is_replaced_but_still_counts_as_set() {
        let host = ResolvConf::parse("nameserver 10.0.0.2\noptions ndots:x rotate\n");
        let dns = container_dns(&host, &DnsConfig::default());
        assert!(
            dns.resolv_conf.contains("options rotate ndots:0\n"),
            "{}",
            dns.resolv_conf
        );
        assert!(dns.ndots_set);
        let host = ResolvConf::parse("options ndots:5\n");
        let dns = container_dns(&host, &DnsConfig::default());
        assert!(dns.resolv_conf.contains("options ndots:5\n"));
        assert!(dns.ndots_set);
    }
}
