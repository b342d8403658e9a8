//! The status codes tonic gives a request it cannot read, restated as
//! docs/api.md and the gRPC status-code guide say.
//!
//! tonic refuses a request over the decoding limit with `OUT_OF_RANGE`
//! ("decoded message length too large"), where gRPC's own guide says
//! `RESOURCE_EXHAUSTED`; and it answers a request that is not protobuf, or
//! holds a string that is not UTF-8, with `INTERNAL`, which says "the
//! gateway is broken" when it is the caller's request that is wrong. Both
//! happen inside tonic before any handler runs, and end in a trailers-only
//! answer (the status in the response headers), so this wrapper around the
//! `warroom.v1` service restates them there. Handlers never answer
//! `OUT_OF_RANGE`, and their `INTERNAL` messages start with `query failed`,
//! so nothing a handler said is changed.

use std::convert::Infallible;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;
use tonic::{Code, Status};

/// A gRPC service whose refusals of unreadable requests carry the codes
/// the API promises.
#[derive(Debug, Clone)]
pub(crate) struct ExactCodes<S>(pub S);

impl<S: NamedService> NamedService for ExactCodes<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for ExactCodes<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let answer = self.0.call(req);
        Box::pin(async move {
            let mut response = answer.await?;
            restate(response.headers_mut());
            Ok(response)
        })
    }
}

/// The status a trailers-only refusal should have had, if it is one of
/// tonic's for an unreadable request.
fn restated(s: &Status) -> Option<Status> {
    let msg = s.message();
    match s.code() {
        Code::OutOfRange if msg.contains("decoded message length too large") => {
            Some(Status::resource_exhausted(format!(
                "the request is larger than the gateway accepts (1 MiB): {}",
                msg.trim_start_matches("Error, ")
            )))
        }
        Code::Internal if msg.starts_with("failed to decode Protobuf message") => {
            Some(Status::invalid_argument(format!(
                "the request is not a valid warroom.v1 message: {msg}"
            )))
        }
        Code::Internal if msg == "Missing request message." => Some(Status::invalid_argument(
            "the request has no message: send exactly one",
        )),
        _ => None,
    }
}

fn restate(headers: &mut http::HeaderMap) {
    // A normal answer has no status in its headers (it comes in the
    // trailers): this is only ever a refusal made before the handler.
    let Some(now) = Status::from_header_map(headers) else {
        return;
    };
    if let Some(better) = restated(&now) {
        headers.remove("grpc-status-details-bin");
        if better.add_header(headers).is_err() {
            tracing::debug!(code = ?now.code(), "could not restate a refusal's status");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonic_refusals_of_unreadable_requests_get_the_documented_codes() {
        let big = Status::out_of_range(
            "Error, decoded message length too large: found 2097160 bytes, the limit is: 1048576 bytes",
        );
        let r = restated(&big).unwrap();
        assert_eq!(r.code(), Code::ResourceExhausted);
        assert!(
            r.message().contains("found 2097160 bytes"),
            "{}",
            r.message()
        );
        let bad = Status::internal(
            "failed to decode Protobuf message: LookupRequest.query: invalid string value: data is not UTF-8 encoded",
        );
        assert_eq!(restated(&bad).unwrap().code(), Code::InvalidArgument);
        // What a handler says is left alone.
        assert!(restated(&Status::internal("query failed: the hub is gone")).is_none());
        assert!(restated(&Status::invalid_argument("query is empty")).is_none());
    }

    #[test]
    fn a_restated_refusal_replaces_the_status_in_the_headers() {
        let mut h = http::HeaderMap::new();
        Status::out_of_range("Error, decoded message length too large: found 9 bytes")
            .add_header(&mut h)
            .unwrap();
        restate(&mut h);
        let s = Status::from_header_map(&h).unwrap();
        assert_eq!(s.code(), Code::ResourceExhausted);
        // An answer without a status in its headers is untouched.
        let mut ok = http::HeaderMap::new();
        restate(&mut ok);
        assert!(ok.is_empty());
    }
}
