//! The `xen2kvm` command: argument parsing, dispatch, exit codes.
//!
//! `main` only parses and dispatches; each subcommand lives in its own
//! module and returns its [`Exit`] code. Results go to stdout, progress and
//! diagnostics to stderr. `--json` output is a versioned document whose
//! shape is defined here, in the CLI, and documented in `docs/json.md`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod backup;
mod bootcheck;
mod convert;
mod domxml;
mod image;
mod inspect;
mod interrupt;
mod lock;
mod migrate;
mod revert;
mod windows;

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
    /// Inspect a stopped guest's disks read-only: OS, kernels, bootloader,
    /// every Xen-ism, and a verdict. Exit 0 ready or needs, 3 blocked, 1 error.
    Inspect(inspect::Args),
    /// Convert a stopped Xen guest's disks so that it boots under KVM: to a
    /// copy (-o), in place, or only show what would change (--dry-run).
    /// Exit 0 converted or nothing to do, 1 error, 3 blocked.
    Convert(convert::Args),
    /// Undo in-place conversions: restore the guest from the journal that
    /// `convert --in-place` left in it (also an unfinished one, after a
    /// crash). Exit 0 restored or nothing to restore, 1 error.
    Revert(revert::Args),
    /// Translate a Xen domain config (libvirt XML, or xl.cfg with --from xl)
    /// into KVM libvirt XML. Exit 0 done, 1 error.
    Domxml(domxml::Args),
    /// The whole job, in virt-v2v's spelling: a stopped Xen domain (-i
    /// libvirtxml FILE | -i libvirt NAME | -i xl FILE) becomes a KVM
    /// domain (-o local -os DIR | -o libvirt -os POOL): checked, backed up
    /// (--backup), copied, converted, boot-checked (--boot-check), defined.
    /// Exit 0 migrated, 1 failed, 3 blocked.
    Migrate(migrate::Args),
    /// Back up a stopped Xen domain (config and disks) into a directory
    /// with a SHA256SUMS, verified by re-reading; or --verify such a
    /// directory. Exit 0 done (verified), 1 error or mismatch.
    Backup(backup::Args),
}

/// Exit codes, one place. A subcommand documents which it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Done (boot-check: booted).
    Ok = 0,
    /// Failed (boot-check: did not boot; other commands: an error).
    Failed = 1,
    /// Usage or I/O error (clap's usage errors are 2 as well).
    Error = 2,
    /// The guest cannot be converted (inspect, convert: blocked).
    Blocked = 3,
    /// Stopped by a signal, after cleaning up (exits 128 + the signal).
    Interrupted = 128,
}

/// How an error exits: boot-check reserves 1 for "did not boot", so its
/// errors are 2; the other commands exit 1 on error.
fn error_exit(cmd: &Cmd) -> Exit {
    match cmd {
        Cmd::BootCheck(_) => Exit::Error,
        Cmd::Domxml(_)
        | Cmd::Inspect(_)
        | Cmd::Convert(_)
        | Cmd::Revert(_)
        | Cmd::Migrate(_)
        | Cmd::Backup(_) => Exit::Failed,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(migrate::virt_v2v_spelling(std::env::args_os().collect()));
    let on_error = error_exit(&cli.cmd);
    let result = match cli.cmd {
        Cmd::BootCheck(args) => bootcheck::run(args),
        Cmd::Domxml(args) => domxml::run(args),
        Cmd::Inspect(args) => inspect::run(args),
        Cmd::Convert(args) => convert::run(args),
        Cmd::Revert(args) => revert::run(args),
        Cmd::Migrate(args) => migrate::run(args),
        Cmd::Backup(args) => backup::run(args),
    };
    match result {
        Ok(Exit::Interrupted) => {
            let sig = interrupt::signal().unwrap_or(15);
            ExitCode::from(128 + u8::try_from(sig).unwrap_or(15))
        }
        Ok(code) => ExitCode::from(code as u8),
        Err(err) if interrupt::requested() => {
            eprintln!("xen2kvm: interrupted: {err:#}");
            let sig = interrupt::signal().unwrap_or(15);
            ExitCode::from(128 + u8::try_from(sig).unwrap_or(15))
        }
        Err(err) => {
            eprintln!("xen2kvm: error: {err:#}");
            ExitCode::from(on_error as u8)
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
