//! The bodies of the fuzz targets: each calls the real parsers of `ota-format` (or the
//! device's TLS client, for `tls_records`) and checks the properties that must hold for
//! every input (agreement between the streaming and the whole-file verifier, canonical
//! re-encoding, never more payload than declared).
//! The targets in `fuzz_targets/` are one line each.
#![forbid(unsafe_code)]

use ota_format::*;

/// ota-sign's partition-table reader, from the library under the CLI.
pub use ota_sign_lib::flash::table as partition_table;

/// TEST ONLY key A of `format/tests/vectors` (its seed is public): the seed corpus is
/// signed with it, so mutated inputs reach code past the signature check.
const TEST_KEY_A: [u8; 32] = [
    0xe9, 0xe9, 0xd3, 0x5d, 0x90, 0x7a, 0xc5, 0x1b, 0xbf, 0xfc, 0xbf, 0xc6, 0x8d, 0xd1, 0x5c, 0xbb,
    0x66, 0xa7, 0x98, 0x6d, 0xef, 0x58, 0xba, 0x29, 0x9b, 0x40, 0xf8, 0x0f, 0xe5, 0x22, 0x00, 0xf4,
];
const TRUSTED: [TrustedKey; 1] = [TrustedKey::new(TEST_KEY_A)];

fn keys() -> TrustedKeys<'static> {
    TrustedKeys::new(&TRUSTED)
}

/// Manifest parse + verify + decide; a manifest that decodes re-encodes to its bytes.
pub fn manifest(data: &[u8]) {
    if let Ok(m) = Manifest::inspect(data) {
        let informational = u32::from_le_bytes([data[8], data[9], data[10], data[11]]) >> 16;
        if data.len() == MANIFEST_LEN && informational == 0 {
            let sig: [u8; SIGNATURE_LEN] = data[MANIFEST_LEN - SIGNATURE_LEN..].try_into().unwrap();
            assert_eq!(
                &m.assemble(&sig).unwrap()[..],
                data,
                "manifest is not canonical"
            );
        }
    }
    if let Ok(vm) = Manifest::verify(data, &keys()) {
        assert_eq!(Manifest::inspect(data), Ok(*vm.manifest()));
        let m = vm.manifest();
        let device = Device {
            device_type: m.device_type,
            chip: m.chip,
            channel: m.channel,
            running_version: Version::new(1, 0, 0),
            security_counter: 1,
            last_sequence: Some(1),
            device_id: data,
            now: Some(1_767_225_600),
            slot_size: 1 << 20,
        };
        if let Ok(Decision::NotInRollout { bucket, rollout }) = vm.decide(&device) {
            assert!(bucket >= rollout && bucket < FULL_ROLLOUT);
        }
    }
}

/// The streaming image verifier fed with chunk sizes taken from the first bytes; its
/// verdict must equal the whole-file verifier's, and it never hands out more payload than
/// the header declares.
pub fn image_stream(data: &[u8]) {
    let Some((&cut, file)) = data.split_first() else {
        return;
    };
    let whole = verify_image(file, keys(), Expectations::default()).map(|v| v.header);
    let mut v = ImageVerifier::new(keys(), Expectations::default());
    let mut handed_out = 0usize;
    let mut rest = file;
    let mut size = usize::from(cut) + 1;
    let mut streamed = Ok(());
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        size = size * 7 % 301 + 1;
        match v.feed(chunk) {
            Ok(p) => handed_out += p.len(),
            Err(e) => {
                streamed = Err(e);
                break;
            }
        }
        if let Some(h) = v.header() {
            assert!(v.payload_seen() <= h.info.payload_size);
        }
    }
    let streamed = streamed.and_then(|()| v.finish().map(|v| v.header));
    assert_eq!(whole, streamed);
    assert!(handed_out <= file.len().saturating_sub(IMAGE_HEADER_LEN));
    if let Ok((info, IMAGE_HEADER_LEN)) = inspect_header(file) {
        let sig: [u8; SIGNATURE_LEN] = file[IMAGE_HEADER_LEN - SIGNATURE_LEN..IMAGE_HEADER_LEN]
            .try_into()
            .unwrap();
        // Canonical except the extension area (0xB0..0xC0), which readers ignore.
        let mut expected = [0u8; IMAGE_HEADER_LEN];
        expected.copy_from_slice(&file[..IMAGE_HEADER_LEN]);
        expected[0xB0..IMAGE_HEADER_LEN - SIGNATURE_LEN].fill(0);
        assert_eq!(
            info.assemble(&sig).unwrap(),
            expected,
            "image header is not canonical"
        );
    }
}

/// Descriptor parse and firmware scan; a descriptor that parses re-encodes to its bytes.
pub fn descriptor(data: &[u8]) {
    if let Ok(d) = TrustedKeyDescriptor::parse(data) {
        assert_eq!(&d.to_bytes()[..], &data[..DESCRIPTOR_LEN]);
        assert!(!d.keys().is_empty());
    }
    let whole = TrustedKeyDescriptor::find_in(data);
    if let Ok(Some(d)) = whole {
        assert!(d.keys().len() <= MAX_TRUSTED_KEYS);
    }
    // The streaming scanner (what a device uses on its slot) must agree, whatever the
    // chunking; the first byte picks the chunk sizes.
    let Some(&cut) = data.first() else {
        return;
    };
    let mut scanner = DescriptorScanner::new();
    let mut size = usize::from(cut) + 1;
    let mut rest = data;
    let mut streamed = Ok(());
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        size = size * 7 % 601 + 1;
        if let Err(e) = scanner.update(chunk) {
            streamed = Err(e);
            break;
        }
    }
    let streamed = streamed.and_then(|()| scanner.finish());
    assert_eq!(streamed, whole, "chunked scan disagrees with find_in");
}

/// Version decode (32 bytes) and text parse; both round-trip.
pub fn version(data: &[u8]) {
    if let Ok(bytes) = <&[u8; 32]>::try_from(data)
        && let Ok(v) = Version::decode(bytes)
    {
        assert_eq!(&v.encode(), bytes);
    }
    if let Ok(text) = core::str::from_utf8(data)
        && let Some(v) = Version::parse(text)
    {
        // Display drops the `v` prefix and build metadata, which carry no precedence.
        let shown = std::string::ToString::to_string(&v);
        assert_eq!(Version::parse(&shown), Some(v));
        assert_eq!(Version::decode(&v.encode()), Ok(v));
    }
}

/// Records a hostile server sends after a real TLS 1.3 handshake (rustls), read by the
/// device's HTTP client and embedded-tls session; `ota_tls_peer::records_from_fuzz_input`
/// says how the bytes become records. Never more body comes out than the records held.
pub fn tls_records(data: &[u8]) {
    let records = ota_tls_peer::records_from_fuzz_input(data);
    if let ota_tls_peer::FetchOutcome::Answer { body, .. } = ota_tls_peer::fetch(records) {
        assert!(body.len() <= data.len(), "more body than the records carried");
    }
}

/// A partition table (CSV or binary) through ota-sign's reader. Whatever it accepts goes
/// through esp-idf-part's checks and encoders without a panic (what `ota-sign flash` does
/// with it) and reads back as the same partitions from the binary encoding, and from the
/// CSV one when the names need no quoting.
pub fn partition_table(data: &[u8]) {
    let Ok(parts) = partition_table::parse(data) else {
        return;
    };
    let table = esp_idf_part::PartitionTable::new(parts.clone());
    let _ = table.validate();
    let bin = table
        .to_bin()
        .expect("the reader accepts at most MAX_PARTITIONS");
    assert_eq!(
        partition_table::parse(&bin).as_ref(),
        Ok(&parts),
        "binary round trip"
    );
    let plain = |name: &str| {
        !name.starts_with('#')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    };
    if parts.iter().all(|p| plain(&p.name())) {
        let csv = table.to_csv().expect("CSV encodes");
        assert_eq!(
            partition_table::parse(csv.as_bytes()).as_ref(),
            Ok(&parts),
            "CSV round trip:\n{csv}"
        );
    }
}
