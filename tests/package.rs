//! `make deb`: the Debian package built from the same files as
//! `make install` (binary, systemd unit, example configuration as a
//! conffile, man pages, shell completions, the `xvrrp` group made by
//! postinst), listed and inspected with `dpkg-deb`.
//!
//! The test packs the binary cargo built for it (`BIN=`), so `make deb`
//! runs no cargo build, into a directory of its own (`DEB_DIR=`).

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
const XVRRP: &str = env!("CARGO_BIN_EXE_xvrrp");

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A scratch directory unique to this process, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Files the package must hold.
const FILES: [&str; 9] = [
    "./usr/sbin/xvrrp",
    "./usr/lib/systemd/system/xvrrp.service",
    "./etc/xvrrp/xvrrp.toml",
    "./usr/share/man/man8/xvrrp.8.gz",
    "./usr/share/man/man8/xvrrp-stats.8.gz",
    "./usr/share/bash-completion/completions/xvrrp",
    "./usr/share/zsh/vendor-completions/_xvrrp",
    "./usr/share/fish/vendor_completions.d/xvrrp.fish",
    "./usr/share/doc/xvrrp/copyright",
];

#[test]
fn make_deb_builds_the_package_with_every_file() {
    for tool in ["make", "dpkg-deb", "dpkg"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .status
                .success(),
            "{tool} is not installed (Debian's dpkg and make are needed to build the package)"
        );
    }
    let dir = Scratch(std::env::temp_dir().join(format!("xvrrp-deb-{}", std::process::id())));
    let _ = fs::remove_dir_all(&dir.0);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    run(Command::new("make")
        .arg("-C")
        .arg(repo)
        .arg("--no-print-directory")
        .arg("deb")
        .arg(format!("BIN={XVRRP}"))
        .arg(format!("DEB_DIR={}", dir.0.display())));

    let arch = text(&run(Command::new("dpkg").arg("--print-architecture")));
    let name = format!("xvrrp_{}_{}.deb", env!("CARGO_PKG_VERSION"), arch.trim());
    let deb = dir.0.join(&name);
    assert!(deb.is_file(), "no {name} in {}", dir.0.display());
    assert!(
        !dir.0.join("root").exists(),
        "the staging tree was left behind"
    );

    // Contents: every file, owned by root, the binary executable.
    let listing = text(&run(Command::new("dpkg-deb").arg("--contents").arg(&deb)));
    for f in FILES {
        let line = listing
            .lines()
            .find(|l| l.ends_with(&format!(" {f}")))
            .unwrap_or_else(|| panic!("no {f} in the package:\n{listing}"));
        assert!(line.contains("root/root"), "{line}");
        let mode = if f == "./usr/sbin/xvrrp" {
            "-rwxr-xr-x"
        } else {
            "-rw-r--r--"
        };
        assert!(line.starts_with(mode), "{line}");
    }

    // Control fields.
    let info = text(&run(Command::new("dpkg-deb").arg("--info").arg(&deb)));
    for field in [
        "Package: xvrrp".to_owned(),
        format!("Version: {}", env!("CARGO_PKG_VERSION")),
        format!("Architecture: {}", arch.trim()),
        "Section: net".to_owned(),
        "Maintainer: ".to_owned(),
        "Description: ".to_owned(),
        "Installed-Size: ".to_owned(),
    ] {
        assert!(info.contains(&field), "no {field:?} in:\n{info}");
    }
    let depends = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends:\n{info}"));
    for lib in ["libc6", "libelf1", "zlib1g"] {
        assert!(depends.contains(lib), "Depends lacks {lib}: {depends}");
    }

    // Maintainer scripts and conffiles.
    let control = dir.0.join("control");
    run(Command::new("dpkg-deb")
        .arg("--control")
        .arg(&deb)
        .arg(&control));
    let conffiles = fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/xvrrp/xvrrp.toml");
    let postinst = fs::read_to_string(control.join("postinst")).unwrap();
    assert!(postinst.contains("addgroup --system xvrrp"), "{postinst}");
    assert!(postinst.contains("groupadd -r xvrrp"), "{postinst}");
    for script in ["postinst", "prerm", "postrm"] {
        run(Command::new("sh").arg("-n").arg(control.join(script)));
    }

    // The unpacked files work: the binary runs, the unit names it, the
    // man page is roff, the bash completion parses, the config checks.
    let root = dir.0.join("root-x");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let bin = root.join("usr/sbin/xvrrp");
    let version = text(&run(Command::new(&bin).arg("--version")));
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    let unit = fs::read_to_string(root.join("usr/lib/systemd/system/xvrrp.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/sbin/xvrrp run -c /etc/xvrrp/xvrrp.toml"),
        "{unit}"
    );
    let man = text(&run(Command::new("gzip")
        .arg("-dc")
        .arg(root.join("usr/share/man/man8/xvrrp.8.gz"))));
    assert!(man.contains(".TH xvrrp 8"), "{man}");
    run(Command::new("bash")
        .arg("-n")
        .arg(root.join("usr/share/bash-completion/completions/xvrrp")));
    let config = root.join("etc/xvrrp/xvrrp.toml");
    assert_eq!(
        fs::read(&config).unwrap(),
        fs::read(repo.join("xvrrp.example.toml")).unwrap()
    );
    run(Command::new(&bin).arg("check").arg("-c").arg(&config));
}
