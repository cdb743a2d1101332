//! The chaos test's verdict: the truth read back from the input topic (each
//! record's intended meaning), compared with the final output counts and the
//! dead-letter topic.

use crate::common::{TestApp, Truth, final_counts, read_outputs};
use crate::input::{EXPECT_HEADER, Expect};
use rdkafka::Message;
use rdkafka::message::{Headers, OwnedMessage};
use std::collections::HashMap;
use std::time::Duration;
use videocounter_e2e::kafka::{self, Isolation};

#[derive(Debug, Default)]
pub struct Verdict {
    pub good_likes: u64,
    pub bad_records: usize,
    pub windows: usize,
    pub exact: usize,
    pub too_high: usize,
    pub too_low: usize,
    pub missing: usize,
    pub unexpected: usize,
    pub dead_once: usize,
    pub dead_repeated: usize,
    pub dead_missing: usize,
    pub good_dead_lettered: usize,
    pub wrong_reason: usize,
    pub first_problems: Vec<String>,
}

impl Verdict {
    pub fn is_exact(&self) -> bool {
        self.exact == self.windows
            && self.unexpected == 0
            && self.dead_once == self.bad_records
            && self.good_dead_lettered == 0
            && self.wrong_reason == 0
    }

    fn problem(&mut self, p: String) {
        if self.first_problems.len() < 25 {
            self.first_problems.push(p);
        }
    }
}

fn header<'a>(m: &'a OwnedMessage, key: &str) -> Option<&'a [u8]> {
    m.headers()?.iter().find(|h| h.key == key)?.value
}

fn header_str(m: &OwnedMessage, key: &str) -> String {
    header(m, key)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

pub fn check(app: &TestApp) -> Verdict {
    let mut v = Verdict::default();
    let mut truth = Truth::new();
    let mut expected: HashMap<(i32, i64), Expect> = HashMap::new();
    for m in kafka::read_to_end(&app.input, Isolation::ReadUncommitted, Duration::from_secs(300)) {
        let expect =
            Expect::from_header(header(&m, EXPECT_HEADER).expect("every chaos record has its header"));
        match &expect {
            Expect::Good { id, count, ts } if *count > 0 => {
                v.good_likes += count;
                for w in &app.windows {
                    let start = ts - ts.rem_euclid(w.size_ms);
                    *truth.entry((w.label.to_string(), id.clone(), start)).or_default() += count;
                }
            }
            Expect::Good { .. } => {}
            Expect::Bad { .. } => v.bad_records += 1,
        }
        expected.insert((m.partition(), m.offset()), expect);
    }

    let got = final_counts(&read_outputs(app));
    v.windows = truth.len();
    for (k, want) in &truth {
        match got.get(k) {
            Some(g) if g == want => v.exact += 1,
            Some(g) => {
                if g > want {
                    v.too_high += 1;
                } else {
                    v.too_low += 1;
                }
                v.problem(format!("window {k:?}: counted {g}, truth {want}"));
            }
            None => {
                v.missing += 1;
                v.problem(format!("window {k:?}: never written, truth {want}"));
            }
        }
    }
    for (k, g) in &got {
        if !truth.contains_key(k) {
            v.unexpected += 1;
            v.problem(format!("window {k:?}: counted {g}, truth has no such window"));
        }
    }

    let mut dead: HashMap<(i32, i64), (usize, String)> = HashMap::new();
    for m in kafka::read_to_end(
        &app.dead_letter_topic(),
        Isolation::ReadCommitted,
        Duration::from_secs(120),
    ) {
        let topic = header_str(&m, "videocounter.source.topic");
        if topic != app.input {
            v.problem(format!("dead letter from {topic}, not the input topic"));
            v.unexpected += 1;
            continue;
        }
        let partition = header_str(&m, "videocounter.source.partition")
            .parse()
            .unwrap_or(-1);
        let offset = header_str(&m, "videocounter.source.offset").parse().unwrap_or(-1);
        let entry = dead.entry((partition, offset)).or_default();
        entry.0 += 1;
        entry.1 = header_str(&m, "videocounter.error.kind");
    }
    for (at, expect) in &expected {
        match (expect, dead.get(at)) {
            (Expect::Bad { reason }, Some((n, kind))) => {
                if *n == 1 {
                    v.dead_once += 1;
                } else {
                    v.dead_repeated += 1;
                    v.problem(format!("input {at:?} ({reason}) dead-lettered {n} times"));
                }
                if kind != reason {
                    v.wrong_reason += 1;
                    v.problem(format!("input {at:?} dead-lettered as {kind}, expected {reason}"));
                }
            }
            (Expect::Bad { reason }, None) => {
                v.dead_missing += 1;
                v.problem(format!("input {at:?} ({reason}) is not in the dead-letter topic"));
            }
            (Expect::Good { id, .. }, Some((_, kind))) => {
                v.good_dead_lettered += 1;
                v.problem(format!(
                    "good input {at:?} (video {id:?}) dead-lettered as {kind}"
                ));
            }
            (Expect::Good { .. }, None) => {}
        }
    }
    v
}
