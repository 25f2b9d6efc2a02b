//! The user a container's process runs as, from `user[:group]` (the
//! image's `USER` as the security context overrides it) and the image's
//! `/etc/passwd` and `/etc/group`, by runc's rules
//! (`libcontainer/user.GetExecUser`), which Docker and containerd use:
//!
//! - a user name is looked up in `/etc/passwd` (its uid and primary gid),
//!   and an unknown name is an error ("unable to find user app: no
//!   matching entries in passwd file"); a number is a uid, with the gid of
//!   its `/etc/passwd` line if it has one, else gid 0;
//! - an explicit group (name or number) replaces the gid, a name looked up
//!   in `/etc/group`;
//! - without an explicit group, a user found in `/etc/passwd` also gets
//!   the groups that list it as a member (supplementary groups).
//!
//! Pure: the caller reads the files (see [`super::etc_files`]).

use super::owner::Id;
use super::passwd::{group_entries, passwd_entries};

/// Who the process is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, in `/etc/group` order.
    pub additional_gids: Vec<u32>,
}

/// A name the image's files do not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecUserError {
    #[error(
        "unable to find user {user}: no matching entries in passwd file ({}); add the user to \
         the image (e.g. RUN adduser) or set securityContext.runAsUser to a numeric uid",
        if *.no_file { "the image has no /etc/passwd" } else { "the image's /etc/passwd" }
    )]
    UnknownUser { user: String, no_file: bool },
    #[error(
        "unable to find group {group}: no matching entries in group file ({}); add the group \
         to the image (e.g. RUN addgroup) or set securityContext.runAsGroup to a numeric gid",
        if *.no_file { "the image has no /etc/group" } else { "the image's /etc/group" }
    )]
    UnknownGroup { group: String, no_file: bool },
}

/// Resolves `spec` (`""`, `user`, `uid`, `user:group`, `uid:gid`, ...)
/// against the image's `passwd` and `group` files (`None`: missing).
pub fn exec_user(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser, ExecUserError> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
        None => (spec, None),
    };
    // An empty user is the default one, root.
    let user_id = if user_arg.is_empty() {
        Id::Num(0)
    } else {
        Id::parse(user_arg)
    };
    let entry = passwd.and_then(|text| {
        passwd_entries(text).find(|u| match &user_id {
            Id::Num(n) => u.uid == *n,
            Id::Name(name) => u.name == name,
        })
    });
    let mut user = ExecUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
    };
    match (&entry, &user_id) {
        (Some(e), _) => (user.uid, user.gid) = (e.uid, e.gid),
        (None, Id::Num(n)) => user.uid = *n,
        (None, Id::Name(name)) => {
            return Err(ExecUserError::UnknownUser {
                user: name.clone(),
                no_file: passwd.is_none(),
            });
        }
    }
    match group_arg.map(Id::parse) {
        Some(wanted) => {
            let found = group.and_then(|text| {
                group_entries(text).find(|g| match &wanted {
                    Id::Num(n) => g.gid == *n,
                    Id::Name(name) => g.name == name,
                })
            });
            user.gid = match (found, wanted) {
                (Some(g), _) => g.gid,
                (None, Id::Num(n)) => n,
                (None, Id::Name(name)) => {
                    return Err(ExecUserError::UnknownGroup {
                        group: name,
                        no_file: group.is_none(),
                    });
                }
            };
        }
        None => {
            if let (Some(e), Some(text)) = (&entry, group) {
                user.additional_gids = group_entries(text)
                    .filter(|g| g.members.contains(&e.name))
                    .map(|g| g.gid)
                    .collect();
            }
        }
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          app:x:1000:1001::/home/app:/bin/sh\n\
                          web:x:33:33::/srv:/bin/sh\n";
    const GROUP: &str = "root:x:0:root\nstaff:x:50:app,web\napp:x:1001:\nvideo:x:44:app\n";

    fn user(spec: &str) -> Result<(u32, u32, Vec<u32>), ExecUserError> {
        exec_user(spec, Some(PASSWD), Some(GROUP)).map(|u| (u.uid, u.gid, u.additional_gids))
    }

    #[test]
    fn names_take_their_ids_and_groups() {
        assert_eq!(user("app"), Ok((1000, 1001, vec![50, 44])));
        assert_eq!(user("web"), Ok((33, 33, vec![50])));
        // An explicit group replaces the gid and drops supplementary groups.
        assert_eq!(user("app:staff"), Ok((1000, 50, vec![])));
        assert_eq!(user("app:7"), Ok((1000, 7, vec![])));
        assert_eq!(user("app:44"), Ok((1000, 44, vec![])));
        assert_eq!(user("7:staff"), Ok((7, 50, vec![])));
    }

    #[test]
    fn numbers_follow_runc() {
        // A uid in /etc/passwd is that user (gid and groups included).
        assert_eq!(user("1000"), Ok((1000, 1001, vec![50, 44])));
        // A uid without a line runs with gid 0.
        assert_eq!(user("4242"), Ok((4242, 0, vec![])));
        assert_eq!(user("4242:9"), Ok((4242, 9, vec![])));
        assert_eq!(user(""), Ok((0, 0, vec![0])));
        assert_eq!(
            exec_user("4242", None, None),
            Ok(ExecUser {
                uid: 4242,
                gid: 0,
                additional_gids: vec![]
            })
        );
    }

    #[test]
    fn unknown_names_are_errors_in_runc_words() {
        let e = user("nobody").unwrap_err();
        assert_eq!(
            e,
            ExecUserError::UnknownUser {
                user: "nobody".into(),
                no_file: false
            }
        );
        assert!(
            e.to_string()
                .starts_with("unable to find user nobody: no matching entries in passwd file"),
            "{e}"
        );
        assert!(e.to_string().contains("/etc/passwd"), "{e}");
        let e = exec_user("app", None, None).unwrap_err();
        assert!(
            e.to_string().contains("the image has no /etc/passwd"),
            "{e}"
        );
        let e = user("app:wheel").unwrap_err();
        assert_eq!(
            e,
            ExecUserError::UnknownGroup {
                group: "wheel".into(),
                no_file: false
            }
        );
        assert!(
            e.to_string()
                .starts_with("unable to find group wheel: no matching entries in group file"),
            "{e}"
        );
    }
}
