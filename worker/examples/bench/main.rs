//! `make bench`: what users run, measured. Prints one table.
//!
//! 1. Pre-loads N raw events (default 2,000,000 over 10,000 videos, event
//!    times over ten minutes) into a fresh input topic.
//! 2. The limit: a bare rdkafka consumer reads the whole topic.
//! 3. A fresh worker (exactly-once, windows 1/5/10 min, `onUpdate`) runs from
//!    process start until the group committed the whole input and
//!    repartition topics: at the default 100 ms commit interval (the
//!    headline), at 1 s, with two consumer sessions (`--threads 2`), and at
//!    100 ms with 1,000,000 distinct ids. Each
//!    with its rate, its share of the bare consumer's, CPU per event, peak
//!    RSS and commits.
//! 4. Event -> output latency at half the 100 ms rate, with one worker and
//!    with two (see `latency.rs`); then with one worker at 25%, 10% and 5%
//!    of that rate, to show up to where the p99 stays within 250 ms.
//! 5. Group membership under both group protocols (see `membership.rs`).
//!
//! Flags: `--events N --ids N --distinct-events N --distinct-ids N --span-ms MS
//! --latency-seconds S --latency-warmup S` (default 20 and 10), `--no-membership`, `--only-membership`, `--latency-rate
//! R[,R...]` (only the latency part, at each rate), `--latency-workers N[,N...]`
//! (with it: how many workers, default 1,2).
//! Needs the test ground's Kafka (`VIDEOCOUNTER_KAFKA_BOOTSTRAP`);
//! `BENCH_WORKER_BIN` measures another build of the worker.

use videocounter_e2e::kafka;

mod latency;
mod load;
mod membership;
mod worker;

const PARTITIONS: i32 = 6;

struct Args {
    events: u64,
    ids: u64,
    distinct_events: u64,
    distinct_ids: u64,
    span_ms: i64,
    latency_seconds: u64,
    /// Seconds of load before the probes count.
    latency_warmup: u64,
    /// Only the latency part, at these rates (comma-separated on the command line).
    latency_rates: Vec<f64>,
    /// How many workers the latency part runs (one, then two, by default).
    latency_workers: Vec<usize>,
    membership: bool,
    only_membership: bool,
}

fn args() -> Args {
    let mut a = Args {
        events: 2_000_000,
        ids: 10_000,
        distinct_events: 1_000_000,
        distinct_ids: 1_000_000,
        span_ms: 600_000,
        latency_seconds: 20,
        latency_warmup: 10,
        latency_rates: Vec::new(),
        latency_workers: vec![1, 2],
        membership: true,
        only_membership: false,
    };
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    let mut take = |flag: &str| match argv.iter().position(|a| a == flag) {
        Some(i) => {
            argv.remove(i);
            true
        }
        None => false,
    };
    a.membership = !take("--no-membership");
    a.only_membership = take("--only-membership");
    for pair in argv.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--events" => a.events = value.parse().expect("--events N"),
            "--ids" => a.ids = value.parse().expect("--ids N"),
            "--distinct-events" => a.distinct_events = value.parse().expect("--distinct-events N"),
            "--distinct-ids" => a.distinct_ids = value.parse().expect("--distinct-ids N"),
            "--span-ms" => a.span_ms = value.parse().expect("--span-ms N"),
            "--latency-seconds" => a.latency_seconds = value.parse().expect("--latency-seconds S"),
            "--latency-warmup" => a.latency_warmup = value.parse().expect("--latency-warmup S"),
            "--latency-rate" => a.latency_rates = list(&value, "--latency-rate R[,R...]"),
            "--latency-workers" => a.latency_workers = list(&value, "--latency-workers N[,N...]"),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(a.events >= 1 && a.ids >= 1 && a.distinct_ids >= 1);
    a
}

fn list<T: std::str::FromStr>(value: &str, usage: &str) -> Vec<T> {
    value
        .split(',')
        .map(|v| v.trim().parse().ok().expect(usage))
        .collect()
}

fn print_latency(l: &latency::Latency, workers: usize) {
    let (via, via_p50, via_p99) = l.via_repartition;
    println!(
        "latency event -> output (1-minute topic, read_committed), {workers} worker(s), {:.0} events/s, 100ms commits, \
         after {} s of warm-up: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} probes; {via} through the repartition topic: p50 {via_p50:.0} ms, p99 {via_p99:.0} ms; \
         worker CPU {:.2} µs/event, RSS {} MiB)",
        l.rate, l.warmup_s, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.probes, l.cpu_us_per_event, l.rss_mib
    );
}

fn row(name: &str, run: &worker::Run, raw: f64) {
    println!(
        "| {name} | {:.0} | {:.0}% | {:.2} | {} | {:.0} | {:.0} |",
        run.rate(),
        100.0 * run.rate() / raw,
        run.cpu_us_per_event(),
        run.peak_rss_kib / 1024,
        run.commits,
        run.avg_commit_ms()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    println!("# videocounter worker benchmark");
    println!(
        "broker {}, {PARTITIONS} partitions, exactly-once, windows 1/5/10 min, onUpdate",
        kafka::bootstrap()
    );
    if a.only_membership {
        membership::run().await;
        return;
    }
    if !a.latency_rates.is_empty() {
        for &rate in &a.latency_rates {
            for &workers in &a.latency_workers {
                let l = latency::measure(
                    rate,
                    (a.latency_warmup, a.latency_seconds),
                    a.ids,
                    "100ms",
                    workers,
                )
                .await;
                print_latency(&l, workers);
            }
        }
        return;
    }
    let ids = a.ids;
    let (topic, produced) = load::preloaded(a.events, a.span_ms, |i| i % ids).await;
    println!(
        "pre-load: {} events over {} ids at {produced:.0} events/s",
        a.events, a.ids
    );
    let (raw, raw_cpu) = load::raw_consume(&topic, a.events);
    let default = worker::run_to_end(&topic, a.events, "100ms", &[]).await;
    let slow = worker::run_to_end(&topic, a.events, "1s", &[]).await;
    let two = worker::run_to_end(&topic, a.events, "100ms", &["--threads", "2"]).await;
    let distinct = a.distinct_ids;
    let (distinct_topic, _) = load::preloaded(a.distinct_events, a.span_ms, |i| (i * 7_919) % distinct).await;
    let (distinct_raw, _) = load::raw_consume(&distinct_topic, a.distinct_events);
    let many = worker::run_to_end(&distinct_topic, a.distinct_events, "100ms", &[]).await;
    kafka::delete_topics_of(&topic).await;
    kafka::delete_topics_of(&distinct_topic).await;

    println!();
    println!("| run | events/s | of bare consumer | CPU µs/event | peak RSS MiB | commits | avg commit ms |");
    println!("|---|---|---|---|---|---|---|");
    println!("| bare consumer of the input (the limit) | {raw:.0} | 100% | {raw_cpu:.2} | | | |");
    row("worker, commitInterval 100ms (default)", &default, raw);
    row("worker, commitInterval 1s", &slow, raw);
    row("worker, 100ms, --threads 2 (two consumer sessions)", &two, raw);
    row(
        &format!(
            "worker, 100ms, {} distinct ids (bare consumer {distinct_raw:.0}/s)",
            a.distinct_ids
        ),
        &many,
        distinct_raw,
    );

    let half = default.rate() / 2.0;
    println!();
    let l = latency::measure(half, (a.latency_warmup, a.latency_seconds), a.ids, "100ms", 1).await;
    print_latency(&l, 1);
    let two = latency::measure(half, (a.latency_warmup, a.latency_seconds), a.ids, "100ms", 2).await;
    print_latency(&two, 2);
    // Half the rate and below: the highest rate whose p99 stays within 250 ms here.
    let mut within_250ms: Option<f64> = (l.p99_ms <= 250.0).then_some(l.rate);
    for share in [0.25, 0.1, 0.05] {
        let lower = latency::measure(
            default.rate() * share,
            (a.latency_warmup, a.latency_seconds),
            a.ids,
            "100ms",
            1,
        )
        .await;
        print_latency(&lower, 1);
        if lower.p99_ms <= 250.0 && within_250ms.is_none() {
            within_250ms = Some(lower.rate);
        }
    }
    println!(
        "SUMMARY raw={raw:.0}/s worker_100ms={:.0}/s ({:.0}%) worker_1s={:.0}/s ({:.0}%) p99={:.0}ms p99_two_workers={:.0}ms \
         p99_within_250ms_up_to={:.0}/s peak_rss_{}_ids={}MiB",
        default.rate(),
        100.0 * default.rate() / raw,
        slow.rate(),
        100.0 * slow.rate() / raw,
        l.p99_ms,
        two.p99_ms,
        within_250ms.unwrap_or(0.0),
        a.distinct_ids,
        many.peak_rss_kib / 1024
    );
    if a.membership {
        println!();
        membership::run().await;
    }
}
