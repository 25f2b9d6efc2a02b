//! Bramble's pod network on a node, driven from Rust: routes and pod veths
//! over netlink ([`routes`], [`veth`]), whole nftables tables applied
//! atomically ([`nft`]) and the table an agent programs for its pods and
//! the cluster's services ([`rules`]), NetworkPolicies included
//! ([`policy`]). Every operation can run in another
//! network namespace (a pinned netns file): a short-lived thread `setns`es
//! into it first ([`netns`]), so tests drive a throwaway namespace exactly
//! as the agent drives the host's.
//!
//! Ownership: Bramble's node routes carry route protocol
//! [`routes::NODE_PROTO`] and the pod host routes [`routes::POD_PROTO`];
//! routes of any other protocol are never touched. nft tables are owned by
//! name (family `ip`).

pub mod links;
pub mod netns;
pub mod nft;
pub mod policy;
pub mod routes;
pub mod rules;
pub mod sysctl;
pub mod veth;

mod error;
mod nl;

pub use error::NetError;
pub use routes::{NextHop, Route};
pub use veth::PodLink;
