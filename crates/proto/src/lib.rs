//! Generated types for the `foco.v1` protobuf package: the messages that travel on
//! the bus (`EventEnvelope`, `SmsJob`) and the control gRPC API. Generated code only;
//! behaviour belongs in the crates that use these types.

pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("foco.v1");

    /// Encoded `FileDescriptorSet` for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("foco_descriptor");
}
