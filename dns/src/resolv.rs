//! A pod's `/etc/resolv.conf`: the node's cluster DNS, the Kubernetes search
//! path of its namespace and `ndots:5`, so `web`, `web.shop` and
//! `web.shop.svc` all resolve as they do in Kubernetes.

use std::net::IpAddr;

/// The resolv.conf of a pod in `namespace`.
pub fn pod_resolv_conf(nameserver: IpAddr, namespace: &str, domain: &str) -> String {
    format!(
        "# written by bramble-agent\nnameserver {nameserver}\nsearch {namespace}.svc.{domain} svc.{domain} {domain}\noptions ndots:5\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_path_of_the_namespace() {
        let r = pod_resolv_conf("10.42.1.1".parse().unwrap(), "shop", "cluster.local");
        assert!(r.contains("nameserver 10.42.1.1\n"));
        assert!(r.contains("search shop.svc.cluster.local svc.cluster.local cluster.local\n"));
        assert!(r.contains("options ndots:5"));
    }
}
