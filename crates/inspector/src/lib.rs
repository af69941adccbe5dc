//! Reads a stopped guest: opens its disks in the libguestfs appliance, and
//! reads facts from its files.
//!
//! This is the only crate that names `guestfs`, and only in its `appliance`
//! feature (on by default): [`Guest`] is one launch of the appliance, with
//! the disks added read-only unless the caller asks for writes, inspection,
//! mounts, an implementation of [`xen2kvm_vfs::GuestFs`], and [`Guest::run`]
//! for commands that must run inside the guest. The appliance's acceleration
//! is decided by [`appliance_env`] (`/dev/kvm` is not trusted blindly).
//!
//! The fact readers ([`bootconf`]) are pure functions over `&dyn GuestFs`;
//! they build and are tested without libguestfs, on directory trees.

#![warn(missing_docs)]

pub mod bootconf;
#[cfg(feature = "appliance")]
mod error;
pub mod facts;
#[cfg(feature = "appliance")]
mod guest;
pub mod initrd;
pub mod network;
#[cfg(feature = "appliance")]
pub mod windows;
pub mod xen;

#[cfg(feature = "appliance")]
pub use error::{Error, Result};
#[cfg(feature = "appliance")]
pub use guest::{Guest, OpenOptions, Opened, RootInfo};

/// Sets libguestfs' backend settings from the environment, falling back to
/// TCG unless `XEN2KVM_APPLIANCE_KVM=1` says the host's KVM works.
///
/// An explicit `LIBGUESTFS_BACKEND_SETTINGS` is kept as it is.
pub fn appliance_env() -> Option<String> {
    if std::env::var_os("LIBGUESTFS_BACKEND_SETTINGS").is_some() {
        return None;
    }
    if std::env::var("XEN2KVM_APPLIANCE_KVM").as_deref() == Ok("1") {
        return None;
    }
    Some("force_tcg".to_owned())
}
