//! `ota-zstd`'s decoder against libzstd on arbitrary input.

use ota_zstd::{Decoder, DecoderConfig, SliceOutput};
use std::io::Read;

/// Output cap for both decoders: bounds memory and time per input.
const MAX_OUTPUT: usize = 1 << 20;

/// First byte = chunk size (1-256), rest = the compressed stream. Never a panic; when
/// `ota-zstd` decodes the input, libzstd decodes it too, to the same bytes. (The reverse
/// does not hold by design: `ota-zstd` refuses blocks larger than its block buffer,
/// Huffman codes of 12 bits and streams with unread bits that libzstd tolerates.)
pub fn zstd_decoder(data: &[u8]) {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk) + 1;
    let mut buf = vec![0u8; MAX_OUTPUT];
    let mut out = SliceOutput::new(&mut buf);
    let mut decoder = Box::new(Decoder::<4096, 8192>::new(DecoderConfig::DEFAULT));
    let mut result = Ok(());
    for piece in input.chunks(chunk) {
        result = decoder.feed(piece, &mut out);
        if result.is_err() {
            break;
        }
    }
    let ours = result.and_then(|()| decoder.finish(&mut out));
    if let Ok(len) = ours {
        let ours = out.written();
        assert_eq!(len as usize, ours.len());
        let reference = reference(input).expect("ota-zstd decoded what libzstd refuses");
        assert!(reference == ours, "outputs differ");
    }
}

fn reference(input: &[u8]) -> Option<Vec<u8>> {
    let decoder = zstd::stream::read::Decoder::with_buffer(input).ok()?;
    let mut output = Vec::new();
    decoder
        .take(MAX_OUTPUT as u64 + 1)
        .read_to_end(&mut output)
        .ok()?;
    Some(output)
}
