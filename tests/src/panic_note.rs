//! The message of the last panic on each thread, kept so that a fixture's
//! `Drop` can repeat it after its own diagnostics: CI shows the head and the
//! tail of a long failure, and a dump of logs printed during unwinding would
//! otherwise push the message itself into the part left out.

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that records the message and
/// location of a panic for [`last`], then runs the hook that was there.
pub fn install() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            LAST.with(|l| *l.borrow_mut() = Some(info.to_string()));
            previous(info);
        }));
    });
}

/// The message of the panic this thread is unwinding from (or last had),
/// if [`install`] ran before it.
pub fn last() -> Option<String> {
    LAST.with(|l| l.borrow().clone())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_is_remembered_on_its_thread() {
        super::install();
        let caught = std::panic::catch_unwind(|| panic!("the message {}", 42));
        assert!(caught.is_err());
        let last = super::last().expect("a recorded panic");
        assert!(last.contains("the message 42"), "{last}");
    }
}
