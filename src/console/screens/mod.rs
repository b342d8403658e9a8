//! One module per screen or form: each draws its part of the frame from
//! `App` (and, where it moved cleanly, holds its view state and its keys).
//! `ui::render` lays the frame out and routes to them; `frame` holds the
//! header, the footer and what the screens draw with.

pub mod composer;
pub mod frame;
pub mod help;
pub mod lookup;
pub mod overview;
pub mod prio;
pub mod tenant;
pub mod timeline;
pub mod trends;
