//! The binary's edge: exit codes and what a user sees on stdout and stderr
//! for `check`, the client commands without a daemon, `run` with a port
//! that cannot be served, `--help` of every command, `--json` of every
//! command against a running daemon, `completions`, and `stats --watch`
//! under a flow.
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
fn check_json_prints_the_plan_as_json() {
    let dir = TempDir::new("check-json");
    let cfg = dir.write("good.toml", &gateway_config(dir.path()));
    let out = output(&mut xvrrp(&[
        "check",
        "-c",
        cfg.to_str().unwrap(),
        "--json",
    ]));
    assert!(out.status.success(), "{:?}\n{}", out.status, stderr(&out));
    let plan = parse_json(&stdout(&out), "check --json");
    let vmacs: Vec<&str> = plan["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["vmac"].as_str())
        .collect();
    assert_eq!(vmacs, ["00:00:5e:00:01:01", "00:00:5e:00:01:02"], "{plan}");
    assert_eq!(
        plan["instances"][0]["advert_interval_us"], 100_000,
        "{plan}"
    );
    assert_eq!(
        plan["control_socket"],
        dir.path().join("xvrrp.sock").to_str().unwrap(),
        "{plan}"
    );
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

/// Every client command, with `--json` and without (`stats --watch` too):
/// without a daemon, one line on stderr naming the socket, exit 1.
#[test]
fn every_client_command_without_daemon_is_one_line() {
    let dir = TempDir::new("nodaemon");
    let sock = dir.path().join("none.sock");
    let sock = sock.to_str().unwrap();
    for cmd in CLIENT_COMMANDS {
        for json in [false, true] {
            let mut args = vec!["-s", sock];
            args.extend_from_slice(cmd);
            if json {
                args.push("--json");
            }
            let what = args[2..].join(" ");
            let out = output(&mut xvrrp(&args));
            let line = one_line_failure(&out, &what);
            assert!(line.contains(sock), "{what}: {line}");
            assert!(stdout(&out).is_empty(), "{what}: {}", stdout(&out));
        }
    }
}

/// The client commands and their arguments, for the tests above and below.
const CLIENT_COMMANDS: [&[&str]; 10] = [
    &["status"],
    &["events"],
    &["drain", "lan-gw"],
    &["resume", "lan-gw"],
    &["reload"],
    &["stats"],
    &["stats", "--watch", "--interval", "0.2"],
    &["routes"],
    &["neighbors"],
    &["priority", "lan-gw", "150"],
];

/// The whole of `text` as one JSON value; fails the test naming `what`.
fn parse_json(text: &str, what: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{text}"))
}

// ----- help and completions -------------------------------------------------------------

/// The subcommands `xvrrp PATH --help` lists under "Commands:".
fn subcommands(path: &[&str]) -> Vec<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let out = output(&mut xvrrp(&args));
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{args:?}: {:?}\n{}",
        out.status,
        stderr(&out)
    );
    assert!(text.contains("Usage: xvrrp"), "{args:?}:\n{text}");
    // The first line says what the command does.
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.split_whitespace().count() >= 3),
        "{args:?}: no description:\n{text}"
    );
    text.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// `--help` of every command and subcommand, found by walking the help
/// itself: exit 0, a usage line and a description.
#[test]
fn every_command_has_help() {
    let top = subcommands(&[]);
    for cmd in [
        "run",
        "check",
        "status",
        "stats",
        "routes",
        "neighbors",
        "priority",
        "lab",
        "completions",
    ] {
        assert!(top.iter().any(|c| c == cmd), "--help does not list {cmd}");
    }
    let mut seen = 0;
    let mut todo: Vec<Vec<String>> = top.into_iter().map(|c| vec![c]).collect();
    while let Some(path) = todo.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        for sub in subcommands(&args) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
        seen += 1;
    }
    // The top level's commands and at least lab's and bench's.
    assert!(seen >= 15, "only {seen} commands found");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = output(&mut xvrrp(&["completions", shell]));
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        // fish spells options `-l watch`.
        for word in ["status", "stats", "watch", "json", "completions"] {
            assert!(script.contains(word), "{shell}: no {word}:\n{script}");
        }
    }
    // bash parses the bash one.
    let script = stdout(&output(&mut xvrrp(&["completions", "bash"])));
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut bash.stdin.take().unwrap(), script.as_bytes()).unwrap();
    let out = bash.wait_with_output().unwrap();
    assert!(out.status.success(), "bash -n: {}", stderr(&out));
    // An unknown shell is one line and exit 2 (clap's usage error).
    let out = output(&mut xvrrp(&["completions", "tcsh"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_no_panic(&stderr(&out));
}

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

/// A process started by a test (a daemon, or a client that runs until
/// stopped), killed by PID on drop if still running.
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

/// Starts `xvrrp run -c CFG` in `ns` and waits for its control socket
/// `sock` and its XDP program on `cli-lan`; panics with its log otherwise.
fn start_daemon(ns: &NetNs, cfg: &Path, sock: &Path) -> Daemon {
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
    daemon
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
    let daemon = start_daemon(&ns, &cfg, &sock);
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

// ----- --json and stats --watch against a running daemon ----------------------------------

/// `xvrrp -s SOCK ARGS` started with stdout and stderr piped.
fn spawn_client(sock: &Path, args: &[&str]) -> Daemon {
    Daemon(
        xvrrp(&[&["-s", sock.to_str().unwrap()], args].concat())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Every client command's `--json` output is one JSON value (the `--watch`
/// one a JSON line per interval, ended by Ctrl-C with exit 0), and a watch
/// whose daemon goes away ends with one line and exit 1.
#[test]
fn json_of_every_command_parses_and_watch_ends_with_its_daemon() {
    let Some(ns) = run_netns("json") else {
        return;
    };
    let dir = TempDir::new("json");
    let cfg = dir.write(
        "ok.toml",
        &config(dir.path(), &["cli-lan"], &[lan_router()]),
    );
    let sock = dir.path().join("xvrrp.sock");
    let daemon = start_daemon(&ns, &cfg, &sock);
    // The streams (`stats --watch`, `events`) are tested on their own.
    let one_shot = CLIENT_COMMANDS
        .iter()
        .filter(|c| !c.contains(&"--watch") && c.first() != Some(&"events"));
    for cmd in one_shot {
        let args = [*cmd, &["--json"]].concat();
        let out = output(&mut xvrrp(
            &[&["-s", sock.to_str().unwrap()], &args[..]].concat(),
        ));
        let what = args.join(" ");
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        let v = parse_json(&stdout(&out), &what);
        assert_eq!(v["ok"], true, "{what}: {v}");
    }
    let out = output(&mut xvrrp(&[
        "-s",
        sock.to_str().unwrap(),
        "status",
        "--json",
    ]));
    let status = parse_json(&stdout(&out), "status --json");
    assert_eq!(
        status["instances"][0]["effective_priority"], 150,
        "{status}"
    );

    // A reader that goes away (`xvrrp status | head -0`) ends the client
    // quietly, by SIGPIPE as other tools do, never with a panic.
    let mut child = xvrrp(&["-s", sock.to_str().unwrap(), "status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        stderr(&out).is_empty(),
        "status into a closed pipe: {}",
        stderr(&out)
    );

    // The lab's status of a lab that is not there is still JSON.
    let out = output(&mut xvrrp(&[
        "lab", "status", "--prefix", "zzcli9", "--json",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let lab = parse_json(&stdout(&out), "lab status --json");
    assert_eq!(lab["up"], false, "{lab}");

    // stats --watch --json: a line of rates per interval until Ctrl-C.
    let watch = spawn_client(&sock, &["stats", "--watch", "--json", "--interval", "0.3"]);
    thread::sleep(Duration::from_millis(1500));
    watch.signal(libc::SIGINT);
    let out = watch.wait(RUN_EXIT_TIMEOUT);
    assert!(out.status.success(), "{:?}\n{}", out.status, stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let text = stdout(&out);
    let views = lines(&text);
    assert!(!views.is_empty(), "no line from stats --watch --json");
    for l in views {
        let v = parse_json(l, "a stats --watch --json line");
        assert!(v["interval_s"].as_f64().is_some_and(|s| s > 0.0), "{v}");
        assert!(
            v["ports"]["cli-lan"]["workers"]["0"]["rx_pps"].is_number(),
            "{v}"
        );
    }

    // A watch whose daemon goes away: one line, exit 1.
    let watch = spawn_client(&sock, &["stats", "--watch", "--interval", "0.2"]);
    thread::sleep(Duration::from_millis(800));
    daemon.signal(libc::SIGTERM);
    let out = daemon.wait(RUN_EXIT_TIMEOUT);
    assert!(out.status.success(), "{:?}\n{}", out.status, stderr(&out));
    let out = watch.wait(RUN_EXIT_TIMEOUT);
    let line = one_line_failure(&out, "stats --watch after the daemon went away");
    assert!(line.contains("went away"), "{line}");
}

/// One view of `stats --watch` piped: the rates of each port and worker.
fn watch_blocks(text: &str) -> Vec<Vec<Vec<String>>> {
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            b.lines()
                .skip_while(|l| !l.starts_with("PORT"))
                .skip(1)
                .take_while(|l| !l.starts_with("drops"))
                .map(|l| l.split_whitespace().map(str::to_owned).collect())
                .collect()
        })
        .collect()
}

/// `stats --watch` piped under a 1000 datagrams/s flow through A: views
/// separated by a blank line, each with A's ports and rates near the
/// flow's, until Ctrl-C (exit 0).
#[test]
fn stats_watch_piped_shows_the_rates_of_a_flow() {
    const RATE: f64 = 1000.0;
    let Some(rig) = common::Rig::standard("stats_watch_piped_shows_the_rates_of_a_flow") else {
        return;
    };
    let flow = rig.flowing(1000);
    let sock = PathBuf::from(common::socket_path(&rig.lab, "a"));
    let watch = spawn_client(&sock, &["stats", "--watch"]);
    thread::sleep(Duration::from_millis(4500));
    watch.signal(libc::SIGINT);
    let out = watch.wait(RUN_EXIT_TIMEOUT);
    drop(flow);
    let text = stdout(&out);
    assert!(out.status.success(), "{:?}\n{}", out.status, stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    assert!(!text.contains('\x1b'), "ANSI codes when piped:\n{text}");
    let blocks = watch_blocks(&text);
    assert!(blocks.len() >= 2, "fewer than 2 views:\n{text}");
    // Columns: PORT WORKER RX/s TX/s FORWARDED/s PUNTED/s DROPPED/s.
    let cell = |row: &[String], i: usize| -> f64 { row[i].parse().unwrap() };
    let mut lan_rx = Vec::new();
    for b in &blocks {
        let ports: Vec<&str> = b.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(ports, ["lan0", "wan0"], "{text}");
        let (lan, wan) = (&b[0], &b[1]);
        assert_eq!(lan.len(), 7, "{text}");
        // Never more than the flow plus adverts and ARP, however late a
        // view is taken: the rate divides by the measured time.
        for (row, i) in [(lan, 2), (wan, 3), (wan, 4)] {
            assert!(
                cell(row, i) <= 2.0 * RATE,
                "{} > 2x the flow:\n{text}",
                row[i]
            );
        }
        lan_rx.push((cell(lan, 2), cell(wan, 4), cell(wan, 3)));
    }
    // At least one view sees the flow come in on lan0 and forwarded out of
    // wan0 (a frame counts as forwarded on the port it leaves by).
    assert!(
        lan_rx
            .iter()
            .any(|&(rx, fwd, tx)| [rx, fwd, tx].iter().all(|r| *r >= RATE / 4.0)),
        "no view with the flow's rate:\n{text}"
    );

    // And the lab's own status as JSON names A's daemon among its processes.
    let out = output(&mut xvrrp(&[
        "lab",
        "status",
        "--prefix",
        rig.lab.prefix(),
        "--json",
    ]));
    let lab = parse_json(&stdout(&out), "lab status --json");
    assert_eq!(lab["up"], true, "{lab}");
    let gw_a = lab["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"].as_str().is_some_and(|s| s.ends_with("-gw-a")))
        .unwrap_or_else(|| panic!("no gw-a in {lab}"));
    assert!(
        gw_a["processes"].as_array().is_some_and(|p| !p.is_empty()),
        "{lab}"
    );
    assert!(
        gw_a["interfaces"].as_array().is_some_and(|i| !i.is_empty()),
        "{lab}"
    );
}
