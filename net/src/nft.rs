//! Running nftables transactions in a given network namespace, and the small expression
//! builders the rulesets share.
//!
//! Why the `nftables` crate (JSON through `nft -j -f -`) and not `rustables` (raw
//! netlink): each of our rulesets is one batch that `nft` applies as one kernel
//! transaction, so "delete the table and write it again" replaces it atomically and is
//! idempotent; typed JSON is readable and checkable in tests; `nft` is on every host
//! that has nftables (Debian `nftables`). The cost is one process per change, which is
//! nothing next to creating a container. In another namespace `nft` runs under
//! `nsenter --net=PATH` (util-linux): the crate's helper puts our arguments before
//! `-j -f -`, so `nsenter --net=PATH nft` is just a longer program name.

use std::borrow::Cow;
use std::path::Path;
use std::process::Command;

use nftables::batch::Batch;
use nftables::expr::{Expression, Meta, MetaKey, NamedExpression, PayloadField, Prefix};
use nftables::helper;
use nftables::schema::{NfListObject, NfObject, Nftables, Table};
use nftables::stmt::{Match, Operator, Statement};
use nftables::types::NfFamily;

use crate::error::{Error, Result};
use crate::netns;

/// The one table name we own, in every family and namespace.
pub const TABLE: &str = "swarm";

/// Apply `batch` as one transaction in the namespace at `ns` (`None`: the caller's).
pub fn apply(ns: Option<&Path>, batch: Batch<'_>) -> Result<()> {
    let ruleset = batch.to_nftables();
    let fail = |e: helper::NftablesError| {
        let message = match &e {
            helper::NftablesError::NftFailed { stderr, .. } => {
                format!("{e}: {}", stderr.trim())
            }
            _ => e.to_string(),
        };
        Error::Nft {
            netns: netns::label(ns),
            message,
        }
    };
    match ns {
        None => helper::apply_ruleset(&ruleset).map_err(fail),
        Some(path) => {
            let net = format!("--net={}", path.display());
            helper::apply_ruleset_with_args(&ruleset, Some("nsenter"), [net.as_str(), "nft"])
                .map_err(fail)
        }
    }
}

/// The start of a batch that empties our table of `family` (creating it first so the
/// delete cannot fail) and makes it anew: what follows replaces it atomically.
pub(crate) fn fresh_table(family: NfFamily) -> Batch<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table(family)));
    batch.delete(NfListObject::Table(table(family)));
    batch.add(NfListObject::Table(table(family)));
    batch
}

/// Delete our table of `family`; absent is fine.
pub fn delete_table(ns: Option<&Path>, family: NfFamily) -> Result<()> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table(family)));
    batch.delete(NfListObject::Table(table(family)));
    apply(ns, batch)
}

/// The tables in the namespace at `ns`, as (family, name).
pub fn tables(ns: Option<&Path>) -> Result<Vec<(String, String)>> {
    let out = command(ns).args(["-j", "list", "tables"]).output()?;
    let fail = |message: String| Error::Nft {
        netns: netns::label(ns),
        message,
    };
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    let parsed: Nftables = serde_json::from_slice(&out.stdout)
        .map_err(|e| fail(format!("nft -j list tables: {e}")))?;
    Ok(parsed
        .objects
        .iter()
        .filter_map(|o| match o {
            NfObject::ListObject(NfListObject::Table(t)) => Some((
                serde_json::to_value(t.family).ok()?.as_str()?.to_owned(),
                t.name.to_string(),
            )),
            _ => None,
        })
        .collect())
}

fn table(family: NfFamily) -> Table<'static> {
    Table {
        family,
        name: Cow::Borrowed(TABLE),
        handle: None,
    }
}

/// `left == right` (or `!=`).
pub(crate) fn matches<'a>(left: Expression<'a>, right: Expression<'a>, eq: bool) -> Statement<'a> {
    Statement::Match(Match {
        left,
        right,
        op: if eq { Operator::EQ } else { Operator::NEQ },
    })
}

pub(crate) fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

pub(crate) fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(
        nftables::expr::Payload::PayloadField(PayloadField {
            protocol: Cow::Borrowed(protocol),
            field: Cow::Borrowed(field),
        }),
    ))
}

pub(crate) fn string(s: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(s.into()))
}

pub(crate) fn prefix(net: ipnet::Ipv4Net) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(string(net.network().to_string())),
        len: u32::from(net.prefix_len()),
    }))
}

/// `nft` (or `nsenter --net=PATH nft`) for the namespace at `ns`.
fn command(ns: Option<&Path>) -> Command {
    match ns {
        None => Command::new("nft"),
        Some(path) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", path.display())).arg("nft");
            c
        }
    }
}

/// Apply an nft script (`nft -f -`) as one transaction in the namespace at `ns`.
///
/// The routing mesh's rulesets (`ingress.rs`) are written as script text: their
/// `dnat to numgen ... map { } : port`, `fib`, `ct mark set ether saddr map` and
/// `rt mtu` are one readable line each there and a page of nested enums in the JSON
/// schema. The transaction is the same: `nft -f` applies a file atomically.
pub fn apply_script(ns: Option<&Path>, script: &str) -> Result<()> {
    use std::io::Write as _;
    use std::process::Stdio;
    let fail = |message: String| Error::Nft {
        netns: netns::label(ns),
        message,
    };
    let mut child = command(ns)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(fail(format!(
            "nft -f: {} in:\n{script}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// `nft list table FAMILY NAME` in the namespace at `ns`, or `None` when there is no
/// such table (what tests compare to see that a second ensure changed nothing).
pub fn list_table(ns: Option<&Path>, family: &str, name: &str) -> Result<Option<String>> {
    let out = command(ns).args(["list", "table", family, name]).output()?;
    if out.status.success() {
        return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("No such file or directory") {
        return Ok(None);
    }
    Err(Error::Nft {
        netns: netns::label(ns),
        message: format!("nft list table {family} {name}: {}", err.trim()),
    })
}
