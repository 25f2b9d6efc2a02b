//! `--chown=user[:group]` and a `WORKDIR`'s `USER`, as BuildKit resolves
//! them: a number is an id, a name is looked up in the *destination*
//! image's `/etc/passwd` (its uid and primary gid) or `/etc/group`; a user
//! without a group gets the gid of the user entry when named, the same
//! number when numeric. Unlike BuildKit, which silently uses 0 for a name
//! it cannot find, an unknown name is an error naming it and the file.
//! Pure: the caller reads the files (inside the image's root, see
//! [`super::etc_files`]). A container's user follows runc's rules instead
//! ([`super::exec_user`]), which shares [`Id`].

use super::passwd::{group_entries, passwd_entries};

/// A user or group as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    Num(u32),
    Name(String),
}

impl Id {
    pub fn parse(s: &str) -> Id {
        match s.parse::<u32>() {
            Ok(n) => Id::Num(n),
            Err(_) => Id::Name(s.to_string()),
        }
    }
}

/// `user[:group]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerSpec {
    pub user: Id,
    pub group: Option<Id>,
}

impl OwnerSpec {
    /// Parses `user[:group]`; `None` for an empty spec (root, unchanged).
    pub fn parse(spec: &str) -> Option<OwnerSpec> {
        if spec.is_empty() {
            return None;
        }
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        Some(OwnerSpec {
            user: Id::parse(user),
            group: group.filter(|g| !g.is_empty()).map(Id::parse),
        })
    }

    /// Whether a name needs `/etc/passwd` (user) or `/etc/group` (group).
    pub fn needs_files(&self) -> (bool, bool) {
        (
            matches!(self.user, Id::Name(_)),
            matches!(self.group, Some(Id::Name(_))),
        )
    }

    /// The numeric owner; `passwd` and `group` are the destination image's
    /// files (`None`: missing).
    pub fn resolve(
        &self,
        passwd: Option<&str>,
        group: Option<&str>,
    ) -> Result<(u32, u32), OwnerError> {
        let (uid, mut gid) = match &self.user {
            Id::Num(n) => (*n, *n),
            Id::Name(name) => passwd
                .and_then(|text| passwd_entries(text).find(|u| u.name == name))
                .map(|u| (u.uid, u.gid))
                .ok_or_else(|| OwnerError::UnknownUser(name.clone()))?,
        };
        match &self.group {
            None => {}
            Some(Id::Num(n)) => gid = *n,
            Some(Id::Name(name)) => {
                gid = group
                    .and_then(|text| group_entries(text).find(|g| g.name == name))
                    .map(|g| g.gid)
                    .ok_or_else(|| OwnerError::UnknownGroup(name.clone()))?;
            }
        }
        Ok((uid, gid))
    }
}

/// A name not found in the destination image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    #[error(
        "user {0:?} is not in the image's /etc/passwd: add it (e.g. RUN adduser) before this \
         step, or give a numeric uid"
    )]
    UnknownUser(String),
    #[error(
        "group {0:?} is not in the image's /etc/group: add it (e.g. RUN addgroup) before this \
         step, or give a numeric gid"
    )]
    UnknownGroup(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:app\n";

    fn owner(spec: &str) -> Result<(u32, u32), OwnerError> {
        OwnerSpec::parse(spec)
            .unwrap()
            .resolve(Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn numbers_names_and_groups() {
        assert_eq!(owner("1000:1000"), Ok((1000, 1000)));
        assert_eq!(owner("42"), Ok((42, 42)));
        assert_eq!(owner("app"), Ok((1000, 1001)));
        assert_eq!(owner("app:staff"), Ok((1000, 50)));
        assert_eq!(owner("7:staff"), Ok((7, 50)));
        assert_eq!(owner("app:9"), Ok((1000, 9)));
        assert_eq!(
            owner("nobody"),
            Err(OwnerError::UnknownUser("nobody".into()))
        );
        assert_eq!(
            owner("app:wheel"),
            Err(OwnerError::UnknownGroup("wheel".into()))
        );
        assert_eq!(OwnerSpec::parse(""), None);
        assert_eq!(
            OwnerSpec::parse("app").unwrap().resolve(None, None),
            Err(OwnerError::UnknownUser("app".into()))
        );
        assert_eq!(
            OwnerSpec::parse("app:staff").unwrap().needs_files(),
            (true, true)
        );
    }
}
