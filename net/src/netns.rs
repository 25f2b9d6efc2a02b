//! Running code inside a network namespace: a scoped thread `setns`es into
//! the namespace pinned at a path (a bind-mounted netns file such as a
//! pod's, or `/run/netns/NAME`) and runs the closure there; sockets it
//! opens, processes it spawns (`nft`) and the `/proc/sys/net` files it
//! opens belong to that namespace. With no path the thread stays in the
//! caller's namespace.

use std::path::Path;

use crate::NetError;

/// Runs `f` on a fresh thread in the network namespace at `netns` (or the
/// caller's, with `None`) and returns its result.
pub fn run_in<T: Send>(
    netns: Option<&Path>,
    f: impl FnOnce() -> Result<T, NetError> + Send,
) -> Result<T, NetError> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("netns".into())
            .spawn_scoped(s, || {
                if let Some(path) = netns {
                    enter(path)?;
                }
                f()
            })
            .map_err(NetError::io("spawn a thread"))?
            .join()
            .unwrap_or_else(|_| Err(NetError::Invalid("network thread panicked".into())))
    })
}

/// Moves the calling thread into the network namespace at `path`.
pub fn enter(path: &Path) -> Result<(), NetError> {
    let err = |source| NetError::Netns {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(err)?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&f),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| err(e.into()))
}
