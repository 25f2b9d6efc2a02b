//! What the node loop remembers of the pulls each pod waited for: the image,
//! when the pod began to wait and, once the pod started, how long it waited
//! and the image's size. Reported with the pod's status
//! ([`PodReport::pulls`](bramble_api::protocol::PodReport)), from which the
//! hub records the kubelet's `Pulling` and `Pulled` events. A pod whose
//! images were all on the node has no entry.

use std::collections::BTreeMap;
use std::time::Instant;

use bramble_api::protocol::ImagePull;

#[derive(Debug, Clone)]
struct Wait {
    since: Instant,
    /// Milliseconds waited and the image's size, once the pod started.
    done: Option<(u64, u64)>,
}

/// Pull waits by pod id, then image. See the module docs.
#[derive(Debug, Default)]
pub struct PullWaits {
    pods: BTreeMap<String, BTreeMap<String, Wait>>,
}

impl PullWaits {
    /// `pod` waits for `image` (from `now`, unless it already did).
    pub fn waiting(&mut self, pod: &str, image: &str, now: Instant) {
        self.pods
            .entry(pod.to_string())
            .or_default()
            .entry(image.to_string())
            .or_insert(Wait {
                since: now,
                done: None,
            });
    }

    /// `pod` failed to start: the pulls it waited for and that did not
    /// finish are forgotten (the next attempt pulls, and waits, anew).
    pub fn failed(&mut self, pod: &str) {
        if let Some(waits) = self.pods.get_mut(pod) {
            waits.retain(|_, w| w.done.is_some());
            if waits.is_empty() {
                self.pods.remove(pod);
            }
        }
    }

    /// `pod` started at `now`: each wait it had ends, with the size `size`
    /// gives for its image.
    pub fn started(&mut self, pod: &str, now: Instant, size: impl Fn(&str) -> u64) {
        for (image, w) in self.pods.get_mut(pod).into_iter().flatten() {
            if w.done.is_none() {
                let waited = now.saturating_duration_since(w.since).as_millis();
                w.done = Some((u64::try_from(waited).unwrap_or(u64::MAX), size(image)));
            }
        }
    }

    /// Forgets every pod `keep` says no to.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.pods.retain(|id, _| keep(id));
    }

    /// The pulls `pod` waited for, as its report carries them.
    pub fn report(&self, pod: &str) -> Vec<ImagePull> {
        self.pods
            .get(pod)
            .into_iter()
            .flatten()
            .map(|(image, w)| ImagePull {
                image: image.clone(),
                millis: w.done.map(|(ms, _)| ms),
                size: w.done.map(|(_, size)| size).filter(|s| *s > 0),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_wait_is_reported_running_then_with_its_duration_and_size() {
        let t0 = Instant::now();
        let mut w = PullWaits::default();
        assert!(w.report("p").is_empty(), "no wait, nothing to report");
        w.waiting("p", "web:1", t0);
        w.waiting("p", "web:1", t0 + Duration::from_secs(1));
        assert_eq!(
            w.report("p"),
            [ImagePull {
                image: "web:1".into(),
                millis: None,
                size: None
            }]
        );
        w.started("p", t0 + Duration::from_millis(1500), |_| 4096);
        assert_eq!(
            w.report("p")[0].millis,
            Some(1500),
            "waited from the first try"
        );
        assert_eq!(w.report("p")[0].size, Some(4096));
        w.started("p", t0 + Duration::from_secs(9), |_| 1);
        assert_eq!(
            w.report("p")[0].millis,
            Some(1500),
            "a restart is not a pull"
        );
    }

    #[test]
    fn a_failed_start_forgets_unfinished_waits_and_gone_pods_everything() {
        let t0 = Instant::now();
        let mut w = PullWaits::default();
        w.waiting("p", "a:1", t0);
        w.started("p", t0, |_| 0);
        w.waiting("p", "b:1", t0);
        w.failed("p");
        let images: Vec<String> = w.report("p").into_iter().map(|p| p.image).collect();
        assert_eq!(images, ["a:1"]);
        w.waiting("q", "a:1", t0);
        w.retain(|id| id == "q");
        assert!(w.report("p").is_empty());
        assert_eq!(w.report("q").len(), 1);
    }
}
