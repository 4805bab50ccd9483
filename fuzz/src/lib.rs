//! The bodies of the fuzz targets: each calls the real parsers of `ota-format` (or the
//! device's TLS client, for `tls_records`) and checks the properties that must hold for
//! every input (agreement between the streaming and the whole-file verifier, canonical
//! re-encoding, never more payload than declared).
//! The targets in `fuzz_targets/` are one line each.
#![forbid(unsafe_code)]

mod http_plain;

use ota_format::*;

/// ota-sign's partition-table reader, from the library under the CLI.
pub use ota_sign_lib::flash::table as partition_table;

/// The flash-window zstd decoder against libzstd.
pub mod zstd_decoder;

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

/// Feeds `file` to a streaming verifier in chunk sizes derived from `cut` (the input's
/// first byte), stopping at the first error; returns the bytes handed out as payload.
fn feed_in_chunks(
    cut: u8,
    file: &[u8],
    mut feed: impl FnMut(&[u8]) -> Result<usize, FormatError>,
) -> Result<usize, FormatError> {
    let mut handed_out = 0usize;
    let mut rest = file;
    let mut size = usize::from(cut) + 1;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        size = size * 7 % 301 + 1;
        handed_out += feed(chunk)?;
    }
    Ok(handed_out)
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
    let streamed = feed_in_chunks(cut, file, |chunk| {
        let payload = v.feed(chunk)?.len();
        if let Some(h) = v.header() {
            assert!(v.payload_seen() <= h.info.payload_size);
        }
        Ok(payload)
    });
    let handed_out = streamed.unwrap_or(0);
    let streamed = streamed.and_then(|_| v.finish().map(|v| v.header));
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

/// The streaming delta verifier, as [`image_stream`]: chunking never changes the verdict,
/// no payload byte is handed out before both headers passed, never more than declared;
/// a delta header that decodes re-encodes canonically.
pub fn delta_stream(data: &[u8]) {
    let Some((&cut, file)) = data.split_first() else {
        return;
    };
    let whole = verify_delta(file, keys(), DeltaExpectations::default());
    let mut v = DeltaVerifier::new(keys(), DeltaExpectations::default());
    let streamed = feed_in_chunks(cut, file, |chunk| {
        let payload = v.feed(chunk)?.len();
        if payload > 0 {
            assert!(v.delta_header().is_some() && v.target_header().is_some());
        }
        if let Some(d) = v.delta_header() {
            assert!(v.payload_seen() <= d.info.payload_size);
        }
        Ok(payload)
    });
    let streamed = streamed.and_then(|_| v.finish());
    assert_eq!(whole, streamed);
    if let Ok(verified) = whole {
        let expected = verified.delta.header_len()
            + verified.target.header_len()
            + verified.delta.info.payload_size as usize;
        assert_eq!(file.len(), expected);
    }
    if let Ok((info, DELTA_HEADER_LEN)) = inspect_delta_header(file) {
        let sig: [u8; SIGNATURE_LEN] = file[DELTA_HEADER_LEN - SIGNATURE_LEN..DELTA_HEADER_LEN]
            .try_into()
            .unwrap();
        // Canonical except the extension area (0xA0..0xC0, with encoding 3 0xA4..0xC0:
        // the stream size comes first), which readers ignore.
        let extension = match info.encoding {
            DeltaEncoding::PatchFrom => 0xA0,
            DeltaEncoding::Difference { .. } => 0xA4,
        };
        let mut expected = [0u8; DELTA_HEADER_LEN];
        expected.copy_from_slice(&file[..DELTA_HEADER_LEN]);
        expected[extension..DELTA_HEADER_LEN - SIGNATURE_LEN].fill(0);
        assert_eq!(
            info.assemble(&sig).unwrap(),
            expected,
            "delta header is not canonical"
        );
    }
}

/// Applies `stream` to `base` with a [`diff::DiffPatcher`], asking for the target in
/// pieces of the sizes `pieces` yields; the target, or the first refusal.
fn patch_in_pieces(
    stream: &[u8],
    base: &[u8],
    image_size: u32,
    mut pieces: impl FnMut() -> usize,
) -> Result<Vec<u8>, diff::DiffCorruption> {
    let base_size = u32::try_from(base.len()).unwrap();
    let stream_size = u32::try_from(stream.len()).unwrap();
    let mut patcher = diff::DiffPatcher::new(image_size, base_size, stream_size)?;
    let mut source = diff::SliceSource {
        stream,
        base,
        control_offset: diff::control_offset(image_size),
    };
    // `new` accepted the stream, so it holds at least `image_size` bytes: the output is
    // bounded by the input.
    let mut out = vec![0u8; image_size as usize];
    let mut at = 0;
    while at < out.len() {
        let n = pieces().clamp(1, out.len() - at);
        match patcher.fill(&mut source, &mut out[at..at + n]) {
            Ok(()) => at += n,
            Err(diff::DiffError::Corrupt(e)) => return Err(e),
            Err(diff::DiffError::Source(e)) => {
                panic!("the patcher read outside the stream or the base: {e:?}")
            }
        }
        assert_eq!(patcher.produced() as usize, at);
    }
    patcher.finish()?;
    Ok(out)
}

/// A difference stream (delta encoding 3) applied by [`diff::DiffPatcher`]. The input is
/// a piece-size byte, the image size (`u32` LE), the base length (`u16` LE), the base,
/// then the stream. Whatever the bytes: no panic, no read outside the stream or the base,
/// a success gives exactly `image_size` bytes, and the outcome (target or error) is the
/// same whether the target is asked for in varying pieces or whole.
pub fn diff_patch(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<7>() else {
        return;
    };
    let cut = head[0];
    let image_size = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    let base_len = usize::from(u16::from_le_bytes([head[5], head[6]])).min(rest.len());
    let (base, stream) = rest.split_at(base_len);
    let mut size = usize::from(cut) + 1;
    let pieces = patch_in_pieces(stream, base, image_size, || {
        let n = size;
        size = size * 7 % 4099 + 1;
        n
    });
    let whole = patch_in_pieces(stream, base, image_size, || usize::MAX);
    assert_eq!(pieces, whole, "the piece sizes changed the outcome");
    if let Ok(target) = whole {
        assert_eq!(target.len(), image_size as usize);
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
        assert!(
            body.len() <= data.len(),
            "more body than the records carried"
        );
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

/// A plain-HTTP server's every byte (after one byte that seeds the read sizes), read by
/// the device's client as the agent reads a manifest: redirects followed, the body read
/// to its end. Never more body than the server sent, never more than a declared
/// `Content-Length`, never more connections than the redirect bound allows.
pub fn http_response(data: &[u8]) {
    let Some((&read_sizes, server)) = data.split_first() else {
        return;
    };
    let fetch = http_plain::fetch_plain(read_sizes, server);
    assert!(
        fetch.connections <= ota_agent::http::MAX_REDIRECTS + 1,
        "{} connections",
        fetch.connections
    );
    if let Ok((_, content_length, body)) = fetch.answer {
        assert!(body.len() <= server.len(), "more body than the server sent");
        if let Some(declared) = content_length {
            assert!(
                body.len() as u64 <= declared,
                "body beyond its Content-Length"
            );
        }
    }
}

/// URL parsing and the two resolutions the agent does: a redirect's `Location` against
/// the URL that answered, and an image name beside the manifest's URL. The input is
/// `base NUL reference`; whatever resolves is itself a URL the client can connect to, and
/// a sibling stays on the manifest's host.
pub fn url(data: &[u8]) {
    use ota_agent::url::{Url, resolve_location, resolve_sibling};
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let (base, reference) = text.split_once('\0').unwrap_or((text, ""));
    let Ok(parsed) = Url::parse(base) else {
        return;
    };
    assert!(!parsed.host.is_empty() && parsed.port != 0 && parsed.path.starts_with('/'));
    let mut buf = [0u8; ota_agent::http1::URL_BUFFER_LEN];
    if let Ok(location) = resolve_location(base, reference, &mut buf) {
        Url::parse(location).expect("a resolved Location is a usable URL");
    }
    if let Ok(sibling) = resolve_sibling(base, reference, &mut buf) {
        let resolved = Url::parse(sibling).expect("a sibling is a usable URL");
        assert_eq!((resolved.host, resolved.port), (parsed.host, parsed.port));
        assert!(
            resolved.path.ends_with(reference),
            "{sibling} does not end in {reference}"
        );
    }
}

/// The agent's state region (two halves of one sector each) filled from the input: one
/// byte says which halves get a valid CRC (a fuzzer cannot compute one), then each half's
/// record. Whatever `StateStore::open` makes of it, saving that state and opening again
/// gives the same state back, and a save never disturbs the half holding it.
pub fn state_record(data: &[u8]) {
    use ota_agent::crc::crc32_le;
    use ota_agent::geometry::Region;
    use ota_agent::state::{RECORD_LEN, StateStore};
    const HALF: usize = 4096;
    let Some((&seal, records)) = data.split_first() else {
        return;
    };
    let mut flash = ota_flash_sim::SimFlash::new(2 * HALF);
    for (half, record) in records.chunks(RECORD_LEN).take(2).enumerate() {
        let at = half * HALF;
        let bytes = &mut flash.bytes_mut()[at..at + RECORD_LEN];
        bytes[..record.len()].copy_from_slice(record);
        if seal & (1 << half) != 0 {
            let crc = crc32_le(0, &bytes[..RECORD_LEN - 4]);
            bytes[RECORD_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let region = Region {
        offset: 0,
        size: 2 * HALF as u32,
    };
    let (mut store, state) = StateStore::open(&mut flash, region).expect("the region fits");
    store.save(&mut flash, &state).expect("the flash works");
    let (_, reopened) = StateStore::open(&mut flash, region).expect("the region fits");
    assert_eq!(reopened, state, "a saved state reads back as itself");
}
