//! warroom: an incident-response console for the operators of hosted e-mail
//! platforms. See `docs/architecture.md` for how the pieces fit.

pub mod api;
pub mod channels;
pub mod client;
pub mod config;
pub mod console;
pub mod domain;
pub mod gateway;
pub(crate) mod http;
pub mod lookup;
pub(crate) mod pem;
pub mod random;
pub mod sources;
pub mod store;
pub mod tls;
