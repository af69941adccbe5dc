//! Windows guests, pure (no libguestfs, no files, no processes): what a
//! Windows guest on Xen is and how it becomes a KVM guest.
//!
//! - [`reg`]: registry values, the [`reg::Hive`] trait (the inspector
//!   implements it over the appliance's hivex; [`reg::MemHive`] in memory),
//!   `.reg` text.
//! - [`xen`]: the Windows part of the Xen model: the PV driver sets' services.
//! - [`facts`]: what the SYSTEM and SOFTWARE hives say (control set, Xen
//!   services and class filters, the virtio block driver's registration).
//! - [`virtio_win`]: the virtio-win tree's layout.
//! - [`plan`]: the conversion (registry edits and files to add, each with
//!   its rule), and the registry half of applying it.
//!
//! The one promise holds here too: after [`plan::apply_edits`] and the
//! files, [`facts::WinFacts::xenisms`] is empty and a second plan is empty.

#![warn(missing_docs)]

pub mod facts;
pub mod plan;
pub mod reg;
pub mod virtio_win;
pub mod xen;

#[cfg(test)]
mod tests;
