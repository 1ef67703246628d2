//! Embedding gather, `shaders/embedding.wgsl`: token (+ token type) (+ position) embeddings.

use crate::error::{Error, Result};
use crate::gpu::KernelSource;
use crate::kernels::{check_dtypes, grid_1d, require_whole, to_u32};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

const SHADER: &str = include_str!("../../shaders/embedding.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    total: u32,
    hidden: u32,
    vocab: u32,
    seq: u32,
    pos0: u32,
    n_positions: u32,
    n_types: u32,
    _pad: u32,
}

/// The optional extra tables BERT adds to the token embedding.
#[derive(Clone, Copy, Default)]
pub struct Extras<'a> {
    /// `[max_positions, hidden]`: row `pos0 + s` is added at sequence index `s`.
    pub positions: Option<&'a Tensor>,
    pub pos0: usize,
    /// `(type_ids [batch, seq] i32, table [n_types, hidden])`.
    pub token_types: Option<(&'a Tensor, &'a Tensor)>,
}

/// `table[ids]` for i32 `ids` of shape `[batch, seq]`, plus the [`Extras`], as `[batch, seq, hidden]`.
/// Ids outside the table are clamped into it (validate ids before uploading them).
pub fn embedding(
    rec: &mut Recorder,
    ids: &Tensor,
    table: &Tensor,
    extras: Extras<'_>,
) -> Result<Tensor> {
    const OP: &str = "embedding";
    let gpu = rec.gpu().clone();
    let &[vocab, hidden] = table.shape() else {
        return Err(Error::shape(
            OP,
            format!("table must be [vocab, hidden], got {:?}", table.shape()),
        ));
    };
    let &[batch, seq] = ids.shape() else {
        return Err(Error::shape(
            OP,
            format!("ids must be [batch, seq], got {:?}", ids.shape()),
        ));
    };
    let int_ids = std::iter::once(ids).chain(extras.token_types.map(|(t, _)| t));
    if let Some(t) = int_ids.clone().find(|t| t.dtype() != DType::I32) {
        return Err(Error::DType {
            op: OP,
            message: "ids must be i32".into(),
            got: t.dtype(),
        });
    }
    let pos = extras.positions.unwrap_or(table);
    let (type_ids, types) = extras.token_types.unwrap_or((ids, table));
    let dtype = check_dtypes(OP, &gpu, &[table, pos, types])?;
    for (name, t) in [("position", pos), ("token-type", types)] {
        if t.shape().len() != 2 || t.shape()[1] != hidden {
            return Err(Error::shape(
                OP,
                format!("{name} table {:?} must be [n, {hidden}]", t.shape()),
            ));
        }
    }
    if type_ids.shape() != ids.shape() {
        return Err(Error::shape(
            OP,
            format!(
                "type ids {:?} must match ids {:?}",
                type_ids.shape(),
                ids.shape()
            ),
        ));
    }
    require_whole(OP, &[ids, table, pos, type_ids, types])?;
    let out = Tensor::empty(&gpu, &[batch, seq, hidden], dtype)?;
    if out.numel() == 0 {
        return Ok(out);
    }
    let total = to_u32(OP, "elements", out.numel())?;
    let params = Params {
        total,
        hidden: hidden as u32,
        vocab: to_u32(OP, "vocab", vocab)?,
        seq: seq as u32,
        pos0: to_u32(OP, "pos0", extras.pos0)?,
        n_positions: extras.positions.map_or(0, |p| p.shape()[0] as u32),
        n_types: extras.token_types.map_or(0, |(_, t)| t.shape()[0] as u32),
        _pad: 0,
    };
    let pipeline = gpu.pipeline(&KernelSource {
        name: "embedding",
        body: SHADER,
        dtype,
        entry: "main",
        constants: &[],
    });
    let grid = grid_1d(&gpu, OP, total.div_ceil(256))?;
    rec.dispatch(
        &pipeline,
        &[
            ids.buffer(),
            table.buffer(),
            pos.buffer(),
            type_ids.buffer(),
            types.buffer(),
            out.buffer(),
        ],
        &params,
        grid,
    );
    Ok(out)
}
