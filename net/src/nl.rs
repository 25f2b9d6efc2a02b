//! One netlink connection on a current-thread tokio runtime, for a
//! closure's requests, in a given network namespace (see [`crate::netns`]).

use std::future::Future;
use std::path::Path;

use rtnetlink::Handle;

use crate::NetError;
use crate::netns::run_in;

/// Runs `f`'s future with a fresh rtnetlink handle opened in `netns`.
pub(crate) fn with_handle<T, F, Fut>(netns: Option<&Path>, f: F) -> Result<T, NetError>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T, NetError>>,
{
    run_in(netns, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(NetError::io("start the netlink runtime"))?;
        rt.block_on(async {
            let (conn, handle, _) =
                rtnetlink::new_connection().map_err(NetError::io("open a netlink socket"))?;
            let task = tokio::spawn(conn);
            let r = f(handle).await;
            task.abort();
            r
        })
    })
}

/// The index of link `name`, `None` if there is none.
pub(crate) async fn link_index(h: &Handle, name: &str) -> Result<Option<u32>, NetError> {
    use futures_util::TryStreamExt;
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(l)) => Ok(Some(l.header.index)),
        Ok(None) => Ok(None),
        Err(e) if crate::error::errno(&e) == Some(19) => Ok(None), // ENODEV
        Err(e) => Err(NetError::netlink(format!("find link {name}"))(e)),
    }
}
