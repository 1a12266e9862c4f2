//! The BLIS loop nest around the micro-kernels: blocking in `nc`, `kc`, `mc`, packing of A
//! (and of B unless it came packed), and the dispatch of each `mr×nr` tile either straight
//! to C or through a temporary tile for the edges. It works on raw pointers and strides
//! whose bounds the caller has established (see [`run`]).

use super::pack::AlignedBuf;
use std::cell::RefCell;

/// A micro-kernel: computes one tile as described by [`TileArgs`].
///
/// # Safety
///
/// The CPU must support the kernel's instruction set, and every pointer in the arguments
/// must be valid for the accesses [`TileArgs`] describes.
pub(crate) type Ukr = unsafe fn(&TileArgs);

/// A packer of A blocks, with the contract of [`pack_a`](super::pack::pack_a).
pub(crate) type PackA = unsafe fn(*mut f32, *const f32, isize, isize, usize, usize, usize);

/// A packer of B blocks, with the contract of [`pack_b`](super::pack::pack_b).
pub(crate) type PackB = unsafe fn(*mut f32, *const f32, isize, isize, usize, usize, usize);

/// One instruction set's micro-kernels and the blocking that suits them.
pub(crate) struct KernelSet {
    /// The name reported by `selected_kernel`, with the tile, e.g. `"avx2 6x16"`.
    pub name: &'static str,
    /// Rows of A per micro-kernel call (the packed A panel's height).
    pub mr: usize,
    /// Columns of B per micro-kernel call (the packed B panel's width).
    pub nr: usize,
    /// The depth of one packed block (the micro-panels' length).
    pub kc: usize,
    /// Rows of A packed at once (a multiple of `mr`).
    pub mc: usize,
    /// Columns of B packed at once (a multiple of `nr`).
    pub nc: usize,
    /// `ukr[r - 1]` computes a tile of `r` rows, `1 ≤ r ≤ mr`, always `nr` columns wide.
    pub ukr: &'static [Ukr],
    /// Packs blocks of A (may use the kernels' instruction set).
    pub pack_a: PackA,
    /// Packs blocks of B (may use the kernels' instruction set).
    pub pack_b: PackB,
}

/// The largest tile any kernel set may have, in elements (the temporary edge tile).
pub(crate) const MAX_TILE: usize = 1024;

/// An operation of the fused epilogue with its operand as a raw pointer, indexed with
/// the output tile's absolute row and column (see `FusedOp`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum RawOp {
    /// `t[i, j] += p[j]`.
    PerColAdd(*const f32),
    /// `t[i, j] += p[i]`.
    PerRowAdd(*const f32),
    /// `t[i, j] *= s`.
    ScalarMul(f32),
    /// `t[i, j] += p[i·rs + j·cs]`.
    AddC {
        /// The residual's element `(0, 0)`.
        p: *const f32,
        /// Its row stride.
        rs: isize,
        /// Its column stride.
        cs: isize,
    },
    /// `t = if t < 0 { 0 } else { t }`.
    Relu,
}

/// The operations in order on one element `t` at `(i, j)` (the scalar epilogue of edge
/// tiles and of the fallback kernels).
///
/// # Safety
///
/// Each op's pointer must be valid for reading the element for `(i, j)`.
#[inline]
pub(crate) unsafe fn apply_ops(mut t: f32, ops: &[RawOp], i: usize, j: usize) -> f32 {
    for op in ops {
        // SAFETY: the caller guarantees these reads are in bounds.
        t = unsafe {
            match *op {
                RawOp::PerColAdd(p) => t + *p.add(j),
                RawOp::PerRowAdd(p) => t + *p.add(i),
                RawOp::ScalarMul(s) => t * s,
                RawOp::AddC { p, rs, cs } => t + *p.offset(i as isize * rs + j as isize * cs),
                RawOp::Relu => relu(t),
            }
        };
    }
    t
}

/// ReLU that leaves NaN as it is (the interpreter's definition).
#[inline]
pub(crate) fn relu(t: f32) -> f32 {
    if t < 0.0 {
        0.0
    } else {
        t
    }
}

/// What one micro-kernel call computes: the `r×nr` tile
/// `T = Σ_{p<k} a[i·a_rs + p·a_cs]·b[p·b_rs + j]` (for `i < r`, `j < nr`), plus
/// `c[i·rsc + j]` when `load_c`, then `ops` in order (with element `(i, j)` of the tile at
/// `(row0 + i, col0 + j)` of the whole output), stored to `c[i·rsc + j]`.
pub(crate) struct TileArgs<'o> {
    /// The depth (may be 0).
    pub k: usize,
    /// The A micro-panel: packed, `k` steps of `mr` values (only the first `r` are read),
    /// or A itself when its rows are contiguous.
    pub a: *const f32,
    /// The distance between the panel's rows (1 when packed).
    pub a_rs: isize,
    /// The distance between the panel's steps (`mr` when packed, 1 when direct).
    pub a_cs: isize,
    /// The B micro-panel: `k` steps of `nr` contiguous values, packed or in B itself.
    pub b: *const f32,
    /// The distance between the panel's steps (`nr` when packed).
    pub b_rs: isize,
    /// The tile's first element; its columns are contiguous.
    pub c: *mut f32,
    /// The row stride of the tile in `c`.
    pub rsc: isize,
    /// Whether the tile's old contents are added to the product.
    pub load_c: bool,
    /// The epilogue; the kernel may assume every `AddC` has unit column stride.
    pub ops: &'o [RawOp],
    /// The tile's row in the output (for `PerRowAdd` and `AddC`).
    pub row0: usize,
    /// The tile's column in the output (for `PerColAdd` and `AddC`).
    pub col0: usize,
}

/// Where the driver finds B.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BSrc {
    /// A strided `k×n` matrix, packed block by block on the fly.
    Strided {
        /// Element `(0, 0)`.
        p: *const f32,
        /// Row stride.
        rs: isize,
        /// Column stride.
        cs: isize,
    },
    /// Packed in advance by `PackedB` with the same kernel set: the block starting at depth
    /// `p0` (of depth `kb`) starts at `p + p0·npad`, and within it the panel of columns
    /// `j..j + nr` at `+ j·kb`.
    Packed {
        /// The packed data.
        p: *const f32,
        /// `n` rounded up to a multiple of `nr`.
        npad: usize,
    },
}

/// A whole multiplication, with raw pointers whose bounds the caller has checked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Problem<'o> {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of B and C.
    pub n: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// A's element `(0, 0)`.
    pub a: *const f32,
    /// A's row stride.
    pub rsa: isize,
    /// A's column stride.
    pub csa: isize,
    /// B.
    pub b: BSrc,
    /// C's element `(0, 0)`.
    pub c: *mut f32,
    /// C's row stride.
    pub rsc: isize,
    /// C's column stride.
    pub csc: isize,
    /// The fused epilogue.
    pub ops: &'o [RawOp],
    /// `C += …` rather than `C = …`.
    pub accumulate: bool,
}

impl Problem<'_> {
    /// The same problem with another epilogue.
    pub fn with_ops(self, ops: &[RawOp]) -> Problem<'_> {
        Problem { ops, ..self }
    }
}

/// The packing buffers, reused by every call on a thread.
#[derive(Default)]
struct Workspace {
    a: AlignedBuf,
    b: AlignedBuf,
}

thread_local! {
    static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
}

/// Computes `p` with the kernels `ks`.
///
/// # Safety
///
/// The CPU supports `ks`'s instruction set. For every `i < m`, `j < n`, `l < k`, the
/// elements `a[i·rsa + l·csa]`, B's `(l, j)` (as [`BSrc`] describes it; packed by `ks`'s
/// layout) and `c[i·rsc + j·csc]` are valid (C's for writing), C overlaps none of the
/// others, and each op's operand is valid at every `(i, j)`.
pub(crate) unsafe fn run(ks: &KernelSet, p: &Problem) {
    if p.m == 0 || p.n == 0 {
        return;
    }
    let on_thread = WORKSPACE.try_with(|ws| match ws.try_borrow_mut() {
        // SAFETY: forwarded from the caller.
        Ok(mut ws) => unsafe { run_in(ks, p, &mut ws) },
        // SAFETY: as above (a reentrant call, impossible today, gets its own buffers).
        Err(_) => unsafe { run_in(ks, p, &mut Workspace::default()) },
    });
    if on_thread.is_err() {
        // SAFETY: as above (thread-local storage already torn down: fresh buffers).
        unsafe { run_in(ks, p, &mut Workspace::default()) }
    }
}

/// The depth of the `kc` blocks for depth `k`: at most `ks.kc`, and balanced, so that the
/// last block is not much shallower than the others (1 for `k = 0`: one empty block).
pub(crate) fn k_block(ks: &KernelSet, k: usize) -> usize {
    balanced(k, ks.kc, 1).max(1)
}

/// `len` split into `ceil(len / max)` blocks of equal size, rounded up to a multiple of
/// `unit` (at most `max` when `max` is a multiple of `unit`).
fn balanced(len: usize, max: usize, unit: usize) -> usize {
    len.div_ceil(len.div_ceil(max).max(1))
        .next_multiple_of(unit)
}

/// Where a `kc` block of B is for the micro-kernels.
#[derive(Clone, Copy)]
enum BBlock {
    /// Packed: the panel of columns `jr..jr + nr` of the block at `p + jr·kb`.
    Packed(*const f32),
    /// Read in place (B row-major): the block's element `(0, 0)` and B's row stride; the
    /// ragged last panel, if any, packed at `edge`.
    Direct {
        p: *const f32,
        rs: isize,
        edge: *const f32,
    },
}

/// The loop nest of [`run`], with its buffers.
///
/// # Safety
///
/// As for [`run`], and `m, n > 0`.
unsafe fn run_in(ks: &KernelSet, p: &Problem, ws: &mut Workspace) {
    let (mr, nr) = (ks.mr, ks.nr);
    let (kc, mc, nc) = (
        k_block(ks, p.k),
        balanced(p.m, ks.mc, mr),
        balanced(p.n, ks.nc, nr),
    );
    // A depth of 0 is one empty block, so that C is still scaled and the epilogue run.
    let kblocks = p.k.div_ceil(kc).max(1);
    let direct_a = read_a_in_place(p);
    let direct_b = read_b_in_place(p, kc);
    let a_buf = if direct_a {
        std::ptr::null_mut()
    } else {
        ws.a.ensure(mc * kc.min(p.k))
    };
    let b_buf = match p.b {
        BSrc::Strided { .. } => ws.b.ensure(kc.min(p.k) * nc),
        BSrc::Packed { .. } => std::ptr::null_mut(),
    };
    // Residuals with a non-unit column stride are added by the scalar path.
    let vector_ops = p
        .ops
        .iter()
        .all(|op| !matches!(op, RawOp::AddC { cs, .. } if *cs != 1));
    for jc in (0..p.n).step_by(nc) {
        let nb = nc.min(p.n - jc);
        for kblock in 0..kblocks {
            let p0 = kblock * kc;
            let kb = kc.min(p.k - p0);
            let b_block = match p.b {
                BSrc::Strided { p: b, rs, cs } => {
                    // Wrapping: with `k = 0` B may have no elements, and nothing is read.
                    let src = b.wrapping_offset(p0 as isize * rs + jc as isize * cs);
                    let full = if direct_b { nb - nb % nr } else { 0 };
                    if kb > 0 && full < nb {
                        // SAFETY: B's rows `p0..p0 + kb` and columns `jc + full..jc + nb` are
                        // in bounds (the caller's contract), and `b_buf` holds `kb × nb`
                        // rounded up to `nr`.
                        unsafe {
                            let src = src.wrapping_add(full);
                            (ks.pack_b)(b_buf, src, rs, cs, kb, nb - full, nr);
                        }
                    }
                    if direct_b {
                        BBlock::Direct {
                            p: src,
                            rs,
                            edge: b_buf,
                        }
                    } else {
                        BBlock::Packed(b_buf)
                    }
                }
                // The packed layout holds block `p0` at `p0·npad`, and in it columns `jc..` at
                // `jc·kb` (wrapping: with `k = 0` it is empty).
                BSrc::Packed { p: b, npad } => BBlock::Packed(b.wrapping_add(p0 * npad + jc * kb)),
            };
            let block = Block {
                k: kb,
                load_c: p.accumulate || kblock > 0,
                ops: if kblock + 1 == kblocks { p.ops } else { &[] },
                vector_ops,
            };
            for ic in (0..p.m).step_by(mc) {
                let mb = mc.min(p.m - ic);
                // Wrapping: with `k = 0` A may have no elements, and nothing is read.
                let a_block =
                    p.a.wrapping_offset(ic as isize * p.rsa + p0 as isize * p.csa);
                if !direct_a && kb > 0 {
                    // SAFETY: A's rows `ic..ic + mb` and columns `p0..p0 + kb` are in bounds,
                    // and `a_buf` holds `mb × kb` rounded up to `mr`.
                    unsafe { (ks.pack_a)(a_buf, a_block, p.rsa, p.csa, mb, kb, mr) };
                }
                for jr in (0..nb).step_by(nr) {
                    let cols = nr.min(nb - jr);
                    // The panel: in the packed block, or (direct) a full-width panel of B's
                    // block, or the packed ragged one (wrapping: nothing is read when `k = 0`).
                    let (b, b_rs) = match b_block {
                        BBlock::Packed(b) => (b.wrapping_add(jr * kb), nr as isize),
                        BBlock::Direct { p: b, rs, .. } if cols == nr => (b.wrapping_add(jr), rs),
                        BBlock::Direct { edge, .. } => (edge, nr as isize),
                    };
                    for ir in (0..mb).step_by(mr) {
                        let at = Tile {
                            i: ic + ir,
                            j: jc + jr,
                            rows: mr.min(mb - ir),
                            cols,
                        };
                        // The packed panel `ir / mr` starts at `ir·kb`; a direct one at A's row
                        // `ic + ir < m`.
                        let panels = if direct_a {
                            Panels {
                                a: a_block.wrapping_offset(ir as isize * p.rsa),
                                a_rs: p.rsa,
                                a_cs: 1,
                                b,
                                b_rs,
                            }
                        } else {
                            Panels {
                                a: a_buf.wrapping_add(ir * kb),
                                a_rs: 1,
                                a_cs: mr as isize,
                                b,
                                b_rs,
                            }
                        };
                        // SAFETY: the panels hold the tile's operands for depth `kb`, and the
                        // tile lies in C.
                        unsafe { tile(ks, p, &block, at, &panels) };
                    }
                }
            }
        }
    }
}

/// Whether the micro-kernels read A where it is instead of packing it. Packing A costs
/// about as much as a product `nr` columns wide, so it only pays when `n` is large; and A's
/// rows must be contiguous, and not a multiple of 4 KiB apart (the `mr` rows of a panel
/// would then fall into the same L1 sets and evict each other).
fn read_a_in_place(p: &Problem) -> bool {
    p.csa == 1 && p.rsa % 1024 != 0 && p.n <= 512
}

/// Whether the micro-kernels read B's full-width panels where they are instead of packing
/// them: when B is row-major and a `kc` block of it spans at most 256 KiB (beyond that,
/// each step of a panel lands on another page and the TLB, not the FMAs, sets the pace).
fn read_b_in_place(p: &Problem, kc: usize) -> bool {
    matches!(p.b, BSrc::Strided { cs: 1, rs, .. } if kc.min(p.k) * rs.unsigned_abs() <= 1 << 16)
}

/// The operands of one micro-kernel call (see [`TileArgs`]).
struct Panels {
    a: *const f32,
    a_rs: isize,
    a_cs: isize,
    b: *const f32,
    b_rs: isize,
}

/// What all tiles of one `kc` block share.
struct Block<'o> {
    /// The block's depth.
    k: usize,
    /// Whether C's contents are added (accumulating, or not the first block).
    load_c: bool,
    /// The epilogue (empty but for the last block).
    ops: &'o [RawOp],
    /// Whether the kernel can apply `ops` itself (every residual has unit column stride).
    vector_ops: bool,
}

/// Where one tile sits in C and how much of it is real.
#[derive(Clone, Copy)]
struct Tile {
    i: usize,
    j: usize,
    rows: usize,
    cols: usize,
}

/// Computes one tile: straight into C when it is full width, C's columns are contiguous
/// and the kernel can apply the epilogue; otherwise into a temporary tile whose valid part
/// is merged into C, and the epilogue applied, by scalar code.
///
/// # Safety
///
/// As for [`run`]; `x` holds the tile's operands for depth `blk.k`, and the tile lies
/// inside `m×n`.
unsafe fn tile(ks: &KernelSet, p: &Problem, blk: &Block, at: Tile, x: &Panels) {
    let ukr = ks.ukr[at.rows - 1];
    let args = |c: *mut f32, rsc: isize, load_c: bool, ops| TileArgs {
        k: blk.k,
        a: x.a,
        a_rs: x.a_rs,
        a_cs: x.a_cs,
        b: x.b,
        b_rs: x.b_rs,
        c,
        rsc,
        load_c,
        ops,
        row0: at.i,
        col0: at.j,
    };
    if at.cols == ks.nr && p.csc == 1 && blk.vector_ops {
        // SAFETY: `(at.i, at.j)` is inside C.
        let c = unsafe { p.c.offset(at.i as isize * p.rsc + at.j as isize) };
        // SAFETY: the tile's `rows × nr` elements are inside C (full width, unit column
        // stride), the panels are valid for depth `k`, the ops are valid on the tile and
        // have unit column strides (`vector_ops`), and the CPU runs `ks` (caller).
        unsafe { ukr(&args(c, p.rsc, blk.load_c, blk.ops)) };
        return;
    }
    let mut tmp = [Align64Tile([0.0; 16]); MAX_TILE / 16];
    let t = tmp.as_mut_ptr().cast::<f32>();
    // SAFETY: `tmp` holds `MAX_TILE ≥ mr·nr` elements; the panels are valid for depth `k`.
    unsafe { ukr(&args(t, ks.nr as isize, false, &[])) };
    for r in 0..at.rows {
        for q in 0..at.cols {
            let (i, j) = (at.i + r, at.j + q);
            // SAFETY: `(i, j)` is inside C and inside every op's operand (caller); `r·nr + q`
            // is inside `tmp`.
            unsafe {
                let dst = p.c.offset(i as isize * p.rsc + j as isize * p.csc);
                let mut v = *t.add(r * ks.nr + q);
                if blk.load_c {
                    v += *dst;
                }
                *dst = apply_ops(v, blk.ops, i, j);
            }
        }
    }
}

/// 64 bytes of the temporary tile, aligned like a cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Align64Tile([f32; 16]);
