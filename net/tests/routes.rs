//! Route reconcile against a real routing table (root, a throwaway netns).

mod common;

use bramble_net::routes::{self, NODE_PROTO};
use bramble_net::{NextHop, Route};
use common::{TestNs, is_root};

fn via(dst: &str, prefix: u8, gw: &str) -> Route {
    Route {
        dst: dst.parse().unwrap(),
        prefix,
        next: NextHop::Via(gw.parse().unwrap()),
    }
}

#[test]
fn reconcile_owns_only_its_protocol() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let ns = TestNs::new("routes").with_lan("10.77.0.11");
    let path = ns.path();
    // Someone else's route: must survive everything below.
    ns.ip(&[
        "route",
        "add",
        "10.99.0.0/16",
        "via",
        "10.77.0.1",
        "proto",
        "static",
    ]);
    let svc = Route {
        dst: "10.43.0.0".parse().unwrap(),
        prefix: 16,
        next: NextHop::Dev("lan0".into()),
    };
    let wanted = vec![
        via("10.42.2.0", 24, "10.77.0.12"),
        via("10.42.3.0", 24, "10.77.0.13"),
        svc.clone(),
    ];
    let c = routes::reconcile(Some(&path), NODE_PROTO, &wanted).unwrap();
    assert_eq!(c.added.len(), 3);
    let shown = ns.ip(&["route", "show", "proto", "77"]);
    assert!(
        shown.contains("10.42.2.0/24 via 10.77.0.12 dev lan0"),
        "{shown}"
    );
    assert!(
        shown.contains("10.42.3.0/24 via 10.77.0.13 dev lan0"),
        "{shown}"
    );
    assert!(
        shown.contains("10.43.0.0/16 dev lan0 scope link"),
        "{shown}"
    );
    // Idempotent.
    assert!(
        routes::reconcile(Some(&path), NODE_PROTO, &wanted)
            .unwrap()
            .is_empty()
    );
    // A node moved, another left.
    let wanted = vec![via("10.42.2.0", 24, "10.77.0.22"), svc];
    let c = routes::reconcile(Some(&path), NODE_PROTO, &wanted).unwrap();
    assert_eq!(c.replaced.len(), 1);
    assert_eq!(c.removed, vec![("10.42.3.0".parse().unwrap(), 24)]);
    let shown = ns.ip(&["route", "show", "proto", "77"]);
    assert!(
        shown.contains("10.42.2.0/24 via 10.77.0.22 dev lan0"),
        "{shown}"
    );
    assert!(!shown.contains("10.42.3.0"), "{shown}");
    // Nothing wanted: ours gone, the foreign route kept.
    routes::reconcile(Some(&path), NODE_PROTO, &[]).unwrap();
    assert_eq!(ns.ip(&["route", "show", "proto", "77"]).trim(), "");
    let all = ns.ip(&["route", "show"]);
    assert!(all.contains("10.99.0.0/16 via 10.77.0.1"), "{all}");
}

#[test]
fn a_dev_route_to_a_missing_link_is_a_clear_error() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let ns = TestNs::new("routes-err");
    let r = Route {
        dst: "10.43.0.0".parse().unwrap(),
        prefix: 16,
        next: NextHop::Dev("nope0".into()),
    };
    let e = routes::reconcile(Some(&ns.path()), NODE_PROTO, &[r]).unwrap_err();
    assert!(e.to_string().contains("no link \"nope0\""), "{e}");
}

#[test]
fn the_link_holding_an_address_is_found() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let ns = TestNs::new("links").with_lan("10.77.0.11");
    let p = ns.path();
    let found = bramble_net::links::link_with_address(Some(&p), "10.77.0.11".parse().unwrap());
    assert_eq!(found.unwrap().as_deref(), Some("lan0"));
    let none = bramble_net::links::link_with_address(Some(&p), "10.77.0.99".parse().unwrap());
    assert_eq!(none.unwrap(), None);
}
