//! Documentation generated from the command-line model itself: shell
//! completion scripts (`xvrrp completions SHELL`) and man pages (the hidden
//! `xvrrp manpage --dir DIR`, used by `make deb` and `make install`), so
//! they always match `--help`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli;

/// Writes the completion script of `shell` to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut cmd = cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "xvrrp", &mut script);
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("writing the completion script")
}

/// Man page section: system administration commands.
const SECTION: &str = "8";

/// Writes `xvrrp.8` and a page per visible command (`xvrrp-status.8`,
/// `xvrrp-lab-up.8`, ...) into `dir`, creating it; prints each path.
pub fn manpages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_pages(cmd, dir, &mut written)?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}

fn write_pages(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, written)?;
    }
    let man = clap_mangen::Man::new(cmd).section(SECTION);
    let path = man
        .generate_to(dir)
        .with_context(|| format!("writing a man page into {}", dir.display()))?;
    written.push(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_commands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            completions(shell, &mut out).expect("generated");
            let text = String::from_utf8(out).expect("UTF-8");
            for word in ["status", "stats", "completions", "--watch"] {
                assert!(text.contains(word), "{shell}: no {word}");
            }
        }
    }

    #[test]
    fn the_man_pages_cover_the_commands() {
        let dir = std::env::temp_dir().join(format!("xvrrp-man-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        manpages(&dir).expect("written");
        let main = std::fs::read_to_string(dir.join("xvrrp.8")).expect("xvrrp.8");
        assert!(
            main.starts_with(".ie") || main.contains(".TH xvrrp 8"),
            "{main}"
        );
        assert!(main.contains("completions"), "{main}");
        for page in ["xvrrp-status.8", "xvrrp-stats.8", "xvrrp-lab-up.8"] {
            assert!(dir.join(page).exists(), "no {page}");
        }
        assert!(!dir.join("xvrrp-manpage.8").exists());
        assert!(!dir.join("xvrrp-flow.8").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
