//! Registry credentials of build jobs: each job gets a user and a random
//! password that let it upload blobs to its Build's repository (and read
//! them back), nothing else — no manifests, no tags, no other repository —
//! for as long as the job runs. Held in memory only (a restarted hub plans
//! its running builds again, with new grants); compared in constant time.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::Method;
use bramble_api::protocol::PushGrant;

use crate::registry::path::Route;

/// How every grant's user begins: an underscore, which no node name
/// (a DNS subdomain) has, so a node's own registry login is never taken
/// for a grant.
pub const USER_PREFIX: &str = "_build.";

#[derive(Debug, Clone)]
struct Grant {
    repository: String,
    password: String,
}

/// The live grants, by user.
#[derive(Debug, Default)]
pub struct Grants {
    by_user: Mutex<HashMap<String, Grant>>,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("the OS random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Grants {
    /// A new grant for `repository`, recorded under `user`.
    pub fn issue(&self, user: &str, repository: &str) -> PushGrant {
        let password = random_hex(32);
        self.by_user.lock().expect("grants lock").insert(
            user.to_string(),
            Grant {
                repository: repository.to_string(),
                password: password.clone(),
            },
        );
        PushGrant {
            repository: repository.to_string(),
            user: user.to_string(),
            password,
        }
    }

    /// The grant of `user`, if live.
    pub fn get(&self, user: &str) -> Option<PushGrant> {
        self.by_user
            .lock()
            .expect("grants lock")
            .get(user)
            .map(|g| PushGrant {
                repository: g.repository.clone(),
                user: user.to_string(),
                password: g.password.clone(),
            })
    }

    /// Ends the grant of `user`.
    pub fn revoke(&self, user: &str) {
        self.by_user.lock().expect("grants lock").remove(user);
    }

    /// Whether `user`:`password` may do `method` on `route`.
    pub fn allows(&self, user: &str, password: &str, method: &Method, route: &Route) -> bool {
        let Some(g) = self.by_user.lock().expect("grants lock").get(user).cloned() else {
            return false;
        };
        let same = crate::token::constant_time_eq(g.password.as_bytes(), password.as_bytes());
        let allowed = match route {
            Route::Blob { repo, .. } => {
                repo == &g.repository && matches!(*method, Method::GET | Method::HEAD)
            }
            Route::Upload { repo, .. } => {
                repo == &g.repository
                    && matches!(
                        *method,
                        Method::GET | Method::POST | Method::PATCH | Method::PUT | Method::DELETE
                    )
            }
            Route::Base => matches!(*method, Method::GET | Method::HEAD),
            _ => false,
        };
        same && allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_uploads_blobs_to_its_repository_only() {
        let g = Grants::default();
        let p = g.issue("_build.1", "team/web");
        let up = |repo: &str| Route::Upload {
            repo: repo.into(),
            id: None,
        };
        assert!(g.allows("_build.1", &p.password, &Method::POST, &up("team/web")));
        assert!(!g.allows("_build.1", "wrong", &Method::POST, &up("team/web")));
        assert!(!g.allows("_build.1", &p.password, &Method::POST, &up("other")));
        let m = Route::Manifest {
            repo: "team/web".into(),
            reference: "latest".into(),
        };
        assert!(!g.allows("_build.1", &p.password, &Method::PUT, &m));
        assert!(!g.allows("_build.1", &p.password, &Method::GET, &Route::Catalog));
        g.revoke("_build.1");
        assert!(!g.allows("_build.1", &p.password, &Method::POST, &up("team/web")));
    }
}
