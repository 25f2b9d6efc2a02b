//! A cap on the watches one bearer token holds open at once
//! (`--max-watches-per-token`): each open watch keeps a store subscription
//! and a connection, so one leaked or hostile client must not be able to
//! open them without bound. A watch takes a [`WatchSlot`] for its whole
//! stream; the slot is given back when the stream ends or the client goes.
//! The one over the cap gets `429 TooManyRequests` saying which limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bramble_api::Status;

use super::error::ApiError;

/// Default of `--max-watches-per-token`: far above what kubectl, k9s or a
/// GitOps engine keeps open (one per kind it follows).
pub const DEFAULT_MAX_WATCHES_PER_TOKEN: usize = 512;

/// Who made an authenticated request: set by the auth middleware.
#[derive(Debug, Clone)]
pub struct Caller {
    /// A name for the token (never the token itself).
    pub token: Arc<str>,
}

/// Open watches per token.
#[derive(Debug)]
pub struct WatchLimits {
    max_per_token: usize,
    open: Mutex<HashMap<Arc<str>, usize>>,
}

/// One open watch of a token; dropping it gives the slot back.
#[derive(Debug)]
pub struct WatchSlot {
    limits: Arc<WatchLimits>,
    token: Arc<str>,
}

impl WatchLimits {
    pub fn new(max_per_token: usize) -> Arc<WatchLimits> {
        Arc::new(WatchLimits {
            max_per_token,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more watch of `caller`, or the refusal.
    pub fn acquire(self: &Arc<Self>, caller: &Caller) -> Result<WatchSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(caller.token.clone()).or_insert(0);
        if *n >= self.max_per_token {
            tracing::info!(token = %caller.token, open = *n, "watch refused: per-token cap");
            return Err(ApiError::new(Status::failure(
                429,
                "TooManyRequests",
                format!(
                    "too many open watches for this token ({n} of --max-watches-per-token {}): close some, or raise the hub's limit",
                    self.max_per_token
                ),
            )));
        }
        *n += 1;
        Ok(WatchSlot {
            limits: self.clone(),
            token: caller.token.clone(),
        })
    }

    /// Watches `token` holds open.
    pub fn open(&self, token: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(token).copied().unwrap_or(0)
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.token);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_per_token_and_slots_come_back() {
        let limits = WatchLimits::new(2);
        let a = Caller { token: "a".into() };
        let b = Caller { token: "b".into() };
        let s1 = limits.acquire(&a).unwrap();
        let _s2 = limits.acquire(&a).unwrap();
        let refused = limits.acquire(&a).unwrap_err();
        assert_eq!(refused.0.code, 429);
        assert!(refused.0.message.contains("--max-watches-per-token 2"));
        let _other = limits.acquire(&b).unwrap();
        drop(s1);
        assert_eq!(limits.open("a"), 1);
        let _s3 = limits.acquire(&a).unwrap();
        assert_eq!(limits.open("a"), 2);
    }
}
