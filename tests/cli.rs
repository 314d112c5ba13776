//! The binary's edge: exit codes and what a user sees on stdout and stderr
//! for `check`, the client commands without a daemon, `run` with a port
//! that cannot be served, and `--help`.
//!
//! The `run` tests build their own network namespace (unique name, removed
//! by a guard on every exit path) and are skipped, with the reason printed,
//! when not root or without `ip netns` (failed instead under `CI=true`, by
//! the fixtures' `common::can_run`).

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
const XVRRP: &str = env!("CARGO_BIN_EXE_xvrrp");

/// How long a failing `run` may take to exit.
const RUN_EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// `xvrrp ARGS` with a clean environment for the options it reads.
fn xvrrp(args: &[&str]) -> Command {
    let mut cmd = Command::new(XVRRP);
    cmd.args(args)
        .env_remove("XVRRP_SOCKET")
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null());
    cmd
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Non-empty lines of `text`.
fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Asserts `out` exited with status 1 and printed exactly one line on
/// stderr, with no trace of a panic; returns that line.
fn one_line_failure(out: &Output, what: &str) -> String {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: {:?}\n{err}",
        out.status
    );
    assert_no_panic(&err);
    let l = lines(&err);
    assert_eq!(
        l.len(),
        1,
        "{what}: expected one line on stderr, got:\n{err}"
    );
    l[0].to_owned()
}

fn assert_no_panic(stderr: &str) {
    for sign in ["panicked", "backtrace", "RUST_BACKTRACE", "thread '"] {
        assert!(
            !stderr.contains(sign),
            "panic text ({sign:?}) on stderr:\n{stderr}"
        );
    }
}

/// A scratch directory, unique to the test and process, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("xvrrp-cli-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` in the directory; returns the file's path.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One IPv4 virtual router.
struct Router<'a> {
    name: &'a str,
    port: &'a str,
    vrid: u8,
    address: &'a str,
}

/// A configuration serving `ports`, with `routers`, its control socket in
/// `dir`: the shape of the lab gateway's configuration (tests/common).
fn config(dir: &Path, ports: &[&str], routers: &[Router<'_>]) -> String {
    let mut t = format!(
        "[global]\ncontrol_socket = {:?}\n\n[dataplane]\ncores = [0]\nidle = \"adaptive\"\n",
        dir.join("xvrrp.sock")
    );
    for p in ports {
        t.push_str(&format!("\n[[port]]\nname = {p:?}\n"));
    }
    for r in routers {
        t.push_str(&format!(
            "\n[[vrrp]]\nname = {:?}\nport = {:?}\nvrid = {}\npriority = 200\n\
             advert_interval = \"100ms\"\npreempt = true\naddresses = [{:?}]\n",
            r.name, r.port, r.vrid, r.address
        ));
    }
    t
}

/// The lab gateway's two ports and two routers.
fn gateway_config(dir: &Path) -> String {
    config(
        dir,
        &["lan0", "wan0"],
        &[
            Router {
                name: "lan-gw",
                port: "lan0",
                vrid: 1,
                address: "192.0.2.1/24",
            },
            Router {
                name: "wan-gw",
                port: "wan0",
                vrid: 2,
                address: "203.0.113.1/24",
            },
        ],
    )
}

// ----- check -------------------------------------------------------------------

#[test]
fn check_good_config_prints_the_plan() {
    let dir = TempDir::new("check-good");
    let cfg = dir.write("good.toml", &gateway_config(dir.path()));
    let out = output(&mut xvrrp(&["check", "-c", cfg.to_str().unwrap()]));
    let plan = stdout(&out);
    assert!(out.status.success(), "{:?}\n{}", out.status, stderr(&out));
    assert!(plan.contains("lan-gw"), "{plan}");
    assert!(plan.contains("vmac 00:00:5e:00:01:01"), "{plan}");
    assert!(plan.contains("vmac 00:00:5e:00:01:02"), "{plan}");
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn check_bad_config_reports_every_error_with_its_position() {
    let dir = TempDir::new("check-bad");
    let good = gateway_config(dir.path());
    // An unknown key in the first router and an out-of-range priority in
    // the second, each on a line of its own.
    let mut text = String::new();
    let mut routers_seen = 0;
    for line in good.lines() {
        if line == "priority = 200" {
            routers_seen += 1;
            if routers_seen == 2 {
                text.push_str("priority = 300\n");
                continue;
            }
            text.push_str("colour = \"red\"\n");
        }
        text.push_str(line);
        text.push('\n');
    }
    let line_of = |needle: &str| text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    let (colour_line, priority_line) = (line_of("colour"), line_of("priority = 300"));
    let cfg = dir.write("bad.toml", &text);
    let path = cfg.to_str().unwrap();

    let out = output(&mut xvrrp(&["check", "-c", path]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{:?}\n{err}", out.status);
    assert_no_panic(&err);
    assert!(
        stdout(&out).is_empty(),
        "a plan was printed:\n{}",
        stdout(&out)
    );
    let errors = lines(&err);
    assert_eq!(errors.len(), 2, "expected two errors:\n{err}");
    for (line, word) in [(colour_line, "colour"), (priority_line, "priority")] {
        let prefix = format!("{path}:{line}:");
        let e = errors
            .iter()
            .find(|e| e.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no error at {prefix}COL:\n{err}"));
        let col = e[prefix.len()..].split(':').next().unwrap();
        assert!(
            col.parse::<u32>().is_ok_and(|c| c >= 1),
            "no column after {prefix}: {e}"
        );
        assert!(
            e.contains(word),
            "error at line {line} does not name {word}: {e}"
        );
    }
}

#[test]
fn check_missing_file_is_one_clear_line() {
    let line = one_line_failure(
        &output(&mut xvrrp(&["check", "-c", "/nonexistent/xvrrp.toml"])),
        "check of a missing file",
    );
    assert!(line.contains("/nonexistent/xvrrp.toml"), "{line}");
}

// ----- client commands without a daemon --------------------------------------------

#[test]
fn status_without_daemon_names_the_socket_from_every_source() {
    let dir = TempDir::new("status");
    let sock = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();

    let flag = sock("flag.sock");
    let line = one_line_failure(
        &output(&mut xvrrp(&["-s", &flag, "status"])),
        "status -s before the subcommand",
    );
    assert!(line.contains(&flag), "{line}");

    let after = sock("after.sock");
    let line = one_line_failure(
        &output(&mut xvrrp(&["status", "-s", &after])),
        "status -s after the subcommand",
    );
    assert!(line.contains(&after), "{line}");

    let env = sock("env.sock");
    let out = output(xvrrp(&["status"]).env("XVRRP_SOCKET", &env));
    let line = one_line_failure(&out, "status with XVRRP_SOCKET");
    assert!(line.contains(&env), "{line}");

    // The command line wins over the environment.
    let out = output(xvrrp(&["status", "--socket", &flag]).env("XVRRP_SOCKET", &env));
    let line = one_line_failure(&out, "status with both");
    assert!(line.contains(&flag) && !line.contains(&env), "{line}");
}

// ----- help --------------------------------------------------------------------------

#[test]
fn help_exits_zero() {
    let out = output(&mut xvrrp(&["--help"]));
    assert!(out.status.success(), "{:?}", out.status);
    let text = stdout(&out);
    for cmd in ["run", "check", "status", "stats", "priority"] {
        assert!(text.contains(cmd), "--help does not list {cmd}:\n{text}");
    }
    let out = output(&mut xvrrp(&["run", "--help"]));
    assert!(out.status.success(), "{:?}", out.status);
    assert!(stdout(&out).contains("--config"), "{}", stdout(&out));
}

// ----- run with ports it cannot serve ----------------------------------------------------

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

/// A network namespace of its own, deleted (with its interfaces) on drop.
struct NetNs(String);

impl NetNs {
    /// A fresh namespace for `test`, or `None` (reason printed) when the
    /// machine cannot run namespace tests.
    fn new(test: &str) -> Option<NetNs> {
        if !common::can_run(test) {
            return None;
        }
        let name = format!("xvcli-{}-{test}", std::process::id());
        // A namespace left by a killed run of this process id is stale.
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        ip(&["netns", "add", &name]);
        Some(NetNs(name))
    }

    fn name(&self) -> &str {
        &self.0
    }

    /// A veth pair `a`–`b` inside the namespace, both up, without addresses.
    fn veth(&self, a: &str, b: &str) {
        ip(&[
            "-n", &self.0, "link", "add", a, "type", "veth", "peer", "name", b,
        ]);
        for dev in [a, b] {
            ip(&["-n", &self.0, "link", "set", dev, "up"]);
        }
    }

    fn add_addr(&self, dev: &str, cidr: &str) {
        ip(&["-n", &self.0, "addr", "add", cidr, "dev", dev]);
    }

    /// Whether an XDP program is attached to `dev` (any mode).
    fn xdp_attached(&self, dev: &str) -> bool {
        let out = ip(&["-n", &self.0, "-d", "link", "show", "dev", dev]);
        out.contains("prog/xdp")
            || out.split_whitespace().any(|w| {
                matches!(
                    w,
                    "xdp" | "xdpgeneric" | "xdpdrv" | "xdpoffload" | "xdpmulti"
                )
            })
    }

    /// Runs `xvrrp ARGS` inside the namespace.
    fn xvrrp(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0, XVRRP])
            .args(args)
            .env_remove("XVRRP_SOCKET")
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A daemon started by a test, killed by PID on drop if still running.
struct Daemon(Child);

impl Daemon {
    /// Waits up to `timeout` for the process to exit; panics if it does not.
    fn wait(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        while self.0.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "xvrrp did not exit within {timeout:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
        let mut out = Output {
            status: self.0.wait().unwrap(),
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        if let Some(mut s) = self.0.stdout.take() {
            std::io::Read::read_to_end(&mut s, &mut out.stdout).unwrap();
        }
        if let Some(mut s) = self.0.stderr.take() {
            std::io::Read::read_to_end(&mut s, &mut out.stderr).unwrap();
        }
        out
    }

    fn signal(&self, sig: i32) {
        let pid = libc::pid_t::try_from(self.0.id()).unwrap();
        // SAFETY: kill(2) on the PID of our own child, which has not been
        // reaped yet (so the PID cannot have been reused).
        unsafe { libc::kill(pid, sig) };
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `xvrrp run -c CFG` in `ns` and waits for it to exit.
fn run_to_exit(ns: &NetNs, cfg: &Path) -> Output {
    let child = ns
        .xvrrp(&["run", "-c", cfg.to_str().unwrap()])
        .spawn()
        .unwrap();
    Daemon(child).wait(RUN_EXIT_TIMEOUT)
}

/// Whether `line` names `ifname` as a word of its own.
fn names(line: &str, ifname: &str) -> bool {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .any(|w| w == ifname)
}

/// The namespace of the run tests: `cli-lan` (192.0.2.2/24) and its peer
/// `cli-bare` (no address).
fn run_netns(test: &str) -> Option<NetNs> {
    let ns = NetNs::new(test)?;
    ns.veth("cli-lan", "cli-bare");
    ns.add_addr("cli-lan", "192.0.2.2/24");
    Some(ns)
}

fn lan_router() -> Router<'static> {
    Router {
        name: "lan-gw",
        port: "cli-lan",
        vrid: 1,
        address: "192.0.2.1/24",
    }
}

#[test]
fn run_with_a_missing_interface_exits_1_and_attaches_nothing() {
    let Some(ns) = run_netns("missing") else {
        return;
    };
    let dir = TempDir::new("run-missing");
    // The good port comes first, so a start that attached port by port
    // would already have attached it when the missing one is looked up.
    let cfg = dir.write(
        "missing.toml",
        &config(
            dir.path(),
            &["cli-lan", "cli-missing"],
            &[
                lan_router(),
                Router {
                    name: "wan-gw",
                    port: "cli-missing",
                    vrid: 2,
                    address: "203.0.113.1/24",
                },
            ],
        ),
    );
    let line = one_line_failure(&run_to_exit(&ns, &cfg), "run with a missing interface");
    assert!(names(&line, "cli-missing"), "{line}");
    let links = ip(&["-n", ns.name(), "-d", "link", "show"]);
    assert!(!links.contains("prog/xdp"), "XDP left attached:\n{links}");
    for dev in ["cli-lan", "cli-bare"] {
        assert!(!ns.xdp_attached(dev), "XDP left on {dev}:\n{links}");
    }
    assert!(
        !dir.path().join("xvrrp.sock").exists(),
        "control socket left behind"
    );
}

#[test]
fn run_with_an_instance_on_a_port_without_ipv4_exits_1_and_attaches_nothing() {
    let Some(ns) = run_netns("noaddr") else {
        return;
    };
    let dir = TempDir::new("run-noaddr");
    let cfg = dir.write(
        "noaddr.toml",
        &config(
            dir.path(),
            &["cli-lan", "cli-bare"],
            &[
                lan_router(),
                Router {
                    name: "bare-gw",
                    port: "cli-bare",
                    vrid: 2,
                    address: "203.0.113.1/24",
                },
            ],
        ),
    );
    let line = one_line_failure(&run_to_exit(&ns, &cfg), "run with an address-less port");
    assert!(names(&line, "cli-bare"), "{line}");
    assert!(!names(&line, "cli-lan"), "the good port is blamed: {line}");
    for dev in ["cli-bare", "cli-lan"] {
        assert!(
            !ns.xdp_attached(dev),
            "XDP left on {dev}:\n{}",
            ip(&["-n", ns.name(), "-d", "link", "show", "dev", dev])
        );
    }
    assert!(
        !dir.path().join("xvrrp.sock").exists(),
        "control socket left behind"
    );
}

/// The positive control of the two tests above: the same namespace and a
/// servable configuration do get an XDP program, seen by the same check,
/// and SIGTERM detaches it.
#[test]
fn run_attaches_xdp_and_sigterm_detaches_it() {
    let Some(ns) = run_netns("attach") else {
        return;
    };
    let dir = TempDir::new("run-attach");
    let cfg = dir.write(
        "ok.toml",
        &config(dir.path(), &["cli-lan"], &[lan_router()]),
    );
    let sock = dir.path().join("xvrrp.sock");
    let daemon = Daemon(
        ns.xvrrp(&["run", "-c", cfg.to_str().unwrap()])
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + RUN_EXIT_TIMEOUT;
    while !(sock.exists() && ns.xdp_attached("cli-lan")) {
        if Instant::now() >= deadline {
            daemon.signal(libc::SIGTERM);
            let out = daemon.wait(RUN_EXIT_TIMEOUT);
            panic!("xvrrp did not come up:\n{}", stderr(&out));
        }
        thread::sleep(Duration::from_millis(50));
    }
    // The client finds the daemon through the socket the configuration names.
    let out = output(&mut xvrrp(&["-s", sock.to_str().unwrap(), "status"]));
    assert!(out.status.success(), "status: {}", stderr(&out));
    assert!(stdout(&out).contains("lan-gw"), "{}", stdout(&out));

    daemon.signal(libc::SIGTERM);
    let out = daemon.wait(RUN_EXIT_TIMEOUT);
    assert!(out.status.success(), "{:?}\n{}", out.status, stderr(&out));
    assert_no_panic(&stderr(&out));
    assert!(
        !ns.xdp_attached("cli-lan"),
        "XDP left attached after SIGTERM"
    );
    assert!(!sock.exists(), "control socket left behind");
}
