//! The device rule model: the rules a container gets ([`container_rules`])
//! and the state the kernel's v1 device controller would reach for them
//! ([`DeviceFilter`]), with the decision that state makes
//! ([`DeviceFilter::allows`]). Pure: no syscalls.
//!
//! [`DeviceFilter::from_rules`] replays rules the way
//! `security/device_cgroup.c` does: an `a` rule resets the default (allow or
//! deny) and drops every exception; another rule adds an exception when it
//! goes against the default, or takes its access bits away from the
//! identical exception when it agrees with it. With the default deny an
//! access is allowed when a single exception matching type, major and minor
//! (`*` matches any) holds all the requested bits; with the default allow it
//! is denied when a matching exception shares any bit.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType};

use super::DeviceFilterError;
use crate::runtime::DeviceKind;

/// `BPF_DEVCG_ACC_MKNOD`: the `m` access.
pub const ACC_MKNOD: u8 = 1;
/// `BPF_DEVCG_ACC_READ`: the `r` access.
pub const ACC_READ: u8 = 2;
/// `BPF_DEVCG_ACC_WRITE`: the `w` access.
pub const ACC_WRITE: u8 = 4;
/// `rwm`.
pub const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// The rules a container's device cgroup gets: `spec_rules` (the spec's
/// `linux.resources.devices`: deny-all or, privileged, allow-all, then the
/// configured devices) followed by the standard devices libcgroups allows on
/// v1, in its order (`common::default_devices` as rwm, then
/// `common::default_allow_devices`; both are private to libcgroups).
pub fn container_rules(spec_rules: &[LinuxDeviceCgroup]) -> Vec<LinuxDeviceCgroup> {
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(typ)
            .access(access);
        if let Some(major) = major {
            b = b.major(major);
        }
        if let Some(minor) = minor {
            b = b.minor(minor);
        }
        b.build().expect("every field of a device rule is set")
    };
    use LinuxDeviceType::{B, C};
    let mut rules = spec_rules.to_vec();
    rules.extend([
        rule(C, Some(1), Some(3), "rwm"),    // null
        rule(C, Some(1), Some(5), "rwm"),    // zero
        rule(C, Some(1), Some(7), "rwm"),    // full
        rule(C, Some(5), Some(0), "rwm"),    // tty
        rule(C, Some(1), Some(9), "rwm"),    // urandom
        rule(C, Some(1), Some(8), "rwm"),    // random
        rule(C, None, None, "m"),            // mknod of any char device
        rule(B, None, None, "m"),            // mknod of any block device
        rule(C, Some(5), Some(1), "rwm"),    // console
        rule(C, Some(136), None, "rwm"),     // pts
        rule(C, Some(5), Some(2), "rwm"),    // ptmx
        rule(C, Some(10), Some(200), "rwm"), // tun
    ]);
    rules
}

/// One exception of the v1 model: a device (`None` = any major/minor) and
/// the access bits ([`ACC_READ`] ...) it allows (default deny) or denies
/// (default allow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Exception {
    fn same_device(&self, other: &Exception) -> bool {
        (self.kind, self.major, self.minor) == (other.kind, other.major, other.minor)
    }

    fn matches(&self, kind: DeviceKind, major: u32, minor: u32) -> bool {
        self.kind == kind
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
    }
}

/// The state the v1 device controller would reach for a rule list: its
/// default and its exceptions. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Allow what no exception matches (privileged) rather than deny.
    pub default_allow: bool,
    pub exceptions: Vec<Exception>,
}

/// A parsed rule: `kind` `None` is the `a` (all devices) rule.
struct Rule {
    allow: bool,
    kind: Option<DeviceKind>,
    major: Option<u32>,
    minor: Option<u32>,
    access: u8,
}

fn parse_rule(rule: &LinuxDeviceCgroup) -> Result<Rule, DeviceFilterError> {
    let bad = |reason: String| DeviceFilterError::InvalidRule {
        rule: format!("{} {rule}", if rule.allow() { "allow" } else { "deny" }),
        reason,
    };
    let kind = match rule.typ() {
        None | Some(LinuxDeviceType::A) => None,
        Some(LinuxDeviceType::C) => Some(DeviceKind::Char),
        Some(LinuxDeviceType::B) => Some(DeviceKind::Block),
        // The v1 controller rejects these too (EINVAL).
        Some(other) => {
            return Err(bad(format!(
                "device type {:?} is not one of a, b, c",
                other.as_str()
            )));
        }
    };
    // Device numbers are 12 (major) and 20 (minor) bits; the program
    // compares them with sign-extended 32-bit immediates.
    let number = |n: Option<i64>, what: &str| match n {
        None => Ok(None),
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| i32::try_from(*n).is_ok())
            .map(Some)
            .ok_or_else(|| bad(format!("{what} {n} is out of range"))),
    };
    let major = number(rule.major(), "major")?;
    let minor = number(rule.minor(), "minor")?;
    // A missing access is empty, as libcgroups writes it to the v1 files.
    let mut access = 0;
    for c in rule.access().as_deref().unwrap_or("").chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            other => return Err(bad(format!("unknown access {other:?} (not r, w, m)"))),
        };
    }
    Ok(Rule {
        allow: rule.allow(),
        kind,
        major,
        minor,
        access,
    })
}

impl DeviceFilter {
    /// Replays `rules` in order, starting (like a v1 cgroup under the root)
    /// from "allow everything".
    pub fn from_rules<'a>(
        rules: impl IntoIterator<Item = &'a LinuxDeviceCgroup>,
    ) -> Result<DeviceFilter, DeviceFilterError> {
        let mut filter = DeviceFilter {
            default_allow: true,
            exceptions: Vec::new(),
        };
        for rule in rules {
            let rule = parse_rule(rule)?;
            let Some(kind) = rule.kind else {
                // `a`: the rest of the rule is ignored, as in the kernel.
                filter.default_allow = rule.allow;
                filter.exceptions.clear();
                continue;
            };
            let ex = Exception {
                kind,
                major: rule.major,
                minor: rule.minor,
                access: rule.access,
            };
            if rule.allow == filter.default_allow {
                filter.remove(&ex);
            } else {
                filter.add(ex);
            }
        }
        Ok(filter)
    }

    fn add(&mut self, ex: Exception) {
        if ex.access == 0 {
            return;
        }
        match self.exceptions.iter_mut().find(|e| e.same_device(&ex)) {
            Some(e) => e.access |= ex.access,
            None => self.exceptions.push(ex),
        }
    }

    fn remove(&mut self, ex: &Exception) {
        for e in self.exceptions.iter_mut().filter(|e| e.same_device(ex)) {
            e.access &= !ex.access;
        }
        self.exceptions.retain(|e| e.access != 0);
    }

    /// Whether the v1 controller in this state allows `access` (some of
    /// [`ACC_READ`], [`ACC_WRITE`], [`ACC_MKNOD`]) to the device.
    pub fn allows(&self, kind: DeviceKind, major: u32, minor: u32, access: u8) -> bool {
        let mut matching = self
            .exceptions
            .iter()
            .filter(|e| e.matches(kind, major, minor));
        if self.default_allow {
            !matching.any(|e| e.access & access != 0)
        } else {
            matching.any(|e| access & !e.access == 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::LinuxDeviceType;

    use super::super::testing::{allow_all, c, deny_all, rule};
    use super::*;

    #[test]
    fn container_defaults_follow_v1() {
        let f = DeviceFilter::from_rules(&container_rules(&[deny_all(), c(89, 1, "rw")])).unwrap();
        assert!(!f.default_allow);
        let ok = |k, ma, mi, a| f.allows(k, ma, mi, a);
        use DeviceKind::{Block, Char};
        let rw = ACC_READ | ACC_WRITE;
        for (ma, mi) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
            (136, 4),
            (10, 200),
        ] {
            assert!(ok(Char, ma, mi, rw), "{ma}:{mi}");
        }
        assert!(ok(Char, 89, 1, rw));
        assert!(!ok(Char, 89, 1, ACC_ALL), "the i2c device got rw, not m");
        assert!(ok(Char, 89, 1, ACC_MKNOD), "but c *:* m allows any mknod");
        assert!(!ok(Char, 1, 11, ACC_READ), "kmsg");
        assert!(!ok(Block, 8, 0, ACC_READ));
        assert!(ok(Block, 8, 0, ACC_MKNOD));
        assert_eq!(f.exceptions.len(), 13);
    }

    #[test]
    fn v1_replay_merges_removes_and_resets() {
        use DeviceKind::Char;
        // An allow of the same device adds bits; a deny takes them away.
        let f = DeviceFilter::from_rules(&[
            deny_all(),
            c(1, 5, "r"),
            c(1, 5, "w"),
            rule(false, Some(LinuxDeviceType::C), (Some(1), Some(5)), "r"),
            c(1, 7, "r"),
            rule(false, Some(LinuxDeviceType::C), (Some(1), Some(7)), "rwm"),
        ])
        .unwrap();
        assert_eq!(f.exceptions.len(), 1);
        assert!(f.allows(Char, 1, 5, ACC_WRITE) && !f.allows(Char, 1, 5, ACC_READ));
        assert!(!f.allows(Char, 1, 7, ACC_READ));
        // A deny of one device does not punch a hole in a wildcard.
        let f = DeviceFilter::from_rules(&[
            deny_all(),
            rule(true, Some(LinuxDeviceType::C), (Some(1), None), "rwm"),
            rule(false, Some(LinuxDeviceType::C), (Some(1), Some(3)), "rwm"),
        ])
        .unwrap();
        assert!(f.allows(Char, 1, 3, ACC_READ));
        // `a` drops every exception.
        let f = DeviceFilter::from_rules(&[deny_all(), c(1, 3, "rwm"), deny_all()]).unwrap();
        assert!(f.exceptions.is_empty() && !f.allows(Char, 1, 3, ACC_READ));
        // No rules: allow all, as a v1 cgroup under the root.
        let f = DeviceFilter::from_rules(&[]).unwrap();
        assert!(f.allows(Char, 1, 1, ACC_ALL));
        // Default allow with deny exceptions: any shared bit denies.
        let f = DeviceFilter::from_rules(&[
            allow_all(),
            rule(false, Some(LinuxDeviceType::C), (Some(1), Some(1)), "w"),
        ])
        .unwrap();
        assert!(f.allows(Char, 1, 1, ACC_READ));
        assert!(!f.allows(Char, 1, 1, ACC_READ | ACC_WRITE));
    }

    #[test]
    fn bad_rules_are_errors_naming_them() {
        for (r, want) in [
            (
                rule(true, Some(LinuxDeviceType::P), (None, None), "rwm"),
                "type",
            ),
            (c(1, 3, "rwx"), "access"),
            (c(-1, 3, "r"), "major"),
            (c(1, 1 << 40, "r"), "minor"),
        ] {
            let err = DeviceFilter::from_rules(&[r]).unwrap_err().to_string();
            assert!(
                err.contains(want) && err.contains("device cgroup rule"),
                "{err}"
            );
        }
    }
}
