//! Route reconcile against a real routing table (root, a throwaway netns).

mod common;

use bramble_net::routes::{self, NODE_PROTO};
use bramble_net::{NextHop, Route};
use bramble_tests::require_root;
use common::TestNs;

fn via(dst: &str, prefix: u8, gw: &str) -> Route {
    Route {
        dst: dst.parse().unwrap(),
        prefix,
        next: NextHop::Via(gw.parse().unwrap()),
    }
}

#[test]
fn reconcile_owns_only_its_protocol() {
    require_root("network namespaces");
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
    require_root("network namespaces");
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
    require_root("network namespaces");
    let ns = TestNs::new("links").with_lan("10.77.0.11");
    let p = ns.path();
    let found = bramble_net::links::link_with_address(Some(&p), "10.77.0.11".parse().unwrap());
    assert_eq!(found.unwrap().as_deref(), Some("lan0"));
    let none = bramble_net::links::link_with_address(Some(&p), "10.77.0.99".parse().unwrap());
    assert_eq!(none.unwrap(), None);
}

/// The errno of a netlink failure (the kernel's answer).
fn errno(e: &bramble_net::NetError) -> Option<i32> {
    std::error::Error::source(e)?
        .downcast_ref::<std::io::Error>()?
        .raw_os_error()
}

#[test]
fn kernel_errors_keep_their_errno_and_name_the_operation() {
    require_root("network namespaces");
    let ns = TestNs::new("routes-errno").with_lan("10.77.0.11");
    let path = ns.path();
    // A foreign route to the same destination is never added over:
    // RTM_NEWROUTE with NLM_F_EXCL, the kernel answers EEXIST.
    ns.ip(&["route", "add", "10.99.0.0/16", "via", "10.77.0.1"]);
    let e = routes::reconcile(
        Some(&path),
        NODE_PROTO,
        &[via("10.99.0.0", 16, "10.77.0.5")],
    )
    .unwrap_err();
    assert_eq!(errno(&e), Some(17), "{e}"); // EEXIST
    assert!(
        e.to_string()
            .starts_with("netlink: add route 10.99.0.0/16 via 10.77.0.5: "),
        "{e}"
    );
    // A gateway on no connected network: ENETUNREACH.
    let e = routes::add(Some(&path), NODE_PROTO, &via("10.42.9.0", 24, "192.0.2.1")).unwrap_err();
    assert_eq!(errno(&e), Some(101), "{e}"); // ENETUNREACH
    assert!(
        e.to_string()
            .contains("add route 10.42.9.0/24 via 192.0.2.1"),
        "{e}"
    );
    assert!(
        routes::installed(Some(&path), NODE_PROTO)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_dump_spanning_many_datagrams_returns_every_route() {
    require_root("network namespaces");
    let ns = TestNs::new("routes-many").with_lan("10.77.0.11");
    let path = ns.path();
    // ~70 bytes per route message: 3000 routes are several 32 KiB
    // datagrams of one dump.
    let wanted: Vec<Route> = (0..3000u32)
        .map(|i| Route {
            dst: std::net::Ipv4Addr::from(0x0a80_0000 + (i << 8)),
            prefix: 24,
            next: NextHop::Via(format!("10.77.0.{}", 12 + i % 200).parse().unwrap()),
        })
        .collect();
    let c = routes::reconcile(Some(&path), NODE_PROTO, &wanted).unwrap();
    assert_eq!(c.added.len(), 3000);
    let mut got: Vec<_> = routes::installed(Some(&path), NODE_PROTO)
        .unwrap()
        .into_iter()
        .map(|i| (i.dst, i.prefix, i.gateway))
        .collect();
    got.sort();
    let mut want: Vec<_> = wanted
        .iter()
        .map(|r| match r.next {
            NextHop::Via(gw) => (r.dst, r.prefix, Some(gw)),
            NextHop::Dev(_) => unreachable!(),
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
    let shown = ns.ip(&["route", "show", "proto", "77"]);
    assert_eq!(shown.lines().count(), 3000);
    // Converged, then all gone again.
    assert!(
        routes::reconcile(Some(&path), NODE_PROTO, &wanted)
            .unwrap()
            .is_empty()
    );
    let c = routes::reconcile(Some(&path), NODE_PROTO, &[]).unwrap();
    assert_eq!(c.removed.len(), 3000);
    assert_eq!(ns.ip(&["route", "show", "proto", "77"]).trim(), "");
}
