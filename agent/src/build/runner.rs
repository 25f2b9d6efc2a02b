//! The board's build jobs: each job of the desired set runs on a thread of
//! its own ([`super::job`]), so builds never hold up pods or each other;
//! a job that leaves the set is cancelled (its running `RUN` is killed,
//! or it stops before its next step) and forgotten. Reports are kept here for the node loop, which puts
//! them in the status; every change wakes it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bramble_api::protocol::{BuildJob, BuildReport};

use super::job::{JobEnv, JobError, run};

type Key = (String, String);

/// See the module docs.
pub struct Builder {
    env: Arc<JobEnv>,
    /// The jobs of the current set, with their cancel flags.
    jobs: BTreeMap<Key, (BuildJob, Arc<AtomicBool>)>,
    reports: Arc<Mutex<BTreeMap<Key, BuildReport>>>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl Builder {
    /// Jobs run with `env`; `wake` is called after every report.
    pub fn new(env: JobEnv, wake: Arc<dyn Fn() + Send + Sync>) -> Builder {
        super::job::remove_leftovers(&env.dir);
        Builder {
            env: Arc::new(env),
            jobs: BTreeMap::new(),
            reports: Arc::default(),
            wake,
        }
    }

    /// Starts the jobs of `jobs` not started yet; cancels the others. A
    /// job that changed (a restarted hub planned it again, with a new
    /// grant) starts over.
    pub fn sync(&mut self, jobs: &[BuildJob]) {
        let wanted: BTreeMap<Key, &BuildJob> = jobs
            .iter()
            .map(|j| ((j.uid.clone(), j.platform.clone()), j))
            .collect();
        let mut restarted = Vec::new();
        self.jobs.retain(|k, (job, cancel)| {
            let keep = wanted.get(k).is_some_and(|w| *w == job);
            if !keep {
                cancel.store(true, Ordering::Relaxed);
                restarted.push(k.clone());
            }
            keep
        });
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| wanted.contains_key(k) && !restarted.contains(k));
        for (key, job) in wanted {
            if self.jobs.contains_key(&key) {
                continue;
            }
            let cancel = Arc::new(AtomicBool::new(false));
            self.jobs.insert(key.clone(), (job.clone(), cancel.clone()));
            let (env, reports, wake, job) = (
                self.env.clone(),
                self.reports.clone(),
                self.wake.clone(),
                job.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name("build".into())
                .spawn(move || {
                    tracing::info!(build = %job.build, platform = %job.platform, "build started");
                    let put = |r: &BuildReport| {
                        let mut all = reports.lock().unwrap_or_else(|p| p.into_inner());
                        // A job cancelled meanwhile reports nothing more.
                        if !cancel.load(Ordering::Relaxed) {
                            all.insert(key.clone(), r.clone());
                        }
                        drop(all);
                        wake();
                    };
                    let last = std::cell::RefCell::new(BuildReport::default());
                    let result = run(&env, &job, &cancel, &|r| {
                        *last.borrow_mut() = r.clone();
                        put(r);
                    });
                    let mut end = last.into_inner();
                    match result {
                        Ok(()) => {
                            tracing::info!(build = %job.build, platform = %job.platform, "build done");
                            end.phase = "Succeeded".into();
                        }
                        Err(JobError::Cancelled) => {
                            tracing::info!(build = %job.build, "build cancelled");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(build = %job.build, platform = %job.platform, error = %e, "build failed");
                            end.phase = "Failed".into();
                            end.message = Some(e.to_string());
                            if let Some(s) = end.steps.last_mut().filter(|s| s.phase == "Running") {
                                s.phase = "Failed".into();
                            }
                        }
                    }
                    put(&end);
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no thread for a build");
            }
        }
    }

    /// The reports of the current jobs.
    pub fn reports(&self) -> Vec<BuildReport> {
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}
