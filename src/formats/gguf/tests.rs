//! The GGUF parser against hand-built headers: every value type, alignment, bad and hostile input.

use super::*;

/// Builds a GGUF image: metadata of (key, type, value bytes) and tensors of (name, dims, type).
fn image(kv: &[(&str, u32, Vec<u8>)], tensors: &[(&str, &[u64], u32, u64)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(MAGIC.to_le_bytes());
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend((kv.len() as u64).to_le_bytes());
    let s = |b: &mut Vec<u8>, s: &str| {
        b.extend((s.len() as u64).to_le_bytes());
        b.extend(s.as_bytes());
    };
    for (k, t, v) in kv {
        s(&mut b, k);
        b.extend(t.to_le_bytes());
        b.extend(v);
    }
    for (name, dims, t, off) in tensors {
        s(&mut b, name);
        b.extend((dims.len() as u32).to_le_bytes());
        for d in *dims {
            b.extend(d.to_le_bytes());
        }
        b.extend(t.to_le_bytes());
        b.extend(off.to_le_bytes());
    }
    b
}

fn string_value(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend(s.as_bytes());
    v
}

/// `general.alignment` of any integer type: the skim (which sizes the header a stream copies) and
/// the parser agree on where the data starts, and both refuse what is not a power of two.
#[test]
fn skim_and_parse_read_the_alignment_alike() {
    let cases: [(u32, Vec<u8>); 4] = [
        (4, 64u32.to_le_bytes().to_vec()),
        (10, 64u64.to_le_bytes().to_vec()),
        (2, 128u16.to_le_bytes().to_vec()),
        (11, 256i64.to_le_bytes().to_vec()),
    ];
    for (kind, value) in cases {
        let bytes = image(&[("general.alignment", kind, value)], &[("w", &[32], 0, 0)]);
        let header = Header::parse("t", &bytes).unwrap().unwrap();
        let skim = Header::data_start("t", &bytes).unwrap().unwrap();
        assert_eq!(skim, header.data_start, "type {kind}");
        assert_eq!(header.data_start % header.alignment, 0);
        assert!(header.alignment >= 64);
    }
    for (kind, value) in [(10, 48u64.to_le_bytes().to_vec()), (8, string_value("64"))] {
        let bytes = image(&[("general.alignment", kind, value)], &[("w", &[32], 0, 0)]);
        assert!(Header::parse("t", &bytes).is_err(), "type {kind}");
        assert!(Header::data_start("t", &bytes).is_err(), "type {kind}");
    }
}

#[test]
fn parses_metadata_and_tensors_in_row_major_order() {
    let bytes = image(
        &[
            ("general.architecture", 8, string_value("llama")),
            ("llama.block_count", 4, 2u32.to_le_bytes().to_vec()),
        ],
        &[("w", &[64, 3], 3, 32), ("n", &[5], 0, 0)],
    );
    let h = Header::parse("t", &bytes).unwrap().unwrap();
    assert_eq!(h.architecture(), Some("llama"));
    assert_eq!(h.metadata["llama.block_count"].as_u64(), Some(2));
    assert_eq!(h.entries[0].name, "n");
    assert_eq!((h.entries[0].start, h.entries[0].end), (0, 20));
    let w = &h.entries[1];
    assert_eq!(w.shape, [3, 64]);
    assert_eq!(w.dtype, Stored::Quant(QuantType::Q4_1));
    assert_eq!(w.bytes(), 3 * 2 * 20);
    assert_eq!(h.data_start, (bytes.len() as u64).next_multiple_of(32));
    // Every proper prefix asks for more.
    for cut in [0, 3, 10, bytes.len() - 1] {
        assert!(
            Header::parse("t", &bytes[..cut]).unwrap().is_none(),
            "{cut}"
        );
    }
}

#[test]
fn refuses_bad_headers() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"GGML\x03\0\0\0".to_vec(), "not a GGUF"),
        (image(&[("k", 99, vec![])], &[]), "unknown value type"),
        (image(&[], &[("w", &[33, 2], 3, 0)]), "whole number"),
        (image(&[], &[("w", &[4], 0, 4)]), "alignment"),
        (
            image(&[], &[("a", &[16], 0, 0), ("b", &[4], 0, 32)]),
            "overlap",
        ),
        (
            image(&[], &[("a", &[4], 0, 0), ("a", &[4], 0, 32)]),
            "twice",
        ),
        (image(&[], &[("w", &[4], 77, 0)]), "GGML type 77"),
        (
            image(&[], &[("w", &[256], 16, 0)]),
            "`w` has dtype IQ2_XXS (GGML type 16)",
        ),
        (image(&[], &[("w", &[u64::MAX, 4], 0, 0)]), "too large"),
        (image(&[], &[("w", &[], 0, 0)]), "0 dimensions"),
        // A tensor that fits 2^64 on its own, not after the header (fuzzing found it).
        (
            image(&[], &[("w", &[4], 0, 0xFFFF_FFFF_FFFF_FFE0)]),
            "past 2^64",
        ),
    ];
    for (bytes, needle) in cases {
        let err = Header::parse("t", &bytes).unwrap_err().to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
    // A count no header could hold is refused rather than waited for.
    let mut b = MAGIC.to_le_bytes().to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(u64::MAX.to_le_bytes());
    assert!(Header::parse("t", &b).is_err());
}

#[test]
fn file_length_allows_padding_only() {
    let bytes = image(&[], &[("n", &[5], 0, 0)]);
    let h = Header::parse("t", &bytes).unwrap().unwrap();
    let end = h.file_len();
    assert!(h.check_file_len("t", end).is_ok());
    assert!(h.check_file_len("t", end + 12).is_ok());
    assert!(h.check_file_len("t", end - 1).is_err());
    assert!(h.check_file_len("t", end + 64).is_err());
}
