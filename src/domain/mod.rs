//! Pure types and logic of a mail-outage war room: no I/O, no async, no
//! protocol types. Everything here is unit- and property-tested, and is what
//! both the gateway and the console agree on.

pub mod calibrated;
pub mod calibration;
pub(crate) mod csv;
pub mod forecast;
pub mod format;
pub mod incident;
pub(crate) mod model;
pub mod priority;
pub mod redact;
pub mod sanitize;
pub mod scope;
pub(crate) mod slip;
pub mod status;
pub(crate) mod tenants;
pub(crate) mod trends;
pub mod update;

pub use model::*;
