//! Which hub request numbers an agent session has seen: a sliding window
//! (as IPsec's anti-replay window) that accepts each number once, tolerates
//! requests arriving a little out of order (the hub numbers them as calls
//! start and publishes them as they are ready), and refuses anything 64 or
//! more below the highest seen, or an absurd jump ahead.

/// Numbers more than this far below the highest are refused.
const WINDOW: u64 = 64;
/// A jump further than this ahead is a bug or an attack: refused.
const MAX_JUMP: u64 = 1 << 32;

/// See the module docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    highest: u64,
    /// Bit `d` set: `highest - d` was seen.
    seen: u64,
}

/// Why a number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    Zero,
    Seen,
    TooOld,
    AbsurdJump,
}

impl ReplayWindow {
    /// The highest number accepted (0: none yet).
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// Accepts `seq` if it was not seen and is not too old.
    pub fn accept(&mut self, seq: u64) -> Result<(), Replay> {
        if seq == 0 {
            return Err(Replay::Zero);
        }
        if seq > self.highest {
            let shift = seq - self.highest;
            if shift > MAX_JUMP {
                return Err(Replay::AbsurdJump);
            }
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.highest = seq;
            return Ok(());
        }
        let d = self.highest - seq;
        if d >= WINDOW {
            return Err(Replay::TooOld);
        }
        if self.seen & (1 << d) != 0 {
            return Err(Replay::Seen);
        }
        self.seen |= 1 << d;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_number_once_a_little_out_of_order_never_far_behind() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.accept(0), Err(Replay::Zero));
        assert_eq!(w.accept(5), Ok(()));
        assert_eq!(w.accept(5), Err(Replay::Seen));
        assert_eq!(w.accept(3), Ok(()), "late but new");
        assert_eq!(w.accept(3), Err(Replay::Seen));
        assert_eq!(w.accept(6), Ok(()));
        assert_eq!(w.highest(), 6);
        assert_eq!(w.accept(200), Ok(()));
        assert_eq!(w.accept(6), Err(Replay::TooOld));
        assert_eq!(w.accept(137), Ok(()), "63 behind is still in the window");
        assert_eq!(w.accept(136), Err(Replay::TooOld));
        assert_eq!(w.accept(u64::MAX), Err(Replay::AbsurdJump));
        assert_eq!(w.highest(), 200);
        // A jump of exactly the window forgets everything before.
        let mut w = ReplayWindow::default();
        w.accept(1).unwrap();
        w.accept(1 + WINDOW).unwrap();
        assert_eq!(w.accept(1), Err(Replay::TooOld));
        assert_eq!(w.accept(2), Ok(()));
    }
}
