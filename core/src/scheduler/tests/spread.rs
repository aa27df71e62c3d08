//! Spread placement preferences: even counts per label value, nested levels, nodes
//! without the label in their own branch, and branches that run out of room.

use std::collections::BTreeMap;

use crate::model::{Placement, PlacementPreference, SpreadOver};
use crate::scheduler::fixture::View;
use crate::scheduler::spread::water_fill;
use crate::state::TaskState;

fn spread(view: &mut View, service: &str, descriptors: &[&str]) {
    let placement = view
        .add_service(service)
        .spec
        .task_template
        .placement
        .get_or_insert_with(Placement::default);
    placement.preferences = descriptors
        .iter()
        .map(|d| PlacementPreference {
            spread: Some(SpreadOver {
                spread_descriptor: d.to_string(),
                ..SpreadOver::default()
            }),
            ..PlacementPreference::default()
        })
        .collect();
}

fn label(view: &mut View, node: &str, key: &str, value: &str) {
    view.node_mut(node)
        .spec
        .labels
        .insert(key.into(), value.into());
}

fn placed(view: &View) -> Vec<(String, usize)> {
    view.decisions_by_node().into_iter().collect()
}

fn counts(pairs: &[(&str, usize)]) -> Vec<(String, usize)> {
    let map: BTreeMap<String, usize> = pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    map.into_iter().collect()
}

#[test]
fn water_fill_raises_the_emptiest_first() {
    assert_eq!(water_fill(&[0, 0, 0], 7), [3, 2, 2]);
    assert_eq!(water_fill(&[5, 0, 2], 4), [0, 3, 1]);
    assert_eq!(water_fill(&[1, 1], 3), [2, 1]);
    assert_eq!(water_fill(&[4, 0], 2), [0, 2]);
    assert_eq!(water_fill(&[2, 2, 9], 0), [0, 0, 0]);
    assert_eq!(water_fill(&[], 5), Vec::<u64>::new());
}

#[test]
fn spread_over_a_label_with_unlabelled_nodes_in_their_own_branch() {
    let mut view = View::with_nodes(&["a", "b", "c", "d"]);
    label(&mut view, "a", "zone", "east");
    label(&mut view, "b", "zone", "east");
    label(&mut view, "c", "zone", "west");
    spread(&mut view, "web", &["node.labels.zone"]);
    view.add_pending("web", 6);
    // Three branches ("", east, west) of 2 tasks each.
    assert_eq!(
        placed(&view),
        counts(&[("a", 1), ("b", 1), ("c", 2), ("d", 2)])
    );

    // Tasks already in a branch count: east has 3, so the 3 new go to "" and west,
    // the odd one to the first branch in label order ("").
    let mut view = View::with_nodes(&["a", "b", "c", "d"]);
    label(&mut view, "a", "zone", "east");
    label(&mut view, "b", "zone", "east");
    label(&mut view, "c", "zone", "west");
    spread(&mut view, "web", &["node.labels.zone"]);
    for _ in 0..3 {
        view.add_on_node("web", "a", TaskState::Running);
    }
    view.add_pending("web", 3);
    assert_eq!(placed(&view), counts(&[("c", 1), ("d", 2)]));
}

#[test]
fn nested_spread_shares_within_each_branch() {
    let mut view = View::with_nodes(&["n1", "n2", "n3", "n4"]);
    for (n, dc, rack) in [
        ("n1", "dc1", "r1"),
        ("n2", "dc1", "r1"),
        ("n3", "dc1", "r2"),
        ("n4", "dc2", "r1"),
    ] {
        label(&mut view, n, "dc", dc);
        label(&mut view, n, "rack", rack);
    }
    spread(&mut view, "web", &["node.labels.dc", "node.labels.rack"]);
    view.add_pending("web", 8);
    // dc1 4 (r1: 2 over two nodes, r2: 2), dc2 4.
    assert_eq!(
        placed(&view),
        counts(&[("n1", 1), ("n2", 1), ("n3", 2), ("n4", 4)])
    );

    // A branch whose nodes all fail the filters drops out; the rest share its tasks.
    view.services
        .get_mut("web")
        .unwrap()
        .spec
        .task_template
        .placement
        .as_mut()
        .unwrap()
        .constraints = vec!["node.id!=n4".into()];
    let spec = view.services["web"].spec.task_template.clone();
    view.tasks
        .iter_mut()
        .for_each(|t| t.spec = spec.clone().into());
    assert_eq!(placed(&view), counts(&[("n1", 2), ("n2", 2), ("n3", 4)]));
}

#[test]
fn a_full_branch_gives_its_share_to_the_others() {
    let mut view = View::with_nodes(&["a", "b", "c"]);
    label(&mut view, "a", "zone", "east");
    label(&mut view, "b", "zone", "west");
    label(&mut view, "c", "zone", "west");
    spread(&mut view, "web", &["node.labels.zone"]);
    view.services
        .get_mut("web")
        .unwrap()
        .spec
        .task_template
        .placement
        .as_mut()
        .unwrap()
        .max_replicas = 2;
    view.add_pending("web", 7);
    // east can take only 2 (one node, max 2 per node); west takes 4; one is left.
    assert_eq!(placed(&view), counts(&[("a", 2), ("b", 2), ("c", 2)]));
    let unplaced = crate::scheduler::schedule(&view, crate::orchestrator::testkit::t0())
        .into_iter()
        .filter(|d| matches!(d, crate::scheduler::Decision::NoSuitableNode { .. }))
        .count();
    assert_eq!(unplaced, 1);
}

#[test]
fn engine_labels_spread_and_unknown_descriptors_are_ignored() {
    let mut view = View::with_nodes(&["a", "b", "c"]);
    view.node_mut("a")
        .description
        .engine
        .labels
        .insert("disk".into(), "ssd".into());
    spread(&mut view, "web", &["engine.labels.disk"]);
    view.add_pending("web", 4);
    // ssd: a alone gets 2; the other branch ("" for b and c) gets 2.
    assert_eq!(placed(&view), counts(&[("a", 2), ("b", 1), ("c", 1)]));

    let mut view = View::with_nodes(&["a", "b", "c"]);
    label(&mut view, "a", "zone", "east");
    spread(&mut view, "web", &["node.hostname", "NODE.LABELS.zone"]);
    view.add_pending("web", 4);
    // node.hostname spreads over nothing; the label prefix is case-insensitive.
    assert_eq!(placed(&view), counts(&[("a", 2), ("b", 1), ("c", 1)]));
}
