//! `diff::DiffPatcher` at the edges of its arguments (the vectors, `tests/vectors/diffs/`,
//! cover the stream's rules).

use ota_format::diff::{DiffCorruption, DiffPatcher, control_offset};

/// An image size whose control offset does not fit in 32 bits cannot have a stream (its
/// size is a `u32`): refused as too short, not an arithmetic overflow. Found while writing
/// the `diff_patch` fuzz target: `new` computed the offset unchecked, which panicked in
/// debug builds and wrapped to 0 in release ones (the whole stream then read as control
/// records). Verified headers never carry such a size (16 MiB at most).
#[test]
fn image_size_near_u32_max_is_stream_too_short() {
    for image_size in [u32::MAX, 0xFFFF_F001] {
        assert_eq!(
            DiffPatcher::new(image_size, 1, u32::MAX).map(drop),
            Err(DiffCorruption::StreamTooShort),
            "{image_size:#x}"
        );
    }
    // The largest image size that has a control offset still works as before.
    assert_eq!(control_offset(0xFFFF_F000), 0xFFFF_F000);
    assert!(DiffPatcher::new(0xFFFF_F000, 1, u32::MAX).is_ok());
}
