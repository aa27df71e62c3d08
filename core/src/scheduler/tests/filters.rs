//! Each filter on a plain view: the exact node of every decision and the exact words of
//! every explanation.

use crate::model::{
    EndpointSpec, NodeAvailability, NodeState, Placement, Platform, PortProtocol, PublishMode,
};
use crate::orchestrator::testkit::t0;
use crate::scheduler::fixture::{host_port, reserve, View};
use crate::scheduler::{decisions_to_actions, schedule, Decision};
use crate::state::TaskState;
use crate::store::StoreAction;

const CPU: i64 = 1_000_000_000;

/// Each decision as the node it chose or the explanation, in decision order.
fn outcome(view: &View) -> Vec<String> {
    schedule(view, t0())
        .into_iter()
        .map(|d| match d {
            Decision::Assign { node_id, .. } => node_id,
            Decision::NoSuitableNode { explanation, .. } => explanation,
        })
        .collect()
}

fn placement<'v>(view: &'v mut View, service: &str) -> &'v mut Placement {
    view.add_service(service)
        .spec
        .task_template
        .placement
        .get_or_insert_with(Placement::default)
}

#[test]
fn only_ready_active_nodes_take_new_tasks() {
    let mut view = View::with_nodes(&["a", "b", "c", "d", "e"]);
    view.node_mut("b").spec.availability = Some(NodeAvailability::Pause);
    view.node_mut("c").spec.availability = Some(NodeAvailability::Drain);
    view.node_mut("d").status.state = Some(NodeState::Down);
    view.node_mut("e").status.state = None;
    view.add_service("web");
    view.add_pending("web", 2);
    assert_eq!(outcome(&view), ["a", "a"]);

    view.node_mut("a").spec.availability = Some(NodeAvailability::Pause);
    assert_eq!(
        outcome(&view),
        ["no suitable node (5 nodes not available for new tasks)"; 2]
    );
    view.nodes.truncate(1);
    assert_eq!(
        outcome(&view),
        ["no suitable node (1 node not available for new tasks)"; 2]
    );
    view.nodes.clear();
    assert_eq!(outcome(&view), ["no suitable node"; 2]);
}

#[test]
fn resources_left_are_capacity_minus_what_tasks_on_the_node_reserve() {
    let mut view = View::with_nodes(&["a", "b"]); // 4 CPUs, 8 GiB each
    view.add_service("big").spec.task_template.resources = reserve(3 * CPU, 0);
    view.add_on_node("big", "a", TaskState::Running);
    // A task that has ended holds nothing; one still RUNNING holds its reservation even
    // when it is desired to shut down (but then does not count as a task of the node).
    view.add_on_node("big", "b", TaskState::Failed);
    view.add_on_node("big", "b", TaskState::Complete);
    view.add_service("small");
    view.add_on_node("small", "b", TaskState::Running);
    view.add_on_node("small", "b", TaskState::Assigned);

    view.add_service("web").spec.task_template.resources = reserve(2 * CPU, 0);
    view.add_pending("web", 3);
    // a ranks first (1 task against 2) but has 1 CPU left; b takes two, then is full.
    assert_eq!(
        outcome(&view),
        [
            "b",
            "b",
            "no suitable node (insufficient resources on 2 nodes)"
        ]
    );

    let mut view = View::with_nodes(&["a"]);
    view.add_service("big").spec.task_template.resources = reserve(3 * CPU, 0);
    view.add_on_node("big", "a", TaskState::Running);
    view.tasks[0].desired_state = TaskState::Shutdown;
    view.add_service("web").spec.task_template.resources = reserve(CPU, 3 << 30);
    view.add_pending("web", 3);
    assert_eq!(
        outcome(&view),
        [
            "a",
            "no suitable node (insufficient resources on 1 node)",
            "no suitable node (insufficient resources on 1 node)"
        ]
    );
}

#[test]
fn memory_is_reserved_like_cpu() {
    let mut view = View::with_nodes(&["a"]); // 8 GiB
    view.add_service("web").spec.task_template.resources = reserve(0, 3 << 30);
    view.add_pending("web", 3);
    assert_eq!(
        outcome(&view),
        [
            "a",
            "a",
            "no suitable node (insufficient resources on 1 node)"
        ]
    );
}

#[test]
fn a_host_mode_port_goes_once_per_node_and_protocol() {
    let mut view = View::with_nodes(&["a", "b", "c", "d", "e"]);
    view.node_mut("e").status.state = Some(NodeState::Down);
    // a: a running task reported 8080/tcp bound on the host.
    view.add_service("other");
    view.add_on_node("other", "a", TaskState::Running);
    view.tasks[0].status.port_status.ports = vec![host_port(8080, PortProtocol::Tcp)];
    // b: 8080/udp; c: 8080 through the routing mesh. Neither conflicts.
    view.add_service("dns").spec.endpoint_spec = Some(EndpointSpec {
        ports: vec![host_port(8080, PortProtocol::Udp)],
        ..EndpointSpec::default()
    });
    view.add_on_node("dns", "b", TaskState::Assigned);
    let mut mesh = host_port(8080, PortProtocol::Tcp);
    mesh.publish_mode = Some(PublishMode::Ingress);
    view.add_service("mesh").endpoint.ports = vec![mesh];
    view.add_on_node("mesh", "c", TaskState::Running);
    // d: a task of a service publishing 8080/tcp in host mode, not yet running.
    view.add_service("web2").endpoint.ports = vec![host_port(8080, PortProtocol::Tcp)];
    view.add_on_node("web2", "d", TaskState::Assigned);

    // The allocated endpoint is what counts; the spec is the fallback.
    view.add_service("web").endpoint.ports = vec![host_port(8080, PortProtocol::Tcp)];
    view.add_pending("web", 4);
    let explanation = "no suitable node (host-mode port already in use on 4 nodes; \
                       1 node not available for new tasks)";
    assert_eq!(outcome(&view), ["b", "c", explanation, explanation]);

    // A host port of 0 is chosen by the node: no conflict, no filter.
    view.services.get_mut("web").unwrap().endpoint.ports = vec![host_port(0, PortProtocol::Tcp)];
    assert_eq!(outcome(&view), ["a", "b", "c", "d"]);
}

#[test]
fn max_replicas_counts_tasks_already_on_the_node() {
    let mut view = View::with_nodes(&["a", "b"]);
    placement(&mut view, "web").max_replicas = 2;
    view.add_on_node("web", "a", TaskState::Running);
    view.add_on_node("web", "a", TaskState::Running);
    view.add_on_node("web", "b", TaskState::Starting);
    view.add_on_node("web", "b", TaskState::Shutdown); // ended: not counted
    view.add_pending("web", 3);
    let explanation = "no suitable node (max replicas per node limit exceed)";
    assert_eq!(outcome(&view), ["b", explanation, explanation]);
}

#[test]
fn platforms_match_with_dockers_architecture_aliases() {
    let mut view = View::with_nodes(&["a", "b", "c"]);
    view.node_mut("a").description.platform.architecture = "aarch64".into();
    view.node_mut("c").description.platform.architecture = "arm64".into();
    view.node_mut("c").description.platform.os = "windows".into();
    let platform = |arch: &str, os: &str| Platform {
        architecture: arch.into(),
        os: os.into(),
        ..Platform::default()
    };
    let cases: &[(Vec<Platform>, &str)] = &[
        (vec![platform("arm64", "linux")], "a"),
        (vec![platform("aarch64", "")], "a"),
        (vec![platform("amd64", "")], "b"),
        (vec![platform("", "windows")], "c"),
        (
            vec![platform("arm64", "windows"), platform("x86_64", "")],
            "b",
        ),
        (
            vec![platform("ppc64le", "linux")],
            "no suitable node (unsupported platform on 3 nodes)",
        ),
    ];
    for (platforms, want) in cases {
        let mut view = view.clone();
        placement(&mut view, "web").platforms = platforms.clone();
        view.add_pending("web", 1);
        assert_eq!(outcome(&view), [*want], "{platforms:?}");
    }
}

#[test]
fn explanation_lists_most_failures_first_then_filter_order() {
    let mut view = View::with_nodes(&["a", "b", "c", "d"]);
    view.node_mut("a").status.state = Some(NodeState::Down);
    view.node_mut("b")
        .spec
        .labels
        .insert("zone".into(), "x".into());
    view.node_mut("d").description.platform.os = "windows".into();
    *placement(&mut view, "web") = Placement {
        constraints: vec!["node.labels.zone!=x".into()],
        platforms: vec![Platform {
            os: "windows".into(),
            ..Platform::default()
        }],
        max_replicas: 1,
        ..Placement::default()
    };
    view.add_pending("web", 2);
    // d takes one and is then full; a is down, b fails the constraint, c the platform:
    // one node each, so they come in filter order.
    assert_eq!(
        outcome(&view),
        [
            "d",
            "no suitable node (1 node not available for new tasks; scheduling constraints \
             not satisfied on 1 node; unsupported platform on 1 node; max replicas per node \
             limit exceed)"
        ]
    );
    // Two nodes refused by the platform now outnumber the others.
    view.node_mut("d").description.platform.os = "linux".into();
    assert_eq!(
        outcome(&view),
        ["no suitable node (unsupported platform on 2 nodes; 1 node not available for \
             new tasks; scheduling constraints not satisfied on 1 node)"; 2]
    );
}

#[test]
fn ties_go_to_the_lowest_node_id_whatever_the_view_order() {
    let mut view = View::with_nodes(&["c", "a", "b"]);
    view.add_service("web");
    view.add_pending("web", 4);
    assert_eq!(outcome(&view), ["a", "b", "c", "a"]);
    let mut reversed = view.clone();
    reversed.nodes.reverse();
    reversed.tasks.reverse();
    assert_eq!(schedule(&view, t0()), schedule(&reversed, t0()));
}

#[test]
fn fewest_tasks_of_the_service_then_fewest_tasks() {
    let mut view = View::with_nodes(&["a", "b", "c"]);
    view.add_service("other");
    view.add_on_node("other", "a", TaskState::Running);
    view.add_on_node("other", "a", TaskState::Running);
    view.add_on_node("other", "b", TaskState::Running);
    view.add_service("web");
    view.add_on_node("web", "c", TaskState::Running);
    view.add_pending("web", 5);
    // c has the service already; b has fewer tasks than a.
    assert_eq!(outcome(&view), ["b", "a", "c", "b", "a"]);
}

#[test]
fn groups_go_oldest_first_and_tasks_that_differ_are_placed_apart() {
    let mut view = View::with_nodes(&["a", "b"]);
    view.add_service("web");
    view.add_service("db");
    view.add_pending("db", 1);
    view.add_pending("web", 2);
    view.add_pending("db", 1);
    // The last db task asks for more memory than a node has (an older spec).
    std::sync::Arc::make_mut(&mut view.tasks[3].spec).resources = reserve(0, 64 << 30);
    let decisions = schedule(&view, t0());
    let got: Vec<(&str, &str)> = decisions
        .iter()
        .map(|d| match d {
            Decision::Assign { task_id, node_id } => (task_id.as_str(), node_id.as_str()),
            Decision::NoSuitableNode {
                task_id,
                explanation,
            } => (task_id.as_str(), explanation.as_str()),
        })
        .collect();
    assert_eq!(
        got,
        [
            ("db.0000000", "a"),
            ("web.0000001", "b"),
            ("web.0000002", "a"),
            (
                "db.0000003",
                "no suitable node (insufficient resources on 2 nodes)"
            ),
        ]
    );
}

#[test]
fn decisions_to_actions_assigns_and_writes_a_changed_explanation_once() {
    let mut view = View::with_nodes(&["a"]);
    placement(&mut view, "web").max_replicas = 1;
    view.add_pending("web", 2);
    let decisions = schedule(&view, t0());
    let actions = decisions_to_actions(&view, &decisions, t0());
    let [StoreAction::AssignTask {
        id,
        node_id,
        status,
    }, StoreAction::SetTaskStatus {
        id: id2,
        status: s2,
    }] = &actions[..]
    else {
        panic!("{actions:?}")
    };
    assert_eq!((id.as_str(), node_id.as_str()), ("web.0000000", "a"));
    assert_eq!(
        (status.state, status.message.as_str()),
        (TaskState::Assigned, "scheduler assigned task to node")
    );
    assert_eq!(id2, "web.0000001");
    assert_eq!(
        (s2.state, s2.err.as_str()),
        (
            TaskState::Pending,
            "no suitable node (max replicas per node limit exceed)"
        )
    );
    view.tasks[1].status.err = s2.err.clone();
    assert_eq!(decisions_to_actions(&view, &decisions[1..], t0()), []);
}
