//! One thread per pod: it starts the pod (images, rootfs, network,
//! containers: [`RunningPod::start`]) or carries on with an adopted one,
//! supervises it on its own clock ([`RunningPod::tick`]: restarts,
//! probes), saves its record when it changed, and stops it when told
//! ([`RunningPod::stop`], with its grace period). Nothing one pod does — a
//! grace period, a pull, a slow probe, a hung runtime call — delays another
//! pod: the node only sends [`Order`]s and reads [`Report`]s.
//!
//! Every report is sent on the node's channel and then `wake` is called,
//! so the node loop handles it at once. Dropping the [`PodWorker`] (the
//! agent exiting) ends the thread after its current step (a start or a stop
//! under way is finished) and waits for it; the pod keeps running, for the
//! next agent process to adopt.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use bramble_api::objects::pod::Pod;
use bramble_api::objects::pod_status::PodStatus;

use super::records::Records;
use crate::pod::{ImageSource, PodDirs, PodError, PodInputs, PodOptions, RunningPod};
use crate::runtime::{ContainerHandle, Runtime};

/// What the node tells a pod's thread.
#[derive(Debug)]
pub enum Order {
    /// The ConfigMaps and Secrets changed: refresh the pod's volumes.
    Inputs(PodInputs),
    /// Stop the pod (its grace period) and end.
    Stop,
}

/// What a pod's thread tells the node; each names the pod.
#[derive(Debug)]
pub enum Report {
    /// The pod was set up and its first containers launched.
    Started { pod: String },
    /// It could not start; nothing of it is left. The thread has ended.
    StartFailed { pod: String, error: PodError },
    /// Its status changed.
    Status { pod: String, status: PodStatus },
    /// It was stopped (or stopping it failed); the thread has ended.
    Stopped {
        pod: String,
        result: Result<(), PodError>,
    },
}

/// A container of the pod as the node needs it between reports (usage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveContainer {
    pub name: String,
    pub handle: ContainerHandle,
}

/// What a pod's thread shares with the node: its live app containers.
pub type Live = Arc<Mutex<Vec<LiveContainer>>>;

/// Where reports go: the node's channel, then the node loop is woken.
#[derive(Clone)]
pub struct Outbox {
    pub tx: Sender<Report>,
    pub wake: Arc<dyn Fn() + Send + Sync>,
}

impl Outbox {
    fn send(&self, report: Report) {
        if self.tx.send(report).is_ok() {
            (self.wake)();
        }
    }
}

/// How a pod's thread begins.
pub enum Begin {
    /// Start `pod` from nothing.
    Start {
        pod: Box<Pod>,
        inputs: PodInputs,
        images: Arc<dyn ImageSource>,
        dirs: PodDirs,
        options: Box<PodOptions>,
        runtime: Arc<dyn Runtime>,
    },
    /// Carry on with a pod adopted from an earlier agent process.
    Adopted(Box<RunningPod>),
}

/// The node's handle on a pod's thread.
pub struct PodWorker {
    /// `None` once dropping.
    orders: Option<Sender<Order>>,
    live: Live,
    thread: Option<JoinHandle<()>>,
}

/// Everything the thread needs besides how it begins.
pub struct Context {
    pub id: String,
    pub records: Arc<Mutex<Records>>,
    pub outbox: Outbox,
    /// Longest pause between supervision rounds (exits are seen by polling).
    pub max_pause: Duration,
    /// `status.hostIP` (and a `hostNetwork` pod's `podIP`).
    pub host_ip: Option<std::net::Ipv4Addr>,
}

impl PodWorker {
    /// Starts the pod's thread.
    pub fn spawn(begin: Begin, ctx: Context) -> std::io::Result<PodWorker> {
        let (orders, rx) = std::sync::mpsc::channel();
        let live: Live = Arc::default();
        let shared = live.clone();
        let thread = std::thread::Builder::new()
            .name(format!("pod {}", ctx.id))
            .spawn(move || run(begin, ctx, rx, shared))?;
        Ok(PodWorker {
            orders: Some(orders),
            live,
            thread: Some(thread),
        })
    }

    /// Sends `order`; a thread that has ended ignores it.
    pub fn order(&self, order: Order) {
        if let Some(orders) = &self.orders {
            let _ = orders.send(order);
        }
    }

    /// The pod's live app containers, as its thread last saw them.
    pub fn live(&self) -> Vec<LiveContainer> {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for PodWorker {
    /// Tells the thread to end (no more orders) and waits for it.
    fn drop(&mut self) {
        self.orders.take();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("a pod's thread panicked");
        }
    }
}

fn run(begin: Begin, ctx: Context, orders: Receiver<Order>, live: Live) {
    let mut pod = match begin {
        Begin::Adopted(pod) => *pod,
        Begin::Start {
            pod,
            inputs,
            images,
            dirs,
            options,
            runtime,
        } => {
            let t = Instant::now();
            match RunningPod::start(runtime, &pod, &inputs, &*images, &dirs, &options) {
                Ok(p) => {
                    tracing::info!(pod = %ctx.id, elapsed_ms = t.elapsed().as_millis() as u64, "pod started");
                    ctx.outbox.send(Report::Started {
                        pod: ctx.id.clone(),
                    });
                    p
                }
                Err(error) => {
                    ctx.outbox.send(Report::StartFailed {
                        pod: ctx.id.clone(),
                        error,
                    });
                    return;
                }
            }
        }
    };
    let mut reported = String::new();
    loop {
        let now = Instant::now();
        if let Err(e) = pod.tick(now) {
            tracing::warn!(pod = %ctx.id, error = %e, "supervising the pod");
        }
        save_record(&ctx, &pod);
        share_live(&pod, &live);
        let mut status = pod.status(SystemTime::now());
        super::set_host_ip(&mut status, ctx.host_ip, pod.pod().spec.host_network);
        let json = serde_json::to_string(&status).unwrap_or_default();
        if json != reported {
            reported = json;
            ctx.outbox.send(Report::Status {
                pod: ctx.id.clone(),
                status,
            });
        }
        let wake = pod
            .next_wake()
            .map_or(now + ctx.max_pause, |t| t.min(now + ctx.max_pause));
        match orders.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(Order::Inputs(inputs)) => {
                pod.update_volumes(&inputs);
            }
            Ok(Order::Stop) => {
                let grace = pod.grace();
                let result = pod.stop(grace).map(|_| ());
                if result.is_ok() {
                    let removed = ctx
                        .records
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&ctx.id);
                    if let Err(e) = removed {
                        tracing::warn!(pod = %ctx.id, error = %e, "removing the pod record");
                    }
                }
                ctx.outbox.send(Report::Stopped {
                    pod: ctx.id.clone(),
                    result,
                });
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            // The node is gone (the agent exits): the pod keeps running.
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn save_record(ctx: &Context, pod: &RunningPod) {
    let saved = ctx
        .records
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .save(&pod.to_record());
    if let Err(e) = saved {
        tracing::warn!(pod = %ctx.id, error = %e, "saving the pod record");
    }
}

fn share_live(pod: &RunningPod, live: &Live) {
    let now: Vec<LiveContainer> = pod
        .containers()
        .iter()
        .filter(|c| !c.init && !c.is_deleted())
        .map(|c| LiveContainer {
            name: c.name.clone(),
            handle: c.handle.clone(),
        })
        .collect();
    let mut shared = live.lock().unwrap_or_else(|p| p.into_inner());
    if *shared != now {
        *shared = now;
    }
}
