//! The C API called from Rust the way C calls it: what the C vector program does not
//! look at (the text fields C reads, the device fields C fills, payload spans).

use core::ffi::{CStr, c_char};
use std::mem::MaybeUninit;
use std::ptr;

use ota_format_c::*;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../format/tests/vectors/");
const KEY_A: &str = "d4e83a3ec7f5ab129cf8e516a6e064955e54e0431816c9e59dac50df7172f8b0";

fn read(file: &str) -> Vec<u8> {
    std::fs::read(format!("{VECTORS}{file}")).unwrap()
}

fn keys() -> Box<OtaTrustedKeys> {
    let key: [u8; 32] = hex::decode(KEY_A).unwrap().try_into().unwrap();
    let descriptor = ota_format::TrustedKeyDescriptor::new(&[key]).to_bytes();
    let mut keys = Box::new(MaybeUninit::<OtaTrustedKeys>::uninit());
    let st =
        unsafe { ota_trusted_keys_parse(keys.as_mut_ptr(), descriptor.as_ptr(), descriptor.len()) };
    assert_eq!(st, OtaStatus::Ok);
    // SAFETY: parse filled it.
    unsafe { Box::from_raw(Box::into_raw(keys).cast()) }
}

fn manifest(keys: &OtaTrustedKeys, file: &str) -> Box<OtaManifest> {
    let bytes = read(file);
    let mut m = Box::new(MaybeUninit::<OtaManifest>::uninit());
    let st = unsafe { ota_manifest_verify(keys, bytes.as_ptr(), bytes.len(), m.as_mut_ptr()) };
    assert_eq!(st, OtaStatus::Ok);
    unsafe { Box::from_raw(Box::into_raw(m).cast()) }
}

fn field<const N: usize>(text: &str) -> [c_char; N] {
    let mut out = [0 as c_char; N];
    for (o, b) in out.iter_mut().zip(text.bytes()) {
        *o = b as c_char;
    }
    out
}

fn text(field: &[c_char]) -> &str {
    let bytes: &[u8] = unsafe { &*(ptr::from_ref(field) as *const [u8]) };
    CStr::from_bytes_until_nul(bytes).unwrap().to_str().unwrap()
}

/// The device of vectors.json's "a device one version behind".
fn device(id: &[u8]) -> OtaDevice {
    OtaDevice {
        device_type: field("thermostat"),
        channel: field("stable"),
        running_version: field("1.2.2"),
        chip: 5,
        has_last_sequence: 1,
        has_now: 1,
        security_counter: 2,
        last_sequence: 6,
        now: 1_767_229_200,
        device_id: id.as_ptr(),
        device_id_len: id.len(),
        slot_size: 65536,
    }
}

fn decide(m: &OtaManifest, d: &OtaDevice) -> Result<OtaDecision, OtaStatus> {
    let mut out = MaybeUninit::<OtaDecision>::uninit();
    match unsafe { ota_manifest_decide(m, d, out.as_mut_ptr()) } {
        OtaStatus::Ok => Ok(unsafe { out.assume_init() }),
        st => Err(st),
    }
}

#[test]
fn manifest_info_gives_c_the_fields_as_nul_terminated_text() {
    let keys = keys();
    let m = manifest(&keys, "manifests/valid.manifest");
    let mut info = MaybeUninit::<OtaManifestInfo>::uninit();
    assert_eq!(
        unsafe { ota_manifest_info(&*m, info.as_mut_ptr()) },
        OtaStatus::Ok
    );
    let info = unsafe { info.assume_init() };
    let parsed = ota_format::Manifest::inspect(&read("manifests/valid.manifest")).unwrap();
    assert_eq!(text(&info.device_type), "thermostat");
    assert_eq!(text(&info.channel), "stable");
    assert_eq!(text(&info.version), parsed.version.to_string());
    assert_eq!(text(&info.image_name), parsed.image_name.as_str());
    assert_eq!(info.sequence, parsed.sequence);
    assert_eq!(info.image_file_size, parsed.image_file_size);
    assert_eq!(info.image_header_sha256, parsed.image_header_sha256);
}

#[test]
fn decide_reads_every_device_field_and_refuses_bad_ones() {
    let keys = keys();
    let m = manifest(&keys, "manifests/valid.manifest");
    let id = hex::decode("240ac4000001").unwrap();
    let d = device(&id);
    assert_eq!(decide(&m, &d).unwrap().kind, OtaDecisionKind::Install);

    // Each field changes the outcome as the rules say: the C struct is read field by field.
    let mut up_to_date = device(&id);
    up_to_date.running_version = field("1.2.3");
    assert_eq!(
        decide(&m, &up_to_date).unwrap().kind,
        OtaDecisionKind::UpToDate
    );
    let mut replay = device(&id);
    replay.last_sequence = 8;
    assert_eq!(decide(&m, &replay), Err(OtaStatus::SequenceRollback));
    let mut fresh = device(&id);
    fresh.has_last_sequence = 0;
    fresh.last_sequence = 8; // ignored without the flag
    assert_eq!(decide(&m, &fresh).unwrap().kind, OtaDecisionKind::Install);
    let mut small = device(&id);
    small.slot_size = 100;
    assert_eq!(decide(&m, &small), Err(OtaStatus::TooLarge));

    for (what, bad) in [
        ("not semver", {
            let mut b = device(&id);
            b.running_version = field("1.2");
            b
        }),
        ("upper-case device type", {
            let mut b = device(&id);
            b.device_type = field("Thermostat");
            b
        }),
        ("channel without NUL", {
            let mut b = device(&id);
            b.channel = [b'a' as c_char; OTA_CHANNEL_BUF];
            b
        }),
        ("NULL id with a length", {
            let mut b = device(&id);
            b.device_id = ptr::null();
            b
        }),
    ] {
        let want = if what.starts_with("NULL") {
            OtaStatus::NullArgument
        } else {
            OtaStatus::InvalidArgument
        };
        assert_eq!(decide(&m, &bad), Err(want), "{what}");
    }
}

#[test]
fn payload_spans_tile_the_payload_and_finish_reports_the_header() {
    let keys = keys();
    let m = manifest(&keys, "manifests/valid.manifest");
    let image = read("images/valid.ota");
    let expect = OtaImageExpectations {
        manifest: &*m,
        device_type: field("thermostat"),
        has_chip: 1,
        chip: 5,
    };
    let mut state = Box::new(MaybeUninit::<OtaImageVerifier>::uninit());
    let st = unsafe { ota_image_verifier_init(state.as_mut_ptr(), &*keys, &expect) };
    assert_eq!(st, OtaStatus::Ok);
    let state = state.as_mut_ptr();
    let mut payload = Vec::new();
    let mut info = MaybeUninit::<OtaImageInfo>::uninit();
    assert_eq!(
        unsafe { ota_image_verifier_header(state, info.as_mut_ptr()) },
        OtaStatus::Truncated
    );
    for chunk in image.chunks(100) {
        let (mut off, mut len) = (0usize, 0usize);
        let st = unsafe {
            ota_image_verifier_update(state, chunk.as_ptr(), chunk.len(), &mut off, &mut len)
        };
        assert_eq!(st, OtaStatus::Ok);
        payload.extend_from_slice(&chunk[off..off + len]);
    }
    assert_eq!(
        unsafe { ota_image_verifier_finish(state, info.as_mut_ptr()) },
        OtaStatus::Ok
    );
    let info = unsafe { info.assume_init() };
    assert_eq!(payload, image[info.header_len as usize..]);
    assert_eq!(info.payload_size as usize, payload.len());
    assert_eq!(info.compression, 0);
    assert_eq!(text(&info.version), "1.2.3");
}
