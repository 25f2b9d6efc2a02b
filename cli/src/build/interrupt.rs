//! Ctrl-C (or SIGTERM) while a build is followed cancels it, as `docker
//! build`'s does: the Build is deleted (its boards kill the running `RUN`
//! and stop) before the command exits with 130. One handler for the
//! process, installed with the first build: it deletes whichever Build is
//! followed at that moment (`compose build` follows several in turn), or
//! only exits when none is.

use std::sync::{Mutex, Once};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::client::Client;

/// The Build followed now: its client and path.
static CURRENT: Mutex<Option<(Client, String)>> = Mutex::new(None);
static INSTALL: Once = Once::new();

/// While it lives, an interrupt deletes the Build at `path`.
#[derive(Debug)]
pub struct Cancelling(());

/// Makes an interrupt cancel the Build at `path` until the guard drops.
pub fn cancel_on_interrupt(client: &Client, path: &str) -> Cancelling {
    *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = Some((client.clone(), path.to_string()));
    INSTALL.call_once(|| match Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            let spawned = std::thread::Builder::new()
                .name("interrupt".into())
                .spawn(move || {
                    if let Some(sig) = signals.forever().next() {
                        let current = CURRENT.lock().unwrap_or_else(|p| p.into_inner()).take();
                        if let Some((client, path)) = current {
                            let name = path.rsplit('/').next().unwrap_or(&path);
                            eprintln!("cancelling build {name}");
                            if let Err(e) = client.delete(&path) {
                                eprintln!("bramble: cancelling build {name}: {e} (delete it with `bramble delete build {name}`)");
                            }
                        }
                        std::process::exit(128 + sig);
                    }
                });
            if let Err(e) = spawned {
                eprintln!("bramble: Ctrl-C will not cancel the build: {e}");
            }
        }
        Err(e) => eprintln!("bramble: Ctrl-C will not cancel the build: {e}"),
    });
    Cancelling(())
}

impl Drop for Cancelling {
    fn drop(&mut self) {
        *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
