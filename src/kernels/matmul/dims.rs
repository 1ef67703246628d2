//! The sizes of one product and the kernel `Kernel::Auto` picks for them.

use super::{BLayout, Kernel, TILED128_MIN_TILES, coop128_min_tiles};
use crate::error::{Error, Result};

/// The sizes of one product, read off the operands' shapes.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Dims {
    pub(super) batch: usize,
    pub(super) m: usize,
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) b_batched: bool,
    /// One `a` for every batch entry ([`super::linear_stacked`]).
    pub(super) a_shared: bool,
}

impl Dims {
    /// Workgroup tiles of `size`×`size` outputs over the whole batch.
    fn tiles(&self, size: usize) -> usize {
        self.batch * self.m.div_ceil(size) * self.n.div_ceil(size)
    }

    /// The tensor-core kernel's tile size for this product.
    pub(super) fn coop_kernel(&self) -> Kernel {
        if self.tiles(128) >= coop128_min_tiles() {
            Kernel::Coop
        } else {
            Kernel::Coop64
        }
    }

    pub(super) fn auto_kernel(&self) -> Kernel {
        if self.m <= 2 {
            Kernel::Gemv
        } else if self.m <= 32 {
            Kernel::Tiled16
        } else if self.tiles(128) >= TILED128_MIN_TILES {
            Kernel::Tiled128
        } else if self.tiles(64) < 64 {
            // Too few 64×64 tiles to fill a GPU: split K over more workgroups where K is long
            // enough (a 128-row MiniLM layer's feed-forward pair on an H100: 71 µs against 79 on
            // split 16×64 tiles, `split`), else 16×64 tiles, four times as many.
            if super::split::plan(self.tiles(64), self.k, 16).0 > 1 {
                Kernel::Tiled64
            } else {
                Kernel::Tiled16
            }
        } else {
            Kernel::Tiled64
        }
    }

    pub(super) fn of(a: &[usize], b: &[usize], layout: BLayout) -> Result<Dims> {
        let err = |message: String| Err(Error::shape("matmul", message));
        if a.len() < 2 || b.len() < 2 {
            return err(format!(
                "operands must have at least 2 axes, got a {a:?} and b {b:?}"
            ));
        }
        let (m, k) = (a[a.len() - 2], a[a.len() - 1]);
        let (kb, n) = match layout {
            BLayout::KN => (b[b.len() - 2], b[b.len() - 1]),
            BLayout::NK => (b[b.len() - 1], b[b.len() - 2]),
        };
        if k != kb {
            return err(format!(
                "inner sizes differ: a {a:?} has K = {k}, b {b:?} ({layout:?}) has K = {kb}"
            ));
        }
        let a_batch = &a[..a.len() - 2];
        let b_batch = &b[..b.len() - 2];
        let b_batched = b_batch.iter().product::<usize>() > 1;
        if b_batched && a_batch != b_batch {
            return err(format!(
                "batch axes differ: a {a:?}, b {b:?}; b must be one matrix or have a's batch axes"
            ));
        }
        Ok(Dims {
            batch: a_batch.iter().product(),
            m,
            n,
            k,
            b_batched,
            a_shared: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_follow_the_layout() {
        let d = Dims::of(&[2, 3, 5], &[7, 5], BLayout::NK).unwrap();
        assert_eq!((d.batch, d.m, d.n, d.k, d.b_batched), (2, 3, 7, 5, false));
        let d = Dims::of(&[2, 3, 5], &[2, 5, 7], BLayout::KN).unwrap();
        assert_eq!((d.batch, d.m, d.n, d.k, d.b_batched), (2, 3, 7, 5, true));
    }

    #[test]
    fn mismatched_shapes_are_refused() {
        assert!(Dims::of(&[3, 5], &[4, 7], BLayout::KN).is_err());
        assert!(Dims::of(&[2, 3, 5], &[3, 5, 7], BLayout::KN).is_err());
        assert!(Dims::of(&[5], &[5, 7], BLayout::KN).is_err());
    }
}
