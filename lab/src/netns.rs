//! Small helpers around named network namespaces (`ip netns`).
//!
//! Two ways in: a command run through `ip netns exec` (or `ip -n`), and a
//! thread that moves itself into the namespace with `setns(2)`. The second is
//! what the traffic tools use, so demo and tests need no child processes for
//! traffic: network namespaces are a per-thread attribute in Linux.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// Directory where `ip netns add` keeps the bind mounts that name namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Fails, naming the first of `programs` that is not installed. A name is
/// looked up in `PATH` as `execvp` does; a path (FRR's daemons live in
/// /usr/lib/frr, off `PATH`) must be an executable file.
///
/// Call it where a program is first needed: `ip netns exec` starts even
/// when its program is missing and only then fails, in a child whose
/// output nobody may read, so a missing tool would otherwise surface as a
/// timeout far from its cause.
///
/// # Errors
/// The first program missing, as "PROGRAM is not installed: run `make deps`".
pub fn require(programs: &[&str]) -> Result<()> {
    match programs.iter().find(|p| !installed(p)) {
        Some(missing) => bail!("{missing} is not installed: run `make deps`"),
        None => Ok(()),
    }
}

fn installed(program: &str) -> bool {
    if program.contains('/') {
        return executable(Path::new(program));
    }
    // execvp's default search path when PATH is unset.
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/bin:/usr/bin"));
    std::env::split_paths(&path).any(|dir| executable(&dir.join(program)))
}

fn executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `ip ARGS...` and returns its stdout; a failure carries the stderr.
pub fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run `ip` (is iproute2 installed?)")?;
    check_output("ip", args, out)
}

/// Runs `PROGRAM ARGS...` inside namespace `ns` through `ip netns exec` and
/// returns its full output, whatever its exit status. A program that is not
/// installed is an error before anything runs (see [`require`]).
pub fn exec_output(ns: &str, program: &str, args: &[&str]) -> Result<Output> {
    require(&[program])?;
    Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{program}` in namespace {ns}"))
}

/// Runs `PROGRAM ARGS...` inside namespace `ns` and returns its stdout; a
/// non-zero exit is an error carrying the stderr.
pub fn exec(ns: &str, program: &str, args: &[&str]) -> Result<String> {
    let out = exec_output(ns, program, args)?;
    let what = format!("{program} (in {ns})");
    check_output(&what, args, out)
}

fn check_output(what: &str, args: &[&str], out: Output) -> Result<String> {
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    bail!(
        "`{what} {}` failed ({}): {}",
        args.join(" "),
        out.status,
        stderr.trim()
    )
}

/// Whether a namespace named `ns` exists.
pub(crate) fn exists(ns: &str) -> bool {
    std::path::Path::new(NETNS_DIR).join(ns).exists()
}

/// Moves the calling thread into namespace `ns`.
///
/// Only the calling thread moves: call it at the start of a thread made for
/// the purpose (see [`run_in`]), never on a thread that must stay outside.
///
/// # Errors
/// The namespace does not exist, or `setns` fails (not root).
pub fn enter(ns: &str) -> Result<()> {
    let path = format!("{NETNS_DIR}/{ns}");
    let file = File::open(&path).with_context(|| format!("no network namespace {ns} ({path})"))?;
    // SAFETY: `file` is an open descriptor for the duration of the call;
    // setns only reads it and changes this thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(anyhow!(err).context(format!("setns into {ns}")));
    }
    Ok(())
}

/// Runs `f` on a fresh thread that has entered namespace `ns`, and returns
/// its result once it is done.
pub fn run_in<T, F>(ns: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let ns_owned = ns.to_owned();
    let handle = thread::Builder::new()
        .name(format!("netns-{ns}"))
        .spawn(move || {
            enter(&ns_owned)?;
            f()
        })
        .context("cannot spawn a thread")?;
    handle
        .join()
        .map_err(|_| anyhow!("thread in namespace {ns} panicked"))?
}

/// Sets sysctl `key` (dotted, e.g. `net.ipv4.ip_forward`) to `value` inside
/// namespace `ns`.
///
/// Writes `/proc/sys` from a thread inside the namespace: the kernel resolves
/// `/proc/sys/net` against the writing thread's namespace.
pub fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let value = value.to_owned();
    run_in(ns, move || {
        std::fs::write(&path, value.as_bytes()).with_context(|| format!("write {path}"))
    })
    .with_context(|| format!("sysctl {key} in {ns}"))
}

/// Starts `PROGRAM ARGS...` inside namespace `ns` with the given stdout and
/// stderr. `ip netns exec` replaces itself with the program, so the child's
/// PID is the program's PID. A program that is not installed is an error
/// before anything starts (see [`require`]).
pub fn spawn(
    ns: &str,
    program: &str,
    args: &[&str],
    stdout: Stdio,
    stderr: Stdio,
) -> Result<Child> {
    require(&[program])?;
    Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("cannot start `{program}` in namespace {ns}"))
}

/// Sends signal `sig` to process `pid`. A process already gone is not an
/// error.
pub fn signal(pid: u32, sig: libc::c_int) -> Result<()> {
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    if pid <= 0 {
        bail!("refusing to signal pid {pid}");
    }
    // SAFETY: kill has no memory effects; pid is a single positive PID, never
    // a process group or "every process".
    let rc = unsafe { libc::kill(pid, sig) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(anyhow!(err).context(format!("kill({pid}, {sig})")));
        }
    }
    Ok(())
}

/// Kills `child` with SIGKILL and reaps it.
pub fn kill_child(child: &mut Child) -> Result<()> {
    if child.try_wait()?.is_none() {
        signal(child.id(), libc::SIGKILL)?;
    }
    child.wait().context("wait for child")?;
    Ok(())
}

/// Stops `child`: SIGTERM, then SIGKILL if it is still there after `grace`.
/// Reaps it either way.
pub fn stop_child(child: &mut Child, grace: Duration) -> Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    signal(child.id(), libc::SIGTERM)?;
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
    kill_child(child)
}

/// PIDs of the processes whose network namespace is `ns`, except this one.
pub fn pids(ns: &str) -> Result<Vec<u32>> {
    let out = ip(&["netns", "pids", ns])?;
    let me = std::process::id();
    Ok(out
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .filter(|&p| p != me)
        .collect())
}

/// Whether this process runs as root (effective UID 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_finds_programs_on_path_and_by_path() {
        assert!(require(&[]).is_ok());
        assert!(require(&["sh", "/bin/sh"]).is_ok());
    }

    #[test]
    fn require_names_the_first_missing_program() {
        let err = require(&["sh", "xvrrp-no-such-tool", "/no/such/zebra"])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "xvrrp-no-such-tool is not installed: run `make deps`");
        let err = require(&["/no/such/zebra"]).unwrap_err().to_string();
        assert_eq!(err, "/no/such/zebra is not installed: run `make deps`");
    }

    #[test]
    fn require_rejects_what_cannot_be_executed() {
        // A directory and a plain file are on disk but cannot be started.
        assert!(require(&["/tmp"]).is_err());
        assert!(require(&["/etc/passwd"]).is_err());
    }
}
