//! SPDY/3.1, as much as `kubectl port-forward` speaks of it: frames
//! ([`frame`]) and header blocks ([`headers`], compressed with the
//! protocol's [`dictionary`]). kubectl ≥ 1.31 tunnels SPDY through a
//! WebSocket (subprotocol `SPDY/3.1+portforward.k8s.io`); the port-forward
//! session on top is [`super::websocket::portforward`].

pub mod dictionary;
pub mod frame;
pub mod headers;
