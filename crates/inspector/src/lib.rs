//! Opens a stopped guest's disks in the libguestfs appliance.
//!
//! This is the only crate that names `guestfs`: the rest of xen2kvm sees a
//! guest through [`xen2kvm_vfs::GuestFs`], which [`Guest`] implements, plus
//! [`Guest::run`] for the few commands that must run inside the guest.
//!
//! One [`Guest`] is one launch of the appliance. Disks are added read-only
//! unless the caller asks for writes, and the appliance's acceleration is
//! decided by [`appliance_env`] (`/dev/kvm` is not trusted blindly).

#![warn(missing_docs)]

mod error;
mod guest;

pub use error::{Error, Result};
pub use guest::{Guest, OpenOptions, RootInfo};

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
