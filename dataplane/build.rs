//! Compiles the XDP filter program (bpf/xvrrp.bpf.c) with clang.

use std::{env, path::PathBuf, process::Command};

fn main() {
    let src = "bpf/xvrrp.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("xvrrp.bpf.o");

    // Debian keeps asm/types.h under the multiarch include dir.
    let multiarch = Command::new("gcc")
        .arg("-print-multiarch")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "x86_64-linux-gnu".to_string());

    let status = Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .args(["-c", src, "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            panic!("clang failed to compile {src} ({s}); is libbpf-dev installed? run `make deps`")
        }
        Err(e) => panic!("cannot run clang to compile {src}: {e}; run `make deps`"),
    }
}
