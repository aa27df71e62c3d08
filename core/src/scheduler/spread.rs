//! Placement preferences: `--placement-pref spread=node.labels.zone`, nested in the
//! order given, as swarmkit's decision tree.
//!
//! ```text
//!                root (tasks of the service: 6)
//!        zone=""        zone=east          zone=west        one branch per value;
//!        (2)            (4)                (0)              a node without the label
//!        [n5]           [n1 n2]            [n3 n4]          is in the "" branch
//! ```
//!
//! At each level the tasks to place are shared so the branches' counts of the
//! service's tasks come out as even as they can ("water filling": the emptiest
//! branches are filled first); a branch that runs out of fitting nodes drops out and
//! the rest is shared again among the others. At a leaf, nodes come from a heap by
//! rank (fewest tasks of the service, fewest tasks, lowest ID), and a node goes back
//! in the heap after a placement only if it still fits. Placing K tasks on N nodes
//! costs O(N + K log N).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::model::{Node, PlacementPreference};

/// `(tasks of the service, tasks, node index)`: lower is better.
pub type Rank = (u32, u32, u32);

/// What the tree asks of the nodes while it is built and filled.
pub trait Placer {
    fn node_count(&self) -> u32;
    fn node(&self, i: u32) -> &Node;
    /// Active tasks of the service on node `i`.
    fn tasks_of_service(&self, i: u32) -> u32;
    fn fits(&self, i: u32) -> bool;
    fn rank(&self, i: u32) -> Rank;
    /// Places one task on node `i`; whether the node still fits another.
    fn place(&mut self, i: u32) -> bool;
}

/// What a spread level groups nodes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Descriptor {
    NodeLabel(String),
    EngineLabel(String),
}

const NODE_LABEL_PREFIX: &str = "node.labels.";
const ENGINE_LABEL_PREFIX: &str = "engine.labels.";

fn strip_prefix_ci<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    (s.len() > prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix))
    .then(|| &s[prefix.len()..])
}

impl Descriptor {
    /// `node.labels.<name>` or `engine.labels.<name>`; anything else spreads over
    /// nothing and is skipped, as swarmkit does.
    pub fn parse(descriptor: &str) -> Option<Descriptor> {
        if let Some(l) = strip_prefix_ci(descriptor, NODE_LABEL_PREFIX) {
            Some(Descriptor::NodeLabel(l.to_string()))
        } else {
            strip_prefix_ci(descriptor, ENGINE_LABEL_PREFIX)
                .map(|l| Descriptor::EngineLabel(l.to_string()))
        }
    }

    /// The node's value, `""` when it has no such label.
    fn value<'n>(&self, node: &'n Node) -> &'n str {
        let labels = match self {
            Descriptor::NodeLabel(_) => &node.spec.labels,
            Descriptor::EngineLabel(_) => &node.description.engine.labels,
        };
        let (Descriptor::NodeLabel(name) | Descriptor::EngineLabel(name)) = self;
        labels.get(name).map_or("", String::as_str)
    }
}

/// The spread levels of a placement, in order.
pub fn descriptors(preferences: &[PlacementPreference]) -> Vec<Descriptor> {
    preferences
        .iter()
        .filter_map(|p| p.spread.as_ref())
        .filter_map(|s| Descriptor::parse(&s.spread_descriptor))
        .collect()
}

/// One branch of the decision tree; a leaf when `children` is empty.
#[derive(Debug, Default)]
pub struct Tree {
    /// Active tasks of the service on every node under this branch, fitting or not.
    tasks: u64,
    children: BTreeMap<String, Tree>,
    nodes: BinaryHeap<Reverse<Rank>>,
}

impl Tree {
    /// Every node sorted into its branch; only nodes that fit go in the leaves' heaps.
    pub fn build(levels: &[Descriptor], placer: &impl Placer) -> Tree {
        let mut root = Tree::default();
        for i in 0..placer.node_count() {
            let node = placer.node(i);
            let of_service = u64::from(placer.tasks_of_service(i));
            let mut branch = &mut root;
            for level in levels {
                branch.tasks += of_service;
                let value = level.value(node);
                if !branch.children.contains_key(value) {
                    branch.children.insert(value.to_string(), Tree::default());
                }
                branch = branch.children.get_mut(value).expect("inserted above");
            }
            branch.tasks += of_service;
            if placer.fits(i) {
                branch.nodes.push(Reverse(placer.rank(i)));
            }
        }
        root
    }

    /// Places up to `want` tasks under this branch; how many it placed (fewer only
    /// when no node under it fits any more).
    pub fn fill(&mut self, want: u64, placer: &mut impl Placer) -> u64 {
        if want == 0 {
            return 0;
        }
        let placed = if self.children.is_empty() {
            self.fill_leaf(want, placer)
        } else {
            self.fill_branches(want, placer)
        };
        self.tasks += placed;
        placed
    }

    fn fill_leaf(&mut self, want: u64, placer: &mut impl Placer) -> u64 {
        let mut placed = 0;
        while placed < want {
            let Some(Reverse((_, _, i))) = self.nodes.pop() else {
                break;
            };
            if placer.place(i) {
                self.nodes.push(Reverse(placer.rank(i)));
            }
            placed += 1;
        }
        placed
    }

    fn fill_branches(&mut self, want: u64, placer: &mut impl Placer) -> u64 {
        let mut branches: Vec<&mut Tree> = self.children.values_mut().collect();
        let mut open: Vec<usize> = (0..branches.len()).collect();
        let mut left = want;
        while left > 0 && !open.is_empty() {
            let counts: Vec<u64> = open.iter().map(|&b| branches[b].tasks).collect();
            let shares = water_fill(&counts, left);
            let mut still_open = Vec::with_capacity(open.len());
            for (&b, share) in open.iter().zip(shares) {
                let placed = branches[b].fill(share, placer);
                left -= placed;
                if placed == share {
                    still_open.push(b);
                }
            }
            open = still_open;
        }
        want - left
    }
}

/// How many of `tasks` more each branch should get so their counts end as even as
/// can be: the emptiest are raised first to a common level, and what does not divide
/// evenly goes one each to the first branches (in order) at that level.
pub fn water_fill(counts: &[u64], tasks: u64) -> Vec<u64> {
    let mut shares = vec![0; counts.len()];
    if counts.is_empty() || tasks == 0 {
        return shares;
    }
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by_key(|&b| (counts[b], b));
    // Raise the k emptiest to the count of the k-th while that costs no more than we have.
    let mut k = 1;
    let mut cost = 0;
    while k < order.len() {
        let step = (counts[order[k]] - counts[order[k - 1]]) * k as u64;
        if cost + step > tasks {
            break;
        }
        cost += step;
        k += 1;
    }
    let rest = tasks - cost;
    let level = counts[order[k - 1]] + rest / k as u64;
    let mut raised: Vec<usize> = order[..k].to_vec();
    raised.sort_unstable();
    let extra = (rest % k as u64) as usize;
    for (n, &b) in raised.iter().enumerate() {
        shares[b] = level - counts[b] + u64::from(n < extra);
    }
    shares
}
