//! The container's `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`, written in the
//! container dir and bind-mounted over the image's, as Docker does (read-write, or
//! read-only with `--read-only`).
//!
//! ```text
//! hostname          "<hostname>\n"
//! hosts             Docker's localhost lines + one "IP<TAB>host" per `--host` name
//! resolv.conf       no DNS option: the host's, its localhost nameservers dropped
//!                   (they are unreachable from the container's network namespace),
//!                   8.8.8.8 and 8.8.4.4 when none is left;
//!                   `--dns*` given: search / nameserver / options lines rebuilt, each
//!                   from the spec when given there, else from the host's file
//! ```

use super::super::DnsConfig;

/// Docker's fallback when the host names no usable nameserver.
const DEFAULT_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// Docker's default `/etc/hosts` (libnetwork `etchosts.defaultContent`).
const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// `extra` holds the task spec's `Hosts` entries, `IP host [aliases...]` (the CLI's
/// `--host host:ip` stored the swarm way); each name gets its own `IP<TAB>name` line,
/// as dockerd writes the `host:ip` pairs it converts them to. The container's own
/// hostname has no line: the container has no address on a network yet (Docker does
/// the same for a container without one).
pub fn hosts_file(extra: &[String]) -> String {
    let mut out = DEFAULT_HOSTS.to_string();
    for entry in extra {
        let mut words = entry.split_whitespace();
        let Some(ip) = words.next() else { continue };
        for name in words {
            out.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    out
}

fn is_localhost(ip: &str) -> bool {
    ip.starts_with("127.") || ip == "::1"
}

/// The words after `key` on the host file's lines starting with it.
fn host_values<'a>(host: &'a str, key: &str) -> Vec<&'a str> {
    host.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(key)).then_some(w)
        })
        .flatten()
        .collect()
}

fn usable_nameservers(host: &str) -> Vec<String> {
    let found: Vec<String> = host_values(host, "nameserver")
        .into_iter()
        .filter(|ip| !is_localhost(ip))
        .map(String::from)
        .collect();
    if found.is_empty() {
        DEFAULT_NAMESERVERS.iter().map(|s| s.to_string()).collect()
    } else {
        found
    }
}

/// The container's resolv.conf from the host's (`host`, the text of its
/// `/etc/resolv.conf`) and the spec's DNS options.
pub fn resolv_conf(host: &str, dns: &DnsConfig) -> String {
    if dns.nameservers.is_empty() && dns.search.is_empty() && dns.options.is_empty() {
        let mut out = String::new();
        for line in host.lines() {
            let mut w = line.split_whitespace();
            if w.next() == Some("nameserver") && w.next().is_some_and(is_localhost) {
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        if host_values(&out, "nameserver").is_empty() {
            for ns in DEFAULT_NAMESERVERS {
                out.push_str(&format!("nameserver {ns}\n"));
            }
        }
        return out;
    }
    let nameservers = if dns.nameservers.is_empty() {
        usable_nameservers(host)
    } else {
        dns.nameservers.clone()
    };
    // The task's own values, else the host's.
    let or_host = |own: &[String], key: &str| -> Vec<String> {
        if own.is_empty() {
            host_values(host, key)
                .into_iter()
                .map(String::from)
                .collect()
        } else {
            own.to_vec()
        }
    };
    let search = or_host(&dns.search, "search");
    let options = or_host(&dns.options, "options");
    let mut out = String::new();
    // Docker writes no search line for `--dns-search .` alone.
    let search: Vec<&String> = search.iter().filter(|s| s.as_str() != ".").collect();
    if !search.is_empty() {
        out.push_str(&format!(
            "search {}\n",
            search
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    for ns in &nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# managed by hand
nameserver 127.0.0.53
nameserver 10.0.0.2
search corp.example
options edns0 trust-ad
";

    fn dns(ns: &[&str], search: &[&str], options: &[&str]) -> DnsConfig {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        DnsConfig {
            nameservers: v(ns),
            search: v(search),
            options: v(options),
        }
    }

    #[test]
    fn without_dns_options_the_hosts_file_less_its_localhost_nameservers() {
        assert_eq!(
            resolv_conf(HOST, &DnsConfig::default()),
            "# managed by hand\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0 trust-ad\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.53\nsearch lan\n", &DnsConfig::default()),
            "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }

    #[test]
    fn dns_options_replace_their_own_lines_and_keep_the_hosts_others() {
        assert_eq!(
            resolv_conf(
                HOST,
                &dns(
                    &["1.1.1.1", "9.9.9.9"],
                    &["a.example", "b.example"],
                    &["ndots:2"]
                )
            ),
            "search a.example b.example\nnameserver 1.1.1.1\nnameserver 9.9.9.9\noptions ndots:2\n"
        );
        // Only --dns-option: the host's (usable) nameservers and search stay.
        assert_eq!(
            resolv_conf(HOST, &dns(&[], &[], &["ndots:5"])),
            "search corp.example\nnameserver 10.0.0.2\noptions ndots:5\n"
        );
        // Only --dns: the host's search and options stay.
        assert_eq!(
            resolv_conf(HOST, &dns(&["8.8.8.8"], &[], &[])),
            "search corp.example\nnameserver 8.8.8.8\noptions edns0 trust-ad\n"
        );
    }

    #[test]
    fn hosts_has_dockers_localhost_lines_then_one_line_per_extra_name() {
        assert_eq!(
            hosts_file(&["10.0.0.1 db".into(), "10.0.0.9 cache redis".into()]),
            format!("{DEFAULT_HOSTS}10.0.0.1\tdb\n10.0.0.9\tcache\n10.0.0.9\tredis\n")
        );
        assert!(hosts_file(&[]).starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost"));
        assert_eq!(hostname_file("web-1"), "web-1\n");
    }
}
