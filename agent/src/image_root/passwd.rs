//! The lines of an image's `/etc/passwd` and `/etc/group` (`man 5 passwd`,
//! `man 5 group`), parsed as runc's `libcontainer/user` does: fields split
//! on `:`, blank lines skipped, the first matching line wins. A line whose
//! id is not a number is skipped (runc reads it as 0, which would make a
//! malformed line root). Pure: the caller reads the files.

/// One `/etc/passwd` line: `name:password:uid:gid:gecos:home:shell`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry<'a> {
    pub name: &'a str,
    pub uid: u32,
    pub gid: u32,
}

/// One `/etc/group` line: `name:password:gid:member,member,...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry<'a> {
    pub name: &'a str,
    pub gid: u32,
    pub members: Vec<&'a str>,
}

/// The entries of a passwd file, in order.
pub fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    fields(text).filter_map(|f| {
        Some(PasswdEntry {
            name: f.first()?,
            uid: f.get(2)?.trim().parse().ok()?,
            gid: f.get(3)?.trim().parse().ok()?,
        })
    })
}

/// The entries of a group file, in order.
pub fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    fields(text).filter_map(|f| {
        Some(GroupEntry {
            name: f.first()?,
            gid: f.get(2)?.trim().parse().ok()?,
            members: f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    })
}

fn fields(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| line.split(':').collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_skip_blank_and_malformed_lines() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\n\n  app:x:1000:1001::/home/app:/bin/sh  \n\
                      bad:x:abc:0::/:/bin/sh\nshort:x:5\n";
        let users: Vec<_> = passwd_entries(passwd).collect();
        assert_eq!(
            users,
            [
                PasswdEntry {
                    name: "root",
                    uid: 0,
                    gid: 0
                },
                PasswdEntry {
                    name: "app",
                    uid: 1000,
                    gid: 1001
                },
            ]
        );
        let group = "root:x:0:\nstaff:x:50:app, bob\nwheel:x:10\nbad:x::app\n";
        let groups: Vec<_> = group_entries(group).collect();
        assert_eq!(
            groups,
            [
                GroupEntry {
                    name: "root",
                    gid: 0,
                    members: vec![]
                },
                GroupEntry {
                    name: "staff",
                    gid: 50,
                    members: vec!["app", "bob"]
                },
                GroupEntry {
                    name: "wheel",
                    gid: 10,
                    members: vec![]
                },
            ]
        );
    }
}
