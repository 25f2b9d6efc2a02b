//! The metadata every kind of tar entry carries: permission bits, owner and
//! mtime, read from the header and its PAX extensions.
//!
//! Setuid/setgid bits are cleared here unless
//! [`UnpackOptions::keep_setuid`](crate::unpack::UnpackOptions::keep_setuid);
//! blank uid, gid and mtime fields read as 0 (as Go's `archive/tar` does);
//! PAX `uid`, `gid` and `mtime` override the header; owners that do not fit
//! a `u32` are an error.

use std::io::{self, Read};

use rustix::fs::{Timespec, Timestamps};

use super::{Ctx, Extractor};
use crate::unpack::UnpackError;

/// Metadata of an entry that applies to whatever kind it is.
pub(super) struct Meta {
    /// Permission bits (`0o7777`), already stripped of setuid/setgid unless kept.
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mtime: Timespec,
}

pub(super) fn timespec(secs: i64, nanos: i64) -> Timespec {
    Timespec {
        tv_sec: secs,
        tv_nsec: nanos,
    }
}

/// Access and modification time both set to `t`.
pub(super) fn times(t: Timespec) -> Timestamps {
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Parses a PAX time (`"1700000000.5"`, possibly negative) into a timespec.
fn parse_pax_time(s: &str) -> Option<Timespec> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = int.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let mut nanos: i64 = digits.parse().ok()?;
    let mut secs = secs;
    if int.starts_with('-') && nanos > 0 {
        // -1.5 is one and a half seconds before the epoch.
        secs -= 1;
        nanos = 1_000_000_000 - nanos;
    }
    Some(timespec(secs, nanos))
}

impl Extractor<'_> {
    /// The metadata of entry `e` (see the module docs).
    pub(super) fn meta<R: Read>(
        &self,
        ctx: &Ctx<'_>,
        e: &mut tar::Entry<'_, R>,
    ) -> Result<Meta, UnpackError> {
        let h = e.header();
        let bad = |what: &'static str| {
            move |err: io::Error| UnpackError::Entry {
                entry: ctx.entry.to_string(),
                op: what,
                source: err,
            }
        };
        let mut mode = h.mode().map_err(bad("read mode"))? & 0o7777;
        if !self.opts.keep_setuid {
            mode &= !0o6000;
        }
        // Like Go's archive/tar, a blank numeric field reads as 0.
        let blank = |f: &[u8]| f.iter().all(|&b| b == 0 || b == b' ');
        let old = h.as_old();
        let or_blank = |r: io::Result<u64>, field: &[u8]| match r {
            Err(_) if blank(field) => Ok(0),
            r => r,
        };
        let mut uid = or_blank(h.uid(), &old.uid).map_err(bad("read uid"))?;
        let mut gid = or_blank(h.gid(), &old.gid).map_err(bad("read gid"))?;
        let mtime = or_blank(h.mtime(), &old.mtime).map_err(bad("read mtime"))?;
        let mut mtime = timespec(i64::try_from(mtime).unwrap_or(i64::MAX), 0);
        if let Some(exts) = e.pax_extensions().map_err(bad("read pax extensions"))? {
            for ext in exts {
                let ext = ext.map_err(bad("read pax extensions"))?;
                let (Ok(k), Ok(v)) = (ext.key(), ext.value()) else {
                    continue;
                };
                match k {
                    "uid" => uid = v.parse().unwrap_or(uid),
                    "gid" => gid = v.parse().unwrap_or(gid),
                    "mtime" => mtime = parse_pax_time(v).unwrap_or(mtime),
                    _ => {}
                }
            }
        }
        let id = |v: u64, what: &'static str| {
            u32::try_from(v).map_err(|_| UnpackError::Entry {
                entry: ctx.entry.to_string(),
                op: what,
                source: io::Error::new(io::ErrorKind::InvalidData, format!("{v} is out of range")),
            })
        };
        Ok(Meta {
            mode,
            uid: id(uid, "uid")?,
            gid: id(gid, "gid")?,
            mtime,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let t = parse_pax_time("1700000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 250_000_000));
        let t = parse_pax_time("12").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 0));
        let t = parse_pax_time("-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        assert!(parse_pax_time("x").is_none());
        assert!(parse_pax_time("1.x").is_none());
    }
}
