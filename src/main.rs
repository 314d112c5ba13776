//! xvrrp: a VRRP gateway appliance with an AF_XDP fast path.
//!
//! This is the binary's edge: clap parses the command line, errors become
//! one line on stderr and a non-zero exit.

// A binary crate: `pub` marks what a module offers the others.
#![allow(unreachable_pub)]

mod capture;
mod cli;
mod client;
mod daemon;
mod docs;
mod events;
mod handover;
mod kernel_routes;
mod mcast;
mod peers;
mod rawtx;
mod rtnl;
mod track;
mod watch;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if args.command.prints_for_a_pipe() {
        // `xvrrp status | head` ends quietly, as other tools do, rather
        // than panicking on the closed pipe (Rust ignores SIGPIPE).
        // SAFETY: restoring a signal's default disposition at start-up,
        // before any other thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    cli::init_logging(args.verbose);
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xvrrp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
