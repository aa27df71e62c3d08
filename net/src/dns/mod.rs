//! The embedded DNS server of swarm tasks, as libnetwork's (`resolver.go`, the sandbox's
//! `ResolveName`/`ResolveIP`): every container asks `127.0.0.11:53` inside its own
//! network namespace; names of services and tasks on the container's networks are
//! answered from a table the agent keeps, everything else goes to the host's resolvers.
//!
//! ```text
//!  records.rs      NameRecord, Table: names per network, lookup as libnetwork scopes it
//!  scope.rs        Scope: one container's networks (and its ndots/upstream settings)
//!  answer.rs       answer(table, scope, query) -> Local(response) | Forward | Drop;
//!                  encode() truncates to what the client takes
//!  forward.rs      the query's bytes to the upstreams (UDP/TCP as the client), first
//!                  usable answer back verbatim
//!  server.rs       Resolver (shared table + upstreams), serve_in(netns) -> Handle:
//!                  sockets made inside the netns, served by one task on the runtime
//!  resolv_conf.rs  the host's resolv.conf -> upstreams; a container's resolv.conf
//! ```
//!
//! Built on `hickory-proto` for messages only. `hickory-server` was not used: its
//! `ServerFuture` spawns a task per socket and per request and answers through
//! `MessageResponse` builders, which would re-encode upstream answers instead of relaying
//! their bytes (libnetwork relays them, truncation bit included) and would split one
//! container into two long-lived tasks; the loop here is about a hundred lines and keeps
//! one task per container.

pub mod answer;
pub mod forward;
pub mod records;
pub mod resolv_conf;
pub mod scope;
pub mod server;

pub use answer::{Reply, Transport, TTL};
pub use records::{NameRecord, Table};
pub use resolv_conf::{container_dns, ContainerDns, DnsConfig, ResolvConf};
pub use scope::Scope;
pub use server::{Handle, Resolver, ADDR};
