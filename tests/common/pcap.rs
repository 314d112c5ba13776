//! Packet captures in the lab: tcpdump writing a pcap in a namespace,
//! decoded by tshark.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{lab, netns, NO_STOP};

/// `tcpdump` writing a pcap in one of the lab's namespaces; stopped by its
/// PID (SIGTERM flushes the file) when dropped. Immediate mode: packets are
/// not held in the kernel's ring blocks, which tcpdump would not read
/// before exiting.
pub(crate) struct Tcpdump {
    child: Option<Child>,
    path: PathBuf,
}

impl Tcpdump {
    /// Starts capturing `filter` on `ifname` in `ns` into `path`, and
    /// returns once tcpdump has opened its file (it is capturing by then).
    pub(crate) fn start(ns: &str, ifname: &str, filter: &str, path: &Path) -> Result<Tcpdump> {
        // tshark too: a capture nobody can decode fails now, not after the
        // scenario it records.
        netns::require(&["tcpdump", "tshark"])?;
        let file = path.to_string_lossy().into_owned();
        let child = netns::spawn(
            ns,
            "tcpdump",
            &[
                "-i",
                ifname,
                "--immediate-mode",
                "-U",
                "-n",
                "-s",
                "256",
                "-w",
                &file,
                filter,
            ],
            Stdio::null(),
            Stdio::null(),
        )?;
        let mut cap = Tcpdump {
            child: Some(child),
            path: path.to_owned(),
        };
        let r = lab::wait_until("tcpdump to start", Duration::from_secs(5), &NO_STOP, || {
            Ok(cap.path.exists())
        });
        if let Err(e) = r {
            cap.stop()?;
            return Err(e);
        }
        // The file is created right after the capture handle is active.
        thread::sleep(Duration::from_millis(200));
        Ok(cap)
    }

    /// Stops tcpdump and waits for it: the file is complete afterwards.
    pub(crate) fn stop(&mut self) -> Result<()> {
        match self.child.take() {
            Some(mut child) => netns::stop_child(&mut child, Duration::from_secs(3)),
            None => Ok(()),
        }
    }

    /// The captured frames decoded by tshark, one map of `fields` per frame
    /// (absent fields are empty strings). tshark checks the VRRPv3
    /// checksum in xvrrp's default form (RFC 9568, without pseudo-header).
    pub(crate) fn decode(&mut self, fields: &[&str]) -> Result<Vec<Vec<String>>> {
        self.stop()?;
        let mut cmd = Command::new("tshark");
        cmd.arg("-r")
            .arg(&self.path)
            .args(["-o", "vrrp.v3_checksum_as_in_v2:TRUE"])
            .args(["-T", "fields", "-E", "separator=|", "-E", "occurrence=f"]);
        for f in fields {
            cmd.args(["-e", f]);
        }
        let out = cmd.stdin(Stdio::null()).output().context("run tshark")?;
        if !out.status.success() {
            bail!("tshark: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('|').map(str::to_owned).collect())
            .collect())
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: stopping tcpdump: {e:#}");
        }
    }
}
