//! Element types: [`DType`] (a tensor's type on the GPU) and [`QuantType`] (a GGML block format,
//! as files store it and the quantized kernels read it). Plain data, no GPU.

/// Element type of a tensor as stored on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    /// IEEE half precision; kernels on f16 tensors need the adapter's `shader-f16`.
    F16,
    /// 32-bit signed integers (token ids, positions); I64 checkpoints are narrowed on load.
    I32,
}

impl DType {
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 => 2,
        }
    }

    /// Lower-case name, as JS and the benchmarks' JSON spell it: "f32", "f16", "i32".
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::I32 => "i32",
        }
    }

    /// The WGSL prelude of a kernel variant for this storage type: `T` names the element type.
    pub(crate) fn wgsl_prelude(self) -> &'static str {
        match self {
            DType::F32 => "alias T = f32;\n",
            DType::F16 => "enable f16;\nalias T = f16;\n",
            DType::I32 => "alias T = i32;\n",
        }
    }
}

/// A GGML block format, kept as the file stores it and dequantized inside the kernels: 32-element
/// blocks with an f16 scale (and minimum), or 256-element K-quant super-blocks of eight 32-element
/// blocks with 6- or 8-bit scales under an f16 scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum QuantType {
    /// `w = d · (q − 8)`, q 4-bit: 18 bytes a block (d, then 16 bytes of nibbles).
    Q4_0,
    /// `w = d · q + m`, q 4-bit: 20 bytes a block (d, m, then 16 bytes of nibbles).
    Q4_1,
    /// `w = d · q`, q signed 8-bit: 34 bytes a block (d, then 32 bytes).
    Q8_0,
    /// `w = d · (q − 16)`, q 5-bit: 22 bytes a block (d, the 32 fifth bits, 16 bytes of nibbles).
    Q5_0,
    /// `w = d · q + m`, q 5-bit: 24 bytes a block (d, m, the fifth bits, 16 bytes of nibbles).
    Q5_1,
    /// `w = d·sc · q − dmin·mn`, q 4-bit, 6-bit scale and min a 32-element block: 144 bytes / 256.
    Q4_K,
    /// As Q4_K with a fifth bit: 176 bytes / 256.
    Q5_K,
    /// `w = d·sc · (q − 32)`, q 6-bit, an 8-bit scale a 16 elements: 210 bytes / 256.
    Q6_K,
    /// `w = d · kvalues[q]`, q 4-bit into a fixed non-linear table: 18 bytes a block.
    IQ4_NL,
    /// `w = d·sc · q − dmin·mn`, q 2-bit, 4-bit scale and min a 16 elements: 84 bytes / 256.
    Q2_K,
    /// `w = d·sc · q`, q 3-bit signed (−4..3), a 6-bit signed scale a 16 elements: 110 bytes / 256.
    Q3_K,
}

impl QuantType {
    /// Every format, in GGML's type-id order.
    pub const ALL: [QuantType; 11] = [
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q8_0,
        QuantType::Q2_K,
        QuantType::Q3_K,
        QuantType::Q4_K,
        QuantType::Q5_K,
        QuantType::Q6_K,
        QuantType::IQ4_NL,
    ];

    /// From GGML's type id (`ggml_type`), for the block formats this library reads.
    pub fn from_ggml(id: u32) -> Option<QuantType> {
        QuantType::ALL.into_iter().find(|q| q.ggml_id() == id)
    }

    /// GGML's type id.
    pub fn ggml_id(self) -> u32 {
        match self {
            QuantType::Q4_0 => 2,
            QuantType::Q4_1 => 3,
            QuantType::Q5_0 => 6,
            QuantType::Q5_1 => 7,
            QuantType::Q8_0 => 8,
            QuantType::Q2_K => 10,
            QuantType::Q3_K => 11,
            QuantType::Q4_K => 12,
            QuantType::Q5_K => 13,
            QuantType::Q6_K => 14,
            QuantType::IQ4_NL => 20,
        }
    }

    /// Elements a block (a super-block for the K-quants): rows are whole blocks.
    pub fn block_elems(self) -> u64 {
        match self {
            QuantType::Q2_K
            | QuantType::Q3_K
            | QuantType::Q4_K
            | QuantType::Q5_K
            | QuantType::Q6_K => 256,
            _ => 32,
        }
    }

    pub fn block_bytes(self) -> u64 {
        match self {
            QuantType::Q4_0 | QuantType::IQ4_NL => 18,
            QuantType::Q4_1 => 20,
            QuantType::Q5_0 => 22,
            QuantType::Q5_1 => 24,
            QuantType::Q8_0 => 34,
            QuantType::Q2_K => 84,
            QuantType::Q3_K => 110,
            QuantType::Q4_K => 144,
            QuantType::Q5_K => 176,
            QuantType::Q6_K => 210,
        }
    }

    /// GGML's name: "q4_0", "q4_k", "iq4_nl" ...
    pub fn name(self) -> &'static str {
        match self {
            QuantType::Q4_0 => "q4_0",
            QuantType::Q4_1 => "q4_1",
            QuantType::Q5_0 => "q5_0",
            QuantType::Q5_1 => "q5_1",
            QuantType::Q8_0 => "q8_0",
            QuantType::Q2_K => "q2_k",
            QuantType::Q3_K => "q3_k",
            QuantType::Q4_K => "q4_k",
            QuantType::Q5_K => "q5_k",
            QuantType::Q6_K => "q6_k",
            QuantType::IQ4_NL => "iq4_nl",
        }
    }

    /// Bytes of a `[rows, cols]` matrix (cols a whole number of blocks).
    pub fn bytes_for(self, elements: u64) -> u64 {
        elements / self.block_elems() * self.block_bytes()
    }
}
