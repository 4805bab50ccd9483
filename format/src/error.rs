//! Typed errors. Each variant names the rule that was violated; all are small and `Copy`
//! so `no_std` firmware can store and report them.

/// A violated rule while decoding or verifying a signed object.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The input ends before the object does.
    #[error("truncated: the input ends before the object does")]
    Truncated,
    /// The object does not start with the expected magic.
    #[error("bad magic: this is not the expected kind of object")]
    BadMagic,
    /// The format version is not one this verifier implements.
    #[error("unsupported format version")]
    UnsupportedVersion,
    /// A declared length is outside its allowed range.
    #[error("declared length is out of range")]
    BadLength,
    /// A flag marked critical is set that this verifier does not understand.
    #[error("unknown critical flag set")]
    UnknownCriticalFlag,
    /// A field holds a value the format does not allow.
    #[error("invalid field: {0}")]
    InvalidField(FieldError),
    /// The trusted-key descriptor is malformed.
    #[error("malformed trusted-key descriptor")]
    BadDescriptor,
    /// Two different trusted-key descriptors are present in one firmware.
    #[error("two different trusted-key descriptors in one firmware")]
    AmbiguousDescriptor,
    /// The object was signed by a key that is not trusted.
    #[error("signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("signature is invalid")]
    SignatureInvalid,
}

/// Which field of a signed object holds a disallowed value.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// Device type: empty, too long, bad characters or bad padding.
    #[error("device type")]
    DeviceType,
    /// Channel: empty, too long, bad characters or bad padding.
    #[error("channel")]
    Channel,
    /// Version pre-release: bad characters or bad padding.
    #[error("version")]
    Version,
    /// Image file name: empty, bad characters, a path, or bad padding.
    #[error("image name")]
    ImageName,
    /// Compression method or window size.
    #[error("compression")]
    Compression,
    /// Sizes that contradict each other.
    #[error("sizes")]
    Sizes,
    /// Rollout fraction above 100%.
    #[error("rollout")]
    Rollout,
    /// Bytes that must be zero are not.
    #[error("reserved bytes are not zero")]
    Reserved,
}
