//! Placement constraints: `node.labels.zone==east`, `node.role!=manager`.
//!
//! ```text
//! ["node.role==worker", ...] --parse--> [Constraint { key, op, value }] --matches(node)--> bool
//! ```
//!
//! The grammar and the error texts are Docker's (swarmkit `manager/constraint`): the
//! key is `[A-Za-z_][A-Za-z0-9-_.]+`, the operator `==` or `!=`, the value a run of
//! letters, digits, spaces and `:-_.*()?+[]\^$|/`. Values compare case-insensitively;
//! label names are case-sensitive. An unknown key parses but matches no node, as in
//! Docker.

use std::fmt;
use std::net::IpAddr;

/// `==` or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    NotEq,
}

impl Operator {
    fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "==",
            Operator::NotEq => "!=",
        }
    }
}

/// What a constraint looks at on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    NodeId,
    NodeHostname,
    NodeIp,
    NodeRole,
    PlatformOs,
    PlatformArch,
    /// `node.labels.<name>`: the node's spec labels (set with `node update --label-add`).
    NodeLabel(String),
    /// `engine.labels.<name>`: the labels the node's daemon reports about itself.
    EngineLabel(String),
    /// Parses, matches nothing (Docker's behaviour for e.g. `foo==bar`).
    Unknown(String),
}

/// One parsed constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// The key as written (for display).
    pub raw_key: String,
    pub key: Key,
    pub op: Operator,
    pub value: String,
}

/// Why a constraint expression was refused; the texts are Docker's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintError {
    InvalidKey(String),
    InvalidValue(String),
    NoOperator,
}

impl fmt::Display for ConstraintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConstraintError::InvalidKey(k) => write!(f, "key '{k}' is invalid"),
            ConstraintError::InvalidValue(v) => write!(f, "value '{v}' is invalid"),
            ConstraintError::NoOperator => {
                write!(f, "constraint expected one operator from ==, !=")
            }
        }
    }
}

impl std::error::Error for ConstraintError {}

const NODE_LABEL_PREFIX: &str = "node.labels.";
const ENGINE_LABEL_PREFIX: &str = "engine.labels.";

/// Parses every expression; the first bad one is the error.
pub fn parse_all<S: AsRef<str>>(exprs: &[S]) -> Result<Vec<Constraint>, ConstraintError> {
    exprs.iter().map(|e| parse(e.as_ref())).collect()
}

/// Parses one `key op value` expression.
pub fn parse(expr: &str) -> Result<Constraint, ConstraintError> {
    for op in [Operator::Eq, Operator::NotEq] {
        let Some((key, value)) = expr.split_once(op.as_str()) else {
            continue;
        };
        let key = key.trim();
        if !valid_key(key) {
            return Err(ConstraintError::InvalidKey(key.to_string()));
        }
        let value = value.trim();
        if !valid_value(value) {
            return Err(ConstraintError::InvalidValue(value.to_string()));
        }
        return Ok(Constraint {
            raw_key: key.to_string(),
            key: classify(key),
            op,
            value: value.to_string(),
        });
    }
    Err(ConstraintError::NoOperator)
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let rest = chars.as_str();
    (first.is_ascii_alphabetic() || first == '_')
        && !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn valid_value(value: &str) -> bool {
    !value.is_empty()
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    ':' | '-'
                        | '_'
                        | ' '
                        | '\t'
                        | '\n'
                        | '\r'
                        | '\x0c'
                        | '.'
                        | '*'
                        | '('
                        | ')'
                        | '?'
                        | '+'
                        | '['
                        | ']'
                        | '\\'
                        | '^'
                        | '$'
                        | '|'
                        | '/'
                )
        })
}

fn strip_prefix_ci<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    if key.len() > prefix.len()
        && key.is_char_boundary(prefix.len())
        && key[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&key[prefix.len()..])
    } else {
        None
    }
}

fn classify(key: &str) -> Key {
    let is = |k: &str| key.eq_ignore_ascii_case(k);
    if is("node.id") {
        Key::NodeId
    } else if is("node.hostname") {
        Key::NodeHostname
    } else if is("node.ip") {
        Key::NodeIp
    } else if is("node.role") {
        Key::NodeRole
    } else if is("node.platform.os") {
        Key::PlatformOs
    } else if is("node.platform.arch") {
        Key::PlatformArch
    } else if let Some(label) = strip_prefix_ci(key, NODE_LABEL_PREFIX) {
        Key::NodeLabel(label.to_string())
    } else if let Some(label) = strip_prefix_ci(key, ENGINE_LABEL_PREFIX) {
        Key::EngineLabel(label.to_string())
    } else {
        Key::Unknown(key.to_string())
    }
}

/// The attributes of a node that constraints can look at. Missing values are `""`,
/// so `node.labels.x!=y` holds on a node without the label, as in Docker.
pub trait NodeAttributes {
    fn id(&self) -> &str;
    fn hostname(&self) -> &str;
    /// The node's address as the managers see it (`Status.Addr`).
    fn addr(&self) -> &str;
    /// `worker` or `manager`.
    fn role(&self) -> &str;
    fn os(&self) -> &str;
    fn arch(&self) -> &str;
    fn node_label(&self, name: &str) -> Option<&str>;
    fn engine_label(&self, name: &str) -> Option<&str>;
}

impl Constraint {
    fn matches_value(&self, actual: &str) -> bool {
        let equal = self.value.eq_ignore_ascii_case(actual);
        match self.op {
            Operator::Eq => equal,
            Operator::NotEq => !equal,
        }
    }

    /// Whether a node satisfies this constraint.
    pub fn matches(&self, node: &impl NodeAttributes) -> bool {
        match &self.key {
            Key::NodeId => self.matches_value(node.id()),
            Key::NodeHostname => self.matches_value(node.hostname()),
            Key::NodeRole => self.matches_value(node.role()),
            Key::PlatformOs => self.matches_value(node.os()),
            Key::PlatformArch => self.matches_value(node.arch()),
            Key::NodeLabel(l) => self.matches_value(node.node_label(l).unwrap_or("")),
            Key::EngineLabel(l) => self.matches_value(node.engine_label(l).unwrap_or("")),
            Key::NodeIp => self.matches_ip(node.addr()),
            Key::Unknown(_) => false,
        }
    }

    /// `node.ip==10.0.0.5` or `node.ip!=10.0.0.0/24`; a malformed address or network
    /// matches nothing.
    fn matches_ip(&self, addr: &str) -> bool {
        let node_ip: Option<IpAddr> = addr.parse().ok();
        let inside = if let Ok(ip) = self.value.parse::<IpAddr>() {
            node_ip == Some(ip)
        } else if let Some((net, bits)) = parse_cidr(&self.value) {
            node_ip.is_some_and(|n| cidr_contains(net, bits, n))
        } else {
            return false;
        };
        inside == (self.op == Operator::Eq)
    }
}

/// Whether a node satisfies every constraint.
pub fn node_matches(constraints: &[Constraint], node: &impl NodeAttributes) -> bool {
    constraints.iter().all(|c| c.matches(node))
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    fn prefix(a: u128, b: u128, bits: u8, width: u8) -> bool {
        let shift = width - bits;
        shift >= width || (a >> shift) == (b >> shift)
    }
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            prefix(u32::from(n).into(), u32::from(i).into(), bits, 32)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => prefix(n.into(), i.into(), bits, 128),
        _ => false,
    }
}
