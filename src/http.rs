//! HTTP clients for the APIs warroom calls with a secret: Statuspage's
//! and doveadm's.

use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};

use crate::domain::format::causes;

/// Why a keyed client could not be made; names the API, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("{api} API key cannot go in an HTTP header")]
    KeyNotAHeader { api: String },
    #[error("{api}: cannot build the HTTP client: {why}")]
    Build { api: String, why: String },
}

/// A client whose every request carries `authorization` (scheme and
/// secret) as a sensitive header, so it never shows in Debug output or
/// logs; accepts JSON; never follows a redirect, which could carry the
/// secret to another host; `direct` keeps it off any proxy. Errors name
/// `api`, never the secret.
pub(crate) fn keyed_client(
    api: &str,
    authorization: &str,
    timeout: Duration,
    connect_timeout: Duration,
    direct: bool,
) -> Result<reqwest::Client, ClientError> {
    let mut auth =
        HeaderValue::from_str(authorization).map_err(|_| ClientError::KeyNotAHeader {
            api: api.to_string(),
        })?;
    auth.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, auth);
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("warroom/", env!("CARGO_PKG_VERSION")));
    if direct {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| ClientError::Build {
        api: api.to_string(),
        why: causes(&e),
    })
}
