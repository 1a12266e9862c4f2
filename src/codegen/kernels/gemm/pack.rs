//! Packing: copying a block of A into `mr`-row panels and a block of B into `nr`-column
//! panels, contiguous in the order the micro-kernel reads them and zero-padded at the
//! edges; and [`PackedB`], a weight matrix packed once for many multiplications.

use super::check::{self, GemmError, Operand};
use super::driver::{self, KernelSet};
use super::{Isa, MatRef};

/// Sixteen floats aligned to a 64-byte cache line (the unit of [`AlignedBuf`]).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct Align64([f32; 16]);

/// A growable, zero-initialised `f32` buffer whose start is aligned to 64 bytes, so that
/// packed panels whose size is a multiple of 16 floats start on cache lines.
#[derive(Clone, Debug, Default)]
pub(crate) struct AlignedBuf(Vec<Align64>);

impl AlignedBuf {
    /// A buffer of at least `len` zeros.
    pub fn zeroed(len: usize) -> AlignedBuf {
        AlignedBuf(vec![Align64([0.0; 16]); len.div_ceil(16)])
    }

    /// Grows the buffer to at least `len` elements and returns its start.
    pub fn ensure(&mut self, len: usize) -> *mut f32 {
        let units = len.div_ceil(16);
        if self.0.len() < units {
            self.0.resize(units, Align64([0.0; 16]));
        }
        self.0.as_mut_ptr().cast()
    }

    /// The start of the buffer.
    pub fn as_ptr(&self) -> *const f32 {
        self.0.as_ptr().cast()
    }

    /// The buffer's capacity in elements.
    pub fn len(&self) -> usize {
        self.0.len() * 16
    }
}

/// Packs the `mb×kb` block of A at `a` (strides `rsa`, `csa`) into panels of `mr` rows:
/// panel `q` (rows `q·mr..`) at `dst + q·mr·kb`, its step `l` at `+ l·mr`, rows past `mb`
/// zero.
///
/// # Safety
///
/// `kb > 0` and `a[i·rsa + l·csa]` is readable for `i < mb`, `l < kb`; `dst` is writable
/// for `mb.next_multiple_of(mr)·kb` elements and does not overlap A.
pub(crate) unsafe fn pack_a(
    dst: *mut f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    mb: usize,
    kb: usize,
    mr: usize,
) {
    for (q, i0) in (0..mb).step_by(mr).enumerate() {
        let rows = mr.min(mb - i0);
        // SAFETY: the panel lies in `dst` (caller), and so does every `l·mr + i` below.
        let panel = unsafe { dst.add(q * mr * kb) };
        for i in 0..rows {
            // SAFETY: row `i0 + i < mb` of A.
            let row = unsafe { a.offset((i0 + i) as isize * rsa) };
            for l in 0..kb {
                // SAFETY: `(i0 + i, l)` is inside the block; `l·mr + i < mr·kb`.
                unsafe { *panel.add(l * mr + i) = *row.offset(l as isize * csa) };
            }
        }
        for i in rows..mr {
            for l in 0..kb {
                // SAFETY: `l·mr + i < mr·kb`, inside the panel.
                unsafe { *panel.add(l * mr + i) = 0.0 };
            }
        }
    }
}

/// Packs the `kb×nb` block of B at `b` (strides `rsb`, `csb`) into panels of `nr` columns:
/// panel `q` (columns `q·nr..`) at `dst + q·nr·kb`, its step `l` at `+ l·nr`, columns past
/// `nb` zero.
///
/// # Safety
///
/// `kb > 0` and `b[l·rsb + j·csb]` is readable for `l < kb`, `j < nb`; `dst` is writable
/// for `kb·nb.next_multiple_of(nr)` elements and does not overlap B.
pub(crate) unsafe fn pack_b(
    dst: *mut f32,
    b: *const f32,
    rsb: isize,
    csb: isize,
    kb: usize,
    nb: usize,
    nr: usize,
) {
    for (q, j0) in (0..nb).step_by(nr).enumerate() {
        let cols = nr.min(nb - j0);
        // SAFETY: the panel lies in `dst` (caller).
        let panel = unsafe { dst.add(q * nr * kb) };
        if csb == 1 {
            for l in 0..kb {
                // SAFETY: row `l` of the block, columns `j0..j0 + cols` are contiguous in B;
                // step `l` of the panel holds `nr ≥ cols` elements; B and `dst` are disjoint.
                unsafe {
                    let src = b.offset(l as isize * rsb).add(j0);
                    std::ptr::copy_nonoverlapping(src, panel.add(l * nr), cols);
                }
            }
        } else {
            for j in 0..cols {
                // SAFETY: column `j0 + j < nb` of B.
                let col = unsafe { b.offset((j0 + j) as isize * csb) };
                for l in 0..kb {
                    // SAFETY: `(l, j0 + j)` is inside the block; `l·nr + j < nr·kb`.
                    unsafe { *panel.add(l * nr + j) = *col.offset(l as isize * rsb) };
                }
            }
        }
        for l in 0..kb {
            for j in cols..nr {
                // SAFETY: `l·nr + j < nr·kb`, inside the panel.
                unsafe { *panel.add(l * nr + j) = 0.0 };
            }
        }
    }
}

/// A `k×n` matrix packed once (at bind time) for use as the B operand of many
/// [`sgemm_packed`](super::sgemm_packed) calls: every `kc`-deep block of B in `nr`-column
/// panels, in the layout of the kernels of one [`Isa`].
#[derive(Clone, Debug)]
pub struct PackedB {
    isa: Isa,
    k: usize,
    n: usize,
    data: AlignedBuf,
}

impl PackedB {
    /// Packs the `k×n` matrix whose element `(l, j)` is `b[l·rs + j·cs]` for the detected
    /// kernels. An error when an element falls outside `b`.
    pub fn new(k: usize, n: usize, b: &[f32], rs: isize, cs: isize) -> Result<PackedB, GemmError> {
        PackedB::new_with(
            Isa::detected(),
            MatRef {
                data: b,
                rows: k,
                cols: n,
                rs,
                cs,
            },
        )
    }

    /// Packs `b` (`k×n`) for the kernels of `isa`; an error when this machine does not
    /// support `isa` or an element of `b` falls outside its slice.
    pub fn new_with(isa: Isa, b: MatRef) -> Result<PackedB, GemmError> {
        let ks = isa.kernels_checked()?;
        check::in_bounds(&b, Operand::B)?;
        let (k, n) = (b.rows, b.cols);
        let npad = n.next_multiple_of(ks.nr);
        let mut data = AlignedBuf::zeroed(k * npad);
        let dst = data.ensure(k * npad);
        let kc = driver::k_block(ks, k);
        // With no columns there is nothing to pack (and `b.data` may be empty).
        let depths = if n == 0 { 0..0 } else { 0..k };
        for p0 in depths.step_by(kc) {
            let kb = kc.min(k - p0);
            // SAFETY: `in_bounds` showed every `(l, j)` of B lies in `b.data`; block `p0`
            // takes `kb·npad` elements at `p0·npad`, inside the `k·npad` of `data`.
            unsafe {
                let src = b.data.as_ptr().offset(p0 as isize * b.rs);
                (ks.pack_b)(dst.add(p0 * npad), src, b.rs, b.cs, kb, n, ks.nr);
            }
        }
        Ok(PackedB { isa, k, n, data })
    }

    /// The number of rows (the depth of the product).
    pub fn k(&self) -> usize {
        self.k
    }

    /// The number of columns.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The kernels it was packed for (and that multiply with it).
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The packed elements and `n` rounded up to the panel width, as the driver reads them.
    pub(crate) fn raw(&self) -> (*const f32, usize) {
        let ks: &KernelSet = self.isa.kernels();
        debug_assert!(self.data.len() >= self.k * self.n.next_multiple_of(ks.nr));
        (self.data.as_ptr(), self.n.next_multiple_of(ks.nr))
    }
}
