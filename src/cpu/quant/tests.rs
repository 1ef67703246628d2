//! Every format against the `gguf` package's dequantizer (tests/goldens/quants, written by
//! scripts/goldens_quants.py); tests/quant.rs checks the products (natively and in the browser).

use super::*;

/// The golden blocks of `qtype` and their values.
fn golden(qtype: QuantType) -> (&'static [u8], Vec<f32>) {
    macro_rules! files {
        ($name:literal) => {
            (
                include_bytes!(concat!("../../../tests/goldens/quants/", $name, ".blocks"))
                    .as_slice(),
                include_bytes!(concat!("../../../tests/goldens/quants/", $name, ".f32")).as_slice(),
            )
        };
    }
    let (blocks, values) = match qtype {
        QuantType::Q4_0 => files!("q4_0"),
        QuantType::Q4_1 => files!("q4_1"),
        QuantType::Q5_0 => files!("q5_0"),
        QuantType::Q5_1 => files!("q5_1"),
        QuantType::Q8_0 => files!("q8_0"),
        QuantType::Q4_K => files!("q4_k"),
        QuantType::Q5_K => files!("q5_k"),
        QuantType::Q6_K => files!("q6_k"),
        QuantType::IQ4_NL => files!("iq4_nl"),
        QuantType::Q2_K => files!("q2_k"),
        QuantType::Q3_K => files!("q3_k"),
    };
    (blocks, bytemuck::pod_collect_to_vec(values))
}

/// `[rows, cols]` blocks of `qtype` (a prefix of the goldens) and their values.
fn matrix(qtype: QuantType, rows: usize, cols: usize) -> (HostQTensor, Vec<f32>) {
    let (blocks, values) = golden(qtype);
    let bytes = qtype.bytes_for((rows * cols) as u64) as usize;
    let w = HostQTensor::from_blocks(&blocks[..bytes], &[rows, cols], qtype).unwrap();
    (w, values[..rows * cols].to_vec())
}

/// Same values as the golden dequantizer, to f32 rounding (the golden computes `d·q + m` in numpy's
/// f32 in another order: a few ulp of the largest term, ~1e-7 here).
#[test]
fn every_format_decodes_as_gguf_does() {
    for qtype in QuantType::ALL {
        let (blocks, want) = golden(qtype);
        let mut got = vec![0f32; want.len()];
        groups::dequantize(qtype, blocks, &mut got);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs() / (1.0 + w.abs()))
            .fold(0f32, f32::max);
        assert!(
            worst <= 1e-6,
            "{qtype:?}: worst relative difference {worst}"
        );
    }
}

#[test]
fn gather_and_dequantize() {
    let (w, values) = matrix(QuantType::Q4_K, 5, 512);
    let rows = w.gather(&[3, 0, 3]).unwrap();
    assert_eq!(rows.shape(), [3, 512]);
    let rows = rows.to_vec().unwrap();
    for (i, &r) in [3usize, 0, 3].iter().enumerate() {
        let want = &values[r * 512..(r + 1) * 512];
        let got = &rows[i * 512..(i + 1) * 512];
        assert!(
            got.iter()
                .zip(want)
                .all(|(g, w)| (g - w).abs() <= 1e-6 * (1.0 + w.abs()))
        );
    }
    let err = w.gather(&[5]).unwrap_err().to_string();
    assert!(err.contains("token id 5") && err.contains("5-row"), "{err}");
    assert!(w.gather(&[-1]).is_err());
    let all = w.dequantize().unwrap();
    assert_eq!(all.shape(), [5, 512]);
    // Misshapen: rows not whole blocks, or more bytes asked than given.
    let (blocks, _) = golden(QuantType::Q8_0);
    assert!(HostQTensor::from_blocks(&blocks[..34], &[1, 48], QuantType::Q8_0).is_err());
    assert!(HostQTensor::from_blocks(&blocks[..34], &[2, 32], QuantType::Q8_0).is_err());
}
