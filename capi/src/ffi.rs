//! The only unsafe code of the crate: C pointers to Rust slices and references, and Rust
//! values kept in storage the C caller provides.
//!
//! Storage: each API object (`ota_trusted_keys_t`, ...) is, in C, a struct of `u64`
//! words whose count the header states. Rust keeps a [`Tagged`] value in it: a tag
//! naming the kind of object, then the value. The tag makes a zeroed struct, one of
//! another kind, or one already finished fail with `OTA_STATUS_BAD_STATE` instead of
//! being read as a value. (A struct never initialised at all holds indeterminate bytes:
//! passing one is a contract violation the header states, as for any C context struct.)

use core::mem::{align_of, size_of};

use crate::status::OtaStatus;

/// Tags of the object kinds: arbitrary, distinct, and unlikely in uninitialised memory.
pub(crate) const TAG_KEYS: u32 = 0x4b45_5953;
pub(crate) const TAG_MANIFEST: u32 = 0x4d41_4e49;
pub(crate) const TAG_IMAGE: u32 = 0x494d_4147;
/// What a finished object holds instead of its tag.
const TAG_NONE: u32 = 0;

/// A Rust value in C storage, behind the tag of its kind.
#[repr(C)]
pub(crate) struct Tagged<T> {
    tag: u32,
    value: T,
}

/// Checks at compile time that `T` fits the C storage `S` (size and alignment).
const fn assert_fits<T, S>() {
    assert!(
        size_of::<Tagged<T>>() <= size_of::<S>(),
        "object too big for its C storage"
    );
    assert!(
        align_of::<Tagged<T>>() <= align_of::<S>(),
        "object alignment above its C storage's"
    );
}

/// The slice `ptr[0..len]`; an empty slice for `len == 0` whatever `ptr` is.
///
/// # Safety
/// When `len > 0` and `ptr` is not NULL, `ptr` must point to `len` readable bytes that
/// nothing writes while the slice lives.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], OtaStatus> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(OtaStatus::NullArgument);
    }
    // SAFETY: non-null, and the caller guarantees `len` readable, unaliased-by-writes bytes.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// A shared reference to a plain C struct (one made of integers, arrays and pointers,
/// valid for every bit pattern).
///
/// # Safety
/// A non-NULL `ptr` must point to a readable, aligned `T` that nothing writes meanwhile.
pub(crate) unsafe fn plain<'a, T>(ptr: *const T) -> Result<&'a T, OtaStatus> {
    // SAFETY: the caller guarantees a valid, aligned `T` when non-null.
    unsafe { ptr.as_ref() }.ok_or(OtaStatus::NullArgument)
}

/// Writes a plain C struct to a caller's out-pointer.
///
/// # Safety
/// A non-NULL `ptr` must point to writable, aligned memory for a `T`.
pub(crate) unsafe fn write_out<T>(ptr: *mut T, value: T) -> Result<(), OtaStatus> {
    if ptr.is_null() {
        return Err(OtaStatus::NullArgument);
    }
    // SAFETY: non-null, and the caller guarantees writable, aligned memory; `write` does
    // not read (or drop) what was there, which may be uninitialised.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Stores `value` in the C storage at `dst` under `tag`.
///
/// # Safety
/// A non-NULL `dst` must point to writable, aligned memory for an `S`.
pub(crate) unsafe fn store<T, S>(dst: *mut S, tag: u32, value: T) -> Result<(), OtaStatus> {
    const { assert_fits::<T, S>() };
    // SAFETY: `Tagged<T>` fits `S` in size and alignment (checked above at compile time);
    // the caller guarantees `dst` is writable and aligned for `S`.
    unsafe { write_out(dst.cast::<Tagged<T>>(), Tagged { tag, value }) }
}

/// The value stored at `src` under `tag`.
///
/// # Safety
/// A non-NULL `src` must point to an aligned `S` that an `ota_*` function initialised
/// (or that the caller zeroed), and that nothing writes while the reference lives.
pub(crate) unsafe fn load<'a, T, S>(src: *const S, tag: u32) -> Result<&'a T, OtaStatus> {
    const { assert_fits::<T, S>() };
    // SAFETY: see the function's contract; size and alignment are checked above.
    let tagged = unsafe { plain(src.cast::<Tagged<T>>()) }?;
    if tagged.tag != tag {
        return Err(OtaStatus::BadState);
    }
    Ok(&tagged.value)
}

/// The value stored at `src` under `tag`, for update.
///
/// # Safety
/// As [`load`], and nothing else may read or write the storage while the reference lives.
pub(crate) unsafe fn load_mut<'a, T, S>(src: *mut S, tag: u32) -> Result<&'a mut T, OtaStatus> {
    const { assert_fits::<T, S>() };
    // SAFETY: see the function's contract; size and alignment are checked above.
    let tagged = unsafe { src.cast::<Tagged<T>>().as_mut() }.ok_or(OtaStatus::NullArgument)?;
    if tagged.tag != tag {
        return Err(OtaStatus::BadState);
    }
    Ok(&mut tagged.value)
}

/// Moves the value stored at `src` under `tag` out, leaving the storage finished (a later
/// call on it fails with `OTA_STATUS_BAD_STATE`).
///
/// # Safety
/// As [`load_mut`].
pub(crate) unsafe fn take<T, S>(src: *mut S, tag: u32) -> Result<T, OtaStatus> {
    const { assert_fits::<T, S>() };
    // SAFETY: see the function's contract; size and alignment are checked above.
    let tagged = unsafe { src.cast::<Tagged<T>>().as_mut() }.ok_or(OtaStatus::NullArgument)?;
    if tagged.tag != tag {
        return Err(OtaStatus::BadState);
    }
    tagged.tag = TAG_NONE;
    // SAFETY: the value was initialised (the tag says so) and, with the tag cleared, is
    // never read through the storage again, so it is moved out exactly once.
    Ok(unsafe { core::ptr::read(&tagged.value) })
}
