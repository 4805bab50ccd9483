//! Property tests over random inputs: parsers never panic, encodings round-trip and are
//! canonical, and the streaming verifier never hands out more than the declared payload.

mod common;

use common::*;
use ota_format::*;
use proptest::prelude::*;

fn arb_name(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-z0-9][a-z0-9_-]{{0,{}}}", max - 1)).unwrap()
}

fn arb_version() -> impl Strategy<Value = Version> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        proptest::option::of("(0|[1-9][0-9]{0,3}|[a-zA-Z-][0-9a-zA-Z-]{0,3})(\\.(0|[1-9][0-9]{0,2}|[a-zA-Z-]{1,3})){0,2}"),
    )
        .prop_map(|(a, b, c, pre)| {
            let text = match pre {
                Some(p) => format!("{a}.{b}.{c}-{p}"),
                None => format!("{a}.{b}.{c}"),
            };
            Version::parse(&text).unwrap_or_else(|| panic!("{text}"))
        })
}

fn arb_info() -> impl Strategy<Value = ImageInfo> {
    (
        arb_name(32),
        any::<u16>(),
        arb_version(),
        any::<(u64, u64)>(),
        1..=MAX_IMAGE_SIZE,
        1..=MAX_PAYLOAD_SIZE,
        proptest::option::of(10u8..=31),
        any::<([u8; 32], [u8; 32])>(),
        any::<u16>(),
    )
        .prop_map(
            |(t, chip, version, (counter, created), image, payload, zstd, (ph, ih), info_flags)| {
                let (payload_size, compression, image_sha256) = match zstd {
                    Some(window_log) => (payload, Compression::Zstd { window_log }, ih),
                    None => (image, Compression::None, ph),
                };
                ImageInfo {
                    device_type: DeviceType::new(&t).unwrap(),
                    chip: ChipId(chip),
                    version,
                    security_counter: counter,
                    created,
                    image_size: image,
                    payload_size,
                    compression,
                    payload_sha256: ph,
                    image_sha256,
                    key_id: KeyId::of(&pk(&key_a())),
                    flags: u32::from(info_flags) << 16,
                }
            },
        )
}

fn arb_manifest() -> impl Strategy<Value = Manifest> {
    (
        (arb_name(32), arb_name(16), any::<u16>(), arb_version()),
        any::<(u64, u64, u64)>(),
        proptest::option::of(1u64..),
        (0..=FULL_ROLLOUT, 257u32..=16_843_776, 1..=MAX_IMAGE_SIZE),
        any::<[u8; 32]>(),
        (proptest::option::of(arb_version()), any::<bool>()),
        "[A-Za-z0-9_+-][A-Za-z0-9_+-]{0,20}(\\.[A-Za-z0-9_+-]{1,10}){0,3}",
    )
        .prop_map(
            |(
                (t, c, chip, version),
                (counter, sequence, created),
                not_after,
                sizes,
                h,
                flags,
                name,
            )| {
                Manifest {
                    device_type: DeviceType::new(&t).unwrap(),
                    chip: ChipId(chip),
                    channel: Channel::new(&c).unwrap(),
                    version,
                    security_counter: counter,
                    sequence,
                    created,
                    not_after,
                    rollout: sizes.0,
                    image_file_size: sizes.1,
                    image_size: sizes.2,
                    image_header_sha256: h,
                    min_running_version: flags.0,
                    allow_downgrade: flags.1,
                    image_name: ImageName::new(&name).unwrap(),
                    key_id: KeyId::of(&pk(&key_a())),
                }
            },
        )
}

/// Random bytes, sometimes behind a valid prefix so the parsers get past the magic.
fn arb_input(magic: &'static [u8; 4], len: u16) -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..1400),
    )
        .prop_map(move |(prefixed, mut bytes)| {
            if prefixed && bytes.len() >= 8 {
                bytes[..4].copy_from_slice(magic);
                bytes[4..6].copy_from_slice(&1u16.to_le_bytes());
                bytes[6..8].copy_from_slice(&len.to_le_bytes());
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn image_parsers_never_panic(bytes in arb_input(b"OTAI", 256), cut in 1usize..64) {
        let trusted = trusted();
        let keys = TrustedKeys::new(&trusted);
        let whole = verify_image(&bytes, keys, Expectations::default());
        let _ = inspect_header(&bytes);
        let mut v = ImageVerifier::new(keys, Expectations::default());
        let mut handed_out = 0usize;
        let mut streamed = Ok(());
        for chunk in bytes.chunks(cut) {
            match v.feed(chunk) {
                Ok(p) => handed_out += p.len(),
                Err(e) => { streamed = Err(e); break; }
            }
        }
        let streamed = streamed.and_then(|()| v.finish().map(drop));
        prop_assert_eq!(whole.map(drop), streamed);
        prop_assert!(handed_out <= bytes.len().saturating_sub(IMAGE_HEADER_LEN));
    }

    #[test]
    fn manifest_parsers_never_panic(bytes in arb_input(b"OTAM", 368)) {
        let trusted = trusted();
        let verified = Manifest::verify(&bytes, &TrustedKeys::new(&trusted));
        let inspected = Manifest::inspect(&bytes);
        // Verification is inspection plus a signature: it never accepts more.
        if let Ok(vm) = verified {
            prop_assert_eq!(inspected, Ok(*vm.manifest()));
        }
    }

    #[test]
    fn descriptor_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), at in 0usize..300) {
        let _ = TrustedKeyDescriptor::parse(&bytes);
        let mut with_magic = bytes.clone();
        if with_magic.len() >= at + 16 {
            with_magic[at..at + 16].copy_from_slice(&DESCRIPTOR_MAGIC);
        }
        let _ = TrustedKeyDescriptor::find_in(&with_magic);
        if let Ok(d) = TrustedKeyDescriptor::parse(&bytes) {
            // A descriptor that parses is canonical: it re-encodes to the same bytes.
            prop_assert_eq!(&d.to_bytes()[..], &bytes[..DESCRIPTOR_LEN]);
        }
    }

    #[test]
    fn version_and_name_decoding_is_canonical(bytes in any::<[u8; 32]>(), pad in 0usize..32) {
        // Mostly-zero inputs reach the interesting cases (padding, short strings).
        let mut sparse = bytes;
        sparse[32 - pad..].fill(0);
        for b in [bytes, sparse] {
            if let Ok(v) = Version::decode(&b) {
                prop_assert_eq!(v.encode(), b);
                prop_assert_eq!(Version::parse(&v.to_string()), Some(v));
            }
            if let Ok(n) = DeviceType::decode(&b, FieldError::DeviceType) {
                prop_assert_eq!(n.encode(), b);
                prop_assert_eq!(DeviceType::new(n.as_str()), Some(n));
            }
        }
    }

    #[test]
    fn version_parse_never_panics(s in "\\PC{0,40}") {
        if let Some(v) = Version::parse(&s) {
            prop_assert_eq!(Version::decode(&v.encode()), Ok(v));
        }
    }

    #[test]
    fn version_order_is_a_total_order_consistent_with_equality(a in arb_version(), b in arb_version(), c in arb_version()) {
        prop_assert_eq!(a.cmp(&b) == core::cmp::Ordering::Equal, a == b);
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
        prop_assert_eq!(Version::decode(&a.encode()), Ok(a));
        prop_assert_eq!(Version::parse(&a.to_string()), Some(a));
    }
}

proptest! {
    // Signing in a debug build costs milliseconds: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn image_headers_round_trip(info in arb_info()) {
        let header = info.sign(&key_a()).unwrap();
        prop_assert_eq!(inspect_header(&header), Ok((info, IMAGE_HEADER_LEN)));
        let mut signed = info.signing_message().unwrap().as_bytes().to_vec();
        prop_assert_eq!(&signed[..IMAGE_DOMAIN.len()], IMAGE_DOMAIN);
        signed.drain(..IMAGE_DOMAIN.len());
        prop_assert_eq!(&signed[..], &header[..IMAGE_HEADER_LEN - SIGNATURE_LEN]);
        // Verified through the streaming verifier: header accepted, payload still owed.
        let trusted = trusted();
        let mut v = ImageVerifier::new(TrustedKeys::new(&trusted), Expectations::default());
        prop_assert!(v.feed(&header).unwrap().is_empty());
        prop_assert_eq!(v.header().map(|h| h.info), Some(info));
        prop_assert_eq!(v.finish().unwrap_err(), FormatError::Truncated);
    }

    #[test]
    fn manifests_round_trip(m in arb_manifest()) {
        let bytes = m.sign(&key_a()).unwrap();
        let trusted = trusted();
        let vm = Manifest::verify(&bytes, &TrustedKeys::new(&trusted)).unwrap();
        prop_assert_eq!(vm.manifest(), &m);
        prop_assert_eq!(Manifest::inspect(&bytes), Ok(m));
    }

    #[test]
    fn the_verifier_never_hands_out_more_than_the_declared_payload(
        payload in proptest::collection::vec(any::<u8>(), 1..400),
        extra in proptest::collection::vec(any::<u8>(), 0..40),
        cuts in proptest::collection::vec(1usize..97, 1..20),
    ) {
        let file = image(&info_for(&payload, &key_a()), &key_a(), &payload);
        let mut input = file.clone();
        input.extend_from_slice(&extra);
        let trusted = trusted();
        let mut v = ImageVerifier::new(TrustedKeys::new(&trusted), Expectations::default());
        let mut out = Vec::new();
        let mut rest = &input[..];
        let mut i = 0;
        let mut failed = None;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(cuts[i % cuts.len()].min(rest.len()));
            rest = tail;
            i += 1;
            match v.feed(chunk) {
                Ok(p) => out.extend_from_slice(p),
                Err(e) => { failed = Some(e); break; }
            }
            prop_assert!(v.payload_seen() as usize <= payload.len());
        }
        prop_assert!(out.len() <= payload.len());
        prop_assert_eq!(&out[..], &payload[..out.len()]);
        if extra.is_empty() {
            prop_assert_eq!(failed, None);
            prop_assert_eq!(out, payload);
            prop_assert!(v.finish().is_ok());
        } else {
            prop_assert_eq!(failed, Some(FormatError::TrailingBytes));
            prop_assert_eq!(v.finish().unwrap_err(), FormatError::TrailingBytes);
        }
    }
}
