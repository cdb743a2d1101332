//! Watchers that run beside a scenario and report what happened:
//! - `FleetWatch`: every change of the worker pods (a Kubernetes watch), so
//!   the most pods ever unavailable at once is known exactly, not sampled;
//!   and the workers' rebalance counters, scraped from each pod instance.
//! - `ProgressWatch`: the consumer group's committed offsets of the input
//!   and repartition partitions, so the longest time any partition with work
//!   waiting made no progress is known.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use videocounter_e2e::cli::http;
use videocounter_e2e::kafka;

#[derive(Debug, Clone)]
struct PodState {
    uid: String,
    available: bool,
    addr: Option<SocketAddr>,
}

/// Rebalance callbacks one worker process reported (`videocounter_rebalances_total`).
#[derive(Debug, Clone, Copy, Default)]
struct Callbacks {
    assign: u64,
    revoke: u64,
    lost: u64,
}

#[derive(Debug, Default)]
struct FleetState {
    pods: BTreeMap<String, PodState>,
    max_unavailable: usize,
    worst_moment: Vec<String>,
    /// By pod uid: one worker process each.
    callbacks: HashMap<String, Callbacks>,
}

/// What a `FleetWatch` saw.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The most worker pods missing, unready or terminating at once.
    pub max_unavailable: usize,
    /// Which pods were unavailable at that moment.
    pub worst_moment: Vec<String>,
    /// Worker processes seen (one per pod instance).
    pub processes: usize,
    /// Assignments beyond each process's first one, and revocations and
    /// losses: partitions moving between running workers.
    pub rebalances: Rebalances,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Rebalances {
    pub extra_assigns: u64,
    pub revokes: u64,
    pub losses: u64,
}

pub struct FleetWatch {
    state: Arc<Mutex<FleetState>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl FleetWatch {
    /// Watches the pods of `selector` in `namespace`, of which `replicas`
    /// should be available.
    pub fn start(namespace: &str, selector: &str, replicas: usize) -> Self {
        let state = Arc::new(Mutex::new(FleetState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ns, sel) = (namespace.to_string(), selector.to_string());
        let (st, sp) = (state.clone(), stop.clone());
        let (synced_tx, synced_rx) = std::sync::mpsc::channel();
        let watching = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let pods: Api<Pod> = Api::namespaced(videocounter_e2e::kube::client().await, &ns);
                let mut events = watcher(pods, watcher::Config::default().labels(&sel)).boxed();
                let mut synced = false;
                while !sp.load(Ordering::Relaxed) {
                    let Ok(Some(event)) =
                        tokio::time::timeout(Duration::from_millis(200), events.next()).await
                    else {
                        continue;
                    };
                    let mut s = st.lock().unwrap();
                    match event {
                        Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => apply(&mut s.pods, &p),
                        Ok(watcher::Event::Delete(p)) => {
                            let name = p.metadata.name.clone().unwrap();
                            if s.pods
                                .get(&name)
                                .is_some_and(|old| Some(&old.uid) == p.metadata.uid.as_ref())
                            {
                                s.pods.remove(&name);
                            }
                        }
                        Ok(watcher::Event::Init) => {
                            // A (re)list follows: judge only once it is complete.
                            synced = false;
                            s.pods.clear();
                        }
                        Ok(watcher::Event::InitDone) => {
                            let _ = synced_tx.send(());
                            synced = true;
                        }
                        Err(e) => eprintln!("pod watch: {e}"),
                    }
                    if !synced {
                        continue;
                    }
                    let available = s.pods.values().filter(|p| p.available).count();
                    let unavailable = replicas.saturating_sub(available);
                    if unavailable > s.max_unavailable {
                        s.max_unavailable = unavailable;
                        s.worst_moment = s
                            .pods
                            .iter()
                            .filter(|(_, p)| !p.available)
                            .map(|(n, _)| n.clone())
                            .collect();
                    }
                }
            });
        });
        synced_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the pod watch listed the pods");
        let (st, sp) = (state.clone(), stop.clone());
        let scraping = std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                let targets: Vec<(String, SocketAddr)> = st
                    .lock()
                    .unwrap()
                    .pods
                    .values()
                    .filter_map(|p| Some((p.uid.clone(), p.addr?)))
                    .collect();
                for (uid, addr) in targets {
                    if let Some((200, text)) = http(addr, "GET", "/metrics", "") {
                        let seen = rebalance_callbacks(&text);
                        let mut s = st.lock().unwrap();
                        let c = s.callbacks.entry(uid).or_default();
                        c.assign = c.assign.max(seen.assign);
                        c.revoke = c.revoke.max(seen.revoke);
                        c.lost = c.lost.max(seen.lost);
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        Self {
            state,
            stop,
            threads: vec![watching, scraping],
        }
    }

    pub fn stop(self) -> Fleet {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("a watcher thread panicked");
        }
        let s = self.state.lock().unwrap();
        let mut r = Rebalances::default();
        for c in s.callbacks.values() {
            r.extra_assigns += c.assign.saturating_sub(1);
            r.revokes += c.revoke;
            r.losses += c.lost;
        }
        Fleet {
            max_unavailable: s.max_unavailable,
            worst_moment: s.worst_moment.clone(),
            processes: s.callbacks.len(),
            rebalances: r,
        }
    }
}

fn apply(pods: &mut BTreeMap<String, PodState>, p: &Pod) {
    let status = p.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let addr = status
        .and_then(|s| s.pod_ip.as_ref())
        .and_then(|ip| format!("{ip}:8080").parse().ok());
    pods.insert(
        p.metadata.name.clone().unwrap(),
        PodState {
            uid: p.metadata.uid.clone().unwrap(),
            available: ready && p.metadata.deletion_timestamp.is_none(),
            addr,
        },
    );
}

fn rebalance_callbacks(metrics: &str) -> Callbacks {
    let mut c = Callbacks::default();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("videocounter_rebalances_total{"))
    {
        let value = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        if line.contains("kind=\"assign\"") {
            c.assign = value;
        } else if line.contains("kind=\"revoke\"") {
            c.revoke = value;
        } else if line.contains("kind=\"lost\"") {
            c.lost = value;
        }
    }
    c
}

/// The longest time a partition with records waiting made no progress.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub longest_stall: Duration,
    pub partition: String,
    /// Committed offsets read (partitions × rounds), and the last error reading them.
    pub samples: u64,
    pub last_error: Option<String>,
    /// The longest time between two rounds of reads: the stall's precision.
    pub slowest_round: Duration,
}

pub struct ProgressWatch {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Progress>,
}

impl ProgressWatch {
    /// Watches the committed offsets of consumer group `group` on `topics`.
    pub fn start(group: &str, topics: &[String]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (group, topics, sp) = (group.to_string(), topics.to_vec(), stop.clone());
        let handle = std::thread::spawn(move || {
            // read_uncommitted: else librdkafka asks for stable offsets and
            // waits while the group's transactions (every 100 ms) are open,
            // which would make this watch itself see seconds-long gaps.
            let committed: BaseConsumer = kafka::client_config()
                .set("group.id", &group)
                .set("enable.auto.commit", "false")
                .set("isolation.level", "read_uncommitted")
                .create()
                .expect("consumer");
            let plain: BaseConsumer = kafka::client_config().create().expect("consumer");
            // Per partition: last committed offset and since when it has waited.
            let mut last: HashMap<String, (i64, Instant)> = HashMap::new();
            let mut worst = Progress::default();
            let mut previous: Option<Instant> = None;
            while !sp.load(Ordering::Relaxed) {
                let now = Instant::now();
                if let Some(p) = previous {
                    worst.slowest_round = worst.slowest_round.max(now - p);
                }
                previous = Some(now);
                for topic in &topics {
                    let md = match plain.fetch_metadata(Some(topic), Duration::from_secs(5)) {
                        Ok(md) => md,
                        Err(e) => {
                            worst.last_error = Some(format!("metadata of {topic}: {e}"));
                            continue;
                        }
                    };
                    let parts: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
                    let mut tpl = TopicPartitionList::new();
                    for p in &parts {
                        tpl.add_partition(topic, *p);
                    }
                    let offsets = match committed.committed_offsets(tpl, Duration::from_secs(5)) {
                        Ok(o) => o,
                        Err(e) => {
                            worst.last_error = Some(format!("committed offsets of {topic}: {e}"));
                            continue;
                        }
                    };
                    for p in parts {
                        let high = match plain.fetch_watermarks(topic, p, Duration::from_secs(5)) {
                            Ok((_, high)) => high,
                            Err(e) => {
                                worst.last_error = Some(format!("watermarks of {topic}[{p}]: {e}"));
                                continue;
                            }
                        };
                        worst.samples += 1;
                        let at = match offsets.find_partition(topic, p).map(|e| e.offset()) {
                            Some(Offset::Offset(o)) => o,
                            _ => 0,
                        };
                        let key = format!("{topic}[{p}]");
                        let entry = last.entry(key.clone()).or_insert((at, now));
                        if at != entry.0 || at >= high {
                            // Progress, or nothing to do: not a stall.
                            *entry = (at, now);
                        } else {
                            let stalled = now - entry.1;
                            if stalled > worst.longest_stall {
                                worst.longest_stall = stalled;
                                worst.partition = key;
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            worst
        });
        Self { stop, handle }
    }

    pub fn stop(self) -> Progress {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the progress watch panicked")
    }
}
