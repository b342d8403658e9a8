//! One file per command: `warroom` (the console), `gateway`, `snapshot`,
//! `lookup`, `publish`, `report`, `export`, `info`, `drill`, `keymap`.

mod console;
mod drill;
mod export;
mod gateway;
mod info;
mod keymap;
mod lookup;
mod publish;
mod report;
mod snapshot;

pub(crate) use console::console;
pub(crate) use drill::drill;
pub(crate) use export::export;
pub(crate) use gateway::{gateway, store_location};
pub(crate) use info::info;
pub(crate) use keymap::keymap_cmd;
pub(crate) use lookup::lookup;
pub(crate) use publish::publish;
pub(crate) use report::report;
pub(crate) use snapshot::snapshot;
