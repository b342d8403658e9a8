//! The `warroom.v1` gRPC contract (generated from `proto/warroom/v1`) and the
//! conversions between its messages and the pure types in `domain`.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("warroom.v1");
}

mod convert;
pub use convert::*;

/// Encoded descriptor set of the contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/warroom_descriptor.bin"));

/// Fully qualified service name, as health checks and reflection know it.
pub const SERVICE_NAME: &str = "warroom.v1.WarRoom";

/// Largest message either side accepts: a snapshot of 100,000 tenants is
/// about 10 MB.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
