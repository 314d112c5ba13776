//! The operator's notify script (`notify = "/path"` in `[global]`), run
//! with `INSTANCE STATE PRIORITY` on each state change.
//!
//! The control thread never waits on it: it hands each change to a bounded
//! queue ([`QUEUE`] entries, `try_send`, no blocking) and one notify thread
//! runs the scripts one after another, in the order of the changes. So the
//! script of a later change never starts before the earlier one's has
//! finished, for the same instance or any other. A script that runs longer
//! than [`SCRIPT_TIMEOUT`] is killed; a non-zero exit status is logged;
//! changes that find the queue full are counted, logged and not run.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use std::os::unix::process::CommandExt;

use crossbeam::channel::{self, Receiver, Sender, TrySendError};
use xvrrp_control::vrrp::State;

/// State changes waiting for their script, at most.
pub(super) const QUEUE: usize = 256;
/// How long a script may run before it is killed.
pub(super) const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest pause between two checks on a running script.
const MAX_POLL: Duration = Duration::from_millis(20);

/// One state change to tell the script about.
#[derive(Debug)]
struct Job {
    /// The script configured when the change happened.
    script: PathBuf,
    instance: String,
    state: State,
    priority: u8,
}

/// What the notify thread counts (read by the metrics server).
#[derive(Debug, Default)]
pub(super) struct NotifyCounters {
    /// Changes that found the queue full and were not run.
    pub(super) overflows: AtomicU64,
    /// Scripts that exited with status 0.
    pub(super) succeeded: AtomicU64,
    /// Scripts that failed to start, exited non-zero, died of a signal or
    /// were killed for running too long.
    pub(super) failed: AtomicU64,
}

/// The control thread's end of the notify queue.
#[derive(Debug)]
pub(super) struct Notifier {
    queue: Sender<Job>,
    counters: Arc<NotifyCounters>,
}

impl Notifier {
    /// Starts the notify thread (idle until a change is queued).
    ///
    /// # Errors
    /// The thread cannot be spawned.
    pub(super) fn start() -> std::io::Result<Self> {
        let counters = Arc::new(NotifyCounters::default());
        let (queue, rx) = channel::bounded(QUEUE);
        let c = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("xvrrp-notify".into())
            .spawn(move || run_queue(&rx, &c))?;
        Ok(Self { queue, counters })
    }

    /// The counters, for the metrics server.
    pub(super) fn counters(&self) -> Arc<NotifyCounters> {
        Arc::clone(&self.counters)
    }

    /// Queues a run of `script` (the configured one, if any) for `instance`
    /// entering `state` at `priority`; never blocks.
    pub(super) fn notify(&self, script: Option<&Path>, instance: &str, state: State, priority: u8) {
        let Some(script) = script else {
            return;
        };
        let job = Job {
            script: script.to_owned(),
            instance: instance.to_owned(),
            state,
            priority,
        };
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => {
                let n = self.counters.overflows.fetch_add(1, Ordering::Relaxed) + 1;
                // The first overflow and then every power of two: a storm
                // of changes cannot flood the journal.
                if n.is_power_of_two() {
                    tracing::warn!(
                        instance = %job.instance,
                        state = %job.state,
                        overflows = n,
                        "notify queue full ({QUEUE} changes waiting): the script is not run for this change"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(instance, "notify thread is gone: the script is not run");
            }
        }
    }
}

/// The notify thread: runs each queued change's script to its end (or
/// its timeout), in order, until the daemon drops the queue.
fn run_queue(rx: &Receiver<Job>, counters: &NotifyCounters) {
    for job in rx {
        let ok = run_one(&job, SCRIPT_TIMEOUT);
        let counter = if ok {
            &counters.succeeded
        } else {
            &counters.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the script for one change, killing it after `timeout`; whether it
/// exited with status 0.
/// Tries to start a script that is busy (ETXTBSY) this many times more.
const BUSY_RETRIES: u32 = 5;
/// The pause between those tries.
const BUSY_PAUSE: Duration = Duration::from_millis(20);

fn run_one(job: &Job, timeout: Duration) -> bool {
    let (script, instance) = (job.script.as_path(), job.instance.as_str());
    let spawn = || {
        Command::new(script)
            .arg(instance)
            .arg(job.state.to_string())
            .arg(job.priority.to_string())
            .stdin(Stdio::null())
            // A group of its own, so that a timeout kills what it started too.
            .process_group(0)
            .spawn()
    };
    // A script still open for writing somewhere (installed a moment ago,
    // or its descriptor inherited by a process being forked) cannot be
    // executed yet (ETXTBSY): that passes within milliseconds.
    let mut spawned = spawn();
    for _ in 0..BUSY_RETRIES {
        match &spawned {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(BUSY_PAUSE);
                spawned = spawn();
            }
            _ => break,
        }
    }
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            tracing::warn!(instance, script = %script.display(), error = %e, "notify script failed to start");
            return false;
        }
    };
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let status: std::io::Result<ExitStatus> = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                // Kill its process group and reap it: it is ours, started
                // above in a group of its own, and not reaped yet, so its
                // pid (the group's id) cannot have been reused.
                if let Ok(pgid) = i32::try_from(child.id()) {
                    // SAFETY: kill(2) has no memory-safety preconditions.
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                }
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(
                    instance,
                    script = %script.display(),
                    "notify script still running after {} ms: killed",
                    timeout.as_millis()
                );
                return false;
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_POLL);
            }
            Err(e) => break Err(e),
        }
    };
    match status {
        Ok(s) if s.success() => {
            tracing::debug!(instance, state = %job.state, "notify script done");
            true
        }
        Ok(s) => {
            match s.code() {
                Some(code) => tracing::warn!(
                    instance,
                    script = %script.display(),
                    "notify script exited with status {code}"
                ),
                None => tracing::warn!(
                    instance,
                    script = %script.display(),
                    "notify script killed by a signal ({s})"
                ),
            }
            false
        }
        Err(e) => {
            tracing::warn!(instance, script = %script.display(), error = %e, "notify script: cannot wait for it");
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A script with `body` in a fresh directory of its own.
    fn script(name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("xvrrp-notify-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn job(script: PathBuf) -> Job {
        Job {
            script,
            instance: "lan-gw".into(),
            state: State::Master,
            priority: 200,
        }
    }

    #[test]
    fn exit_status_decides_success() {
        let ok = script("ok", "[ \"$1 $2 $3\" = \"lan-gw master 200\" ]");
        assert!(run_one(&job(ok.clone()), SCRIPT_TIMEOUT));
        let failing = script("failing", "exit 3");
        assert!(!run_one(&job(failing.clone()), SCRIPT_TIMEOUT));
        assert!(!run_one(
            &job(PathBuf::from("/nonexistent/notify")),
            SCRIPT_TIMEOUT
        ));
        for p in [ok, failing] {
            let _ = std::fs::remove_dir_all(p.parent().unwrap());
        }
    }

    #[test]
    fn a_script_that_runs_too_long_is_killed() {
        // The script's own child is killed with it.
        let slow = script(
            "slow",
            "sleep 30 &\necho $! > \"$(dirname \"$0\")/child\"\nwait",
        );
        let start = Instant::now();
        assert!(!run_one(&job(slow.clone()), Duration::from_millis(300)));
        assert!(start.elapsed() < Duration::from_secs(10));
        let child = std::fs::read_to_string(slow.with_file_name("child")).unwrap();
        let proc = PathBuf::from(format!("/proc/{}", child.trim()));
        // Reaped by init once killed: gone, or a zombie for a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while proc.exists()
            && !std::fs::read_to_string(proc.join("stat")).is_ok_and(|s| s.contains(") Z "))
        {
            assert!(Instant::now() < deadline, "the script's child still runs");
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(slow.parent().unwrap());
    }
}
