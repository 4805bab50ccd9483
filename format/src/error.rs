//! Typed errors. Each variant names the rule that was violated; all are small and `Copy`
//! so `no_std` firmware can store and report them.

/// A violated rule while decoding, verifying or deciding on a signed object.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum FormatError {
    // --- structure ---
    /// The input ends before the object does.
    #[error("truncated: the input ends before the object does")]
    Truncated,
    /// Bytes follow the end of the object.
    #[error("trailing bytes after the end of the object")]
    TrailingBytes,
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

    // --- signature ---
    /// The object was signed by a key that is not trusted.
    #[error("signed by a key that is not trusted")]
    UnknownKey,
    /// The signature does not verify.
    #[error("signature is invalid")]
    SignatureInvalid,

    // --- digests and bindings ---
    /// The payload does not hash to the digest in the signed header.
    #[error("payload digest does not match the signed header")]
    PayloadDigestMismatch,
    /// The installed (decompressed) image does not hash to the digest in the signed header.
    #[error("installed image digest does not match the signed header")]
    InstalledDigestMismatch,
    /// The image is not the one the manifest names (header digest or file size differ).
    #[error("image is not the one the manifest names")]
    ManifestImageMismatch,
    /// The image header and the manifest disagree on a field they both carry.
    #[error("image header contradicts the manifest ({0})")]
    ManifestFieldMismatch(MismatchedField),
    /// The delta was made against another image than the one the device runs.
    #[error("delta is for another base image than the one running")]
    DeltaBaseMismatch,
    /// The target header a delta carries is not the one its signed header names, or is
    /// for another device type or chip than the delta.
    #[error("delta carries another target header than it names")]
    DeltaTargetMismatch,

    // --- policy ---
    /// Made for another device type.
    #[error("made for another device type")]
    WrongDeviceType,
    /// Made for another chip.
    #[error("made for another chip")]
    WrongChip,
    /// The manifest is for another channel than the device follows.
    #[error("manifest is for another channel")]
    WrongChannel,
    /// The manifest's not-after time has passed.
    #[error("manifest has expired")]
    Expired,
    /// The manifest's sequence number is lower than one the device already accepted
    /// (an old manifest replayed: freeze attack).
    #[error("manifest sequence is older than one already seen (replayed manifest)")]
    SequenceRollback,
    /// The security counter is lower than the device's.
    #[error("security counter is lower than the device's (rollback)")]
    CounterRollback,
    /// The version is lower than the running one and the manifest does not allow downgrades.
    #[error("version is lower than the running one (downgrade not allowed)")]
    Downgrade,
    /// The running version is below the manifest's minimum running version.
    #[error("running version is below the release's minimum")]
    BelowMinimumVersion,
    /// The installed image would not fit the device's update slot.
    #[error("image does not fit the update slot")]
    TooLarge,
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
    /// Sizes that contradict each other, are zero or exceed the format's limits.
    #[error("sizes")]
    Sizes,
    /// Rollout fraction above 100%.
    #[error("rollout")]
    Rollout,
}

/// A field that both the manifest and the image header carry.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MismatchedField {
    /// Device type.
    #[error("device type")]
    DeviceType,
    /// Chip.
    #[error("chip")]
    Chip,
    /// Version.
    #[error("version")]
    Version,
    /// Security counter.
    #[error("security counter")]
    SecurityCounter,
    /// Installed image size.
    #[error("image size")]
    ImageSize,
}
