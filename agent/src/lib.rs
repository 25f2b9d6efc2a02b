//! The Bramble node agent as a library: the container runtime seam and its
//! backends (`runtime`), pods and the node (`pod`, `node`), image build
//! steps (`build`), an image's root read safely (`image_root`: its paths,
//! users and groups), and the hub session (`session`). The `bramble-agent`
//! binary wires these together.

pub mod build;
pub mod image_root;
pub mod lifecycle;
pub mod logs;
pub mod node;
pub mod pod;
pub mod runtime;
pub mod session;
