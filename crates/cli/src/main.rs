//! The `xen2kvm` command: argument parsing, dispatch, exit codes.
//!
//! `main` only parses and dispatches; each subcommand lives in its own
//! module and returns its [`Exit`] code. Results go to stdout, progress and
//! diagnostics to stderr. `--json` output is a versioned document whose
//! shape is defined here, in the CLI, and documented in `docs/json.md`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bootcheck;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Converts stopped Xen guests (disk images and domain configs) so that they
/// boot under KVM, and checks that they do.
#[derive(Debug, Parser)]
#[command(
    name = "xen2kvm",
    version,
    help_expected = true,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Boot an image in QEMU (virtio disk and NIC) and report whether it
    /// booted, or why not. Exit 0 booted, 1 failed, 2 usage or I/O error.
    BootCheck(bootcheck::Args),
}

/// Exit codes, one place. A subcommand documents which it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Done (boot-check: booted).
    Ok = 0,
    /// Failed (boot-check: did not boot).
    Failed = 1,
    /// Usage or I/O error (clap's usage errors are 2 as well).
    Error = 2,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::BootCheck(args) => bootcheck::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            eprintln!("xen2kvm: error: {err:#}");
            ExitCode::from(Exit::Error as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_app() {
        Cli::command().debug_assert();
    }
}
