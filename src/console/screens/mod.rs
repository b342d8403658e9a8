//! One module per screen or form: each draws its part of the frame from
//! `App` (and, where it moved cleanly, holds its view state and its keys).
//! `ui::render` lays the frame out and routes to them; `frame` holds the
//! header, the footer and what the screens draw with.

pub(crate) mod composer;
pub(crate) mod frame;
pub(crate) mod help;
pub(crate) mod lookup;
pub(crate) mod overview;
pub(crate) mod prio;
pub(crate) mod tenant;
pub(crate) mod timeline;
pub(crate) mod trends;
