//! `make local` (scripts/local.sh) against the test ground's Kafka, with the
//! built binaries, its own ports, folder, consumer group and topics: Ctrl-C
//! (SIGINT to its process group, as a terminal sends it) stops everything
//! and says so with exit status 0; a process dying by itself is named, with
//! its status and log, and the script fails.

mod common;

use common::{GATEWAY, free_port};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use videocounter_e2e::unique_name;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/local.sh");

struct Local {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    dir: tempfile::TempDir,
}

impl Local {
    /// Starts the script and waits for its banner (workers and gateway up).
    fn start() -> Self {
        Self::start_until("Dashboard")
    }

    /// Starts the script and waits for a line containing `needle`.
    fn start_until(needle: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = Path::new(GATEWAY).parent().unwrap();
        assert!(
            bin.join("videocounter-worker").exists(),
            "build the worker first (`cargo build --release --workspace --bins`; make test does)"
        );
        let app = unique_name("local-sh");
        let worker_port = free_port();
        let mut command = Command::new("bash");
        command
            .arg(SCRIPT)
            .env("LOCAL_BIN", bin)
            .env("LOCAL_DIR", dir.path())
            .env("LOCAL_WORKERS", "1")
            .env("LOCAL_APP_ID", &app)
            .env("LOCAL_TOPIC_PREFIX", format!("{app}-"))
            .env("LOCAL_VIDEOS", format!("{app}-v:60"))
            .env("WORKER_BASE_PORT", worker_port.to_string())
            .env("GATEWAY_PORT", free_port().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // A terminal's shell starts the script with SIGINT at its default; a
        // test run started in the background (`make test &`) hands it down
        // ignored, and bash cannot trap a signal ignored on entry.
        // SAFETY: signal(2) is async-signal-safe, as pre_exec requires.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = command.spawn().expect("running scripts/local.sh");
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut local = Self {
            child,
            lines,
            seen: Vec::new(),
            dir,
        };
        local.read_until(needle, Duration::from_secs(240));
        local
    }

    /// Reads output lines until one contains `needle`; fails with all output on timeout.
    fn read_until(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {timeout:?}; output:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The pid the script printed for `what` ("worker local-0", "gateway").
    fn pid_of(&self, what: &str) -> i32 {
        let line = self
            .seen
            .iter()
            .find(|l| l.contains(&format!("{what}: pid ")))
            .unwrap_or_else(|| panic!("no pid for {what} in:\n{}", self.seen.join("\n")));
        let after = line.split(": pid ").nth(1).unwrap();
        after
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Waits for the script to exit, collecting the rest of its output.
    fn finish(&mut self, timeout: Duration) -> (Option<i32>, String) {
        let Some(status) = self.exit_within(timeout) else {
            self.drain();
            panic!(
                "scripts/local.sh did not exit within {timeout:?}; output:\n{}\n{}",
                self.seen.join("\n"),
                self.what_is_left()
            );
        };
        // The reader threads end with the pipes.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (status.code(), without_colors(&self.seen.join("\n")))
    }

    /// The script's exit status, if it exits within `timeout`.
    fn exit_within(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().ok().flatten() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Moves the lines already read into `seen` (a timeout must show all of them).
    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
    }

    /// For a hang: the processes still running under the script's folder or
    /// process group, and the tail of each log it wrote.
    fn what_is_left(&self) -> String {
        let ps = Command::new("ps")
            .args(["-eo", "pid,pgid,stat,etime,args"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let group = self.child.id().to_string();
        let folder = self.dir.path().display().to_string();
        let mut out = String::from("processes left:\n");
        for line in ps.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(1) == Some(&group.as_str()) || line.contains(&folder) {
                out.push_str(line);
                out.push('\n');
            }
        }
        for log in ["worker-0.log", "gateway.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(log)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out.push_str(&format!("last lines of {log}:\n"));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            // The script stops its processes within 30 s of SIGTERM; a hung one is killed.
            if self.exit_within(Duration::from_secs(40)).is_none() {
                let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
                let _ = self.child.wait();
            }
        }
    }
}

/// The text without the script's terminal colour codes (`ESC [ ... m`).
fn without_colors(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn alive(pid: i32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn signal(target: &str, sig: &str) {
    let status = Command::new("kill").args([sig, "--", target]).status().unwrap();
    assert!(status.success(), "kill {sig} {target}");
}

#[test]
fn ctrl_c_stops_everything_and_says_so() {
    let mut local = Local::start();
    let worker = local.pid_of("worker local-0");
    let gateway = local.pid_of("gateway");
    assert!(alive(worker) && alive(gateway));
    // What a terminal does on Ctrl-C: SIGINT to the whole foreground process group.
    signal(&format!("-{}", local.child.id()), "-INT");
    let (code, output) = local.finish(Duration::from_secs(90));
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("[local] stopped"), "{output}");
    assert!(!output.contains("exited"), "{output}");
    assert!(!alive(worker) && !alive(gateway), "{output}");
    assert!(!output.contains("did not stop"), "{output}");
}

#[test]
fn a_worker_that_dies_is_named_and_fails_the_script() {
    let mut local = Local::start();
    let worker = local.pid_of("worker local-0");
    signal(&worker.to_string(), "-KILL");
    assert_named_and_failed(&mut local, worker);
}

/// A worker dead before the script starts watching (it was still starting the
/// gateway): the script names it too, instead of waiting on the others.
#[test]
fn a_worker_that_dies_during_startup_is_named_and_fails_the_script() {
    let mut local = Local::start_until("gateway: pid ");
    let worker = local.pid_of("worker local-0");
    signal(&worker.to_string(), "-KILL");
    assert_named_and_failed(&mut local, worker);
}

fn assert_named_and_failed(local: &mut Local, worker: i32) {
    let (code, output) = local.finish(Duration::from_secs(90));
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains(&format!(
            "worker local-0 (pid {worker}) was killed by signal 9; the last lines of"
        )),
        "{output}"
    );
    assert!(!output.contains("[local] stopped"), "{output}");
}
