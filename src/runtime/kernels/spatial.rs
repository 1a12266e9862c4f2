//! Image ops on `[N, C, H, W]` tensors: convolution, max and average pooling, global
//! pooling, local response normalisation and batch normalisation.
//!
//! **Window positions.** Along one spatial axis of size `H`, with `k` taps at dilation `d`,
//! stride `s` and padding `p_b` before and `p_e` after, output position `i` reads input
//! positions `i·s + a·d − p_b` for `a = 0 … k−1`; positions outside `0 … H−1` are padding.
//! The number of outputs is ([`out_size`]):
//!
//! ```text
//! floor mode: H' = floor((H + p_b + p_e − d(k−1) − 1) / s) + 1
//! ceil mode:  H' = ceil((H + p_b + p_e − d(k−1) − 1) / s) + 1, minus one if the last
//!             window would start at or after H + p_b (PyTorch's rule: every window
//!             starts inside the input or the leading padding)
//! ```
//!
//! Padding is given per side as `[top, left, bottom, right]` (ONNX's `pads` order), so
//! asymmetric padding (`pad: same` with an even kernel) is exact.

use super::{shape_error, KernelError};
use crate::ir::op::{Conv2d, Pool2d};
use ndarray::{s, Array2, Array4, ArrayD, ArrayView4, ArrayViewD, Ix1, Ix4};

/// The number of window positions along one axis (see the module docs), or `None` when the
/// (dilated) window does not fit the padded input or the stride or window is zero.
pub fn out_size(
    size: usize,
    window: usize,
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    pad_end: usize,
    ceil: bool,
) -> Option<usize> {
    if stride == 0 || window == 0 || dilation == 0 {
        return None;
    }
    let extent = dilation.checked_mul(window - 1)?.checked_add(1)?;
    let padded = size.checked_add(pad_begin)?.checked_add(pad_end)?;
    let span = padded.checked_sub(extent)?;
    if !ceil {
        return Some(span / stride + 1);
    }
    let mut out = span.div_ceil(stride) + 1;
    if (out - 1) * stride >= size + pad_begin {
        out -= 1;
    }
    Some(out)
}

/// The input position read by output `i`, tap `a` (`i·s + a·d − p_b`), if inside `0..size`.
fn tap(
    i: usize,
    a: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
    size: usize,
) -> Option<usize> {
    (i * stride + a * dilation)
        .checked_sub(pad)
        .filter(|&y| y < size)
}

fn image<'a>(x: &ArrayViewD<'a, f32>, what: &str) -> Result<ArrayView4<'a, f32>, KernelError> {
    x.clone()
        .into_dimensionality::<Ix4>()
        .map_err(|_| shape_error(&format!("{what} must be 4-D [N, C, H, W]"), &[x.shape()]))
}

fn us(x: u64) -> usize {
    usize::try_from(x).unwrap_or(usize::MAX)
}

/// 2-D convolution (cross-correlation, the kernel is not flipped), with zero padding,
/// stride, dilation and channel groups:
///
/// ```text
/// y[n, o, i, j] = bias[o] + Σ_{c < C/g} Σ_{a < kh} Σ_{b < kw}
///                 w[o, c, a, b] · x[n, g(o)·C/g + c, i·sh + a·dh − pt, j·sw + b·dw − pl]
/// ```
///
/// where `g(o) = o / (O/g)` is the group of output channel `o` and `x` is zero outside the
/// image. `x` is `[N, C, H, W]`, `w` is `[O, C/g, kh, kw]`, `bias` is `[O]`.
///
/// Computed as im2col: for each example and group, every window is copied into one column
/// of a `[C/g·kh·kw, H'·W']` matrix, which one matrix product with the group's
/// `[O/g, C/g·kh·kw]` weights turns into the group's output channels.
pub fn conv2d(
    x: &ArrayViewD<f32>,
    w: &ArrayViewD<f32>,
    bias: Option<&ArrayViewD<f32>>,
    attrs: &Conv2d,
) -> Result<ArrayD<f32>, KernelError> {
    let x = image(x, "conv2d input")?;
    let w = image(w, "conv2d weight")?;
    let (n, c, h, wd) = x.dim();
    let (o, cg, kh, kw) = w.dim();
    let g = us(attrs.groups);
    let bad = || {
        shape_error(
            "conv2d input and weight do not fit",
            &[x.shape(), w.shape()],
        )
    };
    if g == 0 || c != cg * g || o % g != 0 || [kh, kw] != attrs.kernel.map(us) {
        return Err(bad());
    }
    let bias = match bias {
        Some(b) => Some(
            b.clone()
                .into_dimensionality::<Ix1>()
                .ok()
                .filter(|b| b.len() == o)
                .ok_or_else(|| shape_error("conv2d bias must be [O]", &[b.shape()]))?,
        ),
        None => None,
    };
    let [sh, sw] = attrs.stride.map(us);
    let [dh, dw] = attrs.dilation.map(us);
    let [pt, pl, pb, pr] = attrs.pad.map(us);
    let oh = out_size(h, kh, sh, dh, pt, pb, false).ok_or_else(bad)?;
    let ow = out_size(wd, kw, sw, dw, pl, pr, false).ok_or_else(bad)?;
    let og = o / g;
    let k = cg * kh * kw;
    let mut y = Array4::<f32>::zeros((n, o, oh, ow));
    let mut cols = Array2::<f32>::zeros((k, oh * ow));
    for ni in 0..n {
        for gi in 0..g {
            cols.fill(0.0);
            for ci in 0..cg {
                let chan = x.slice(s![ni, gi * cg + ci, .., ..]);
                for a in 0..kh {
                    for b in 0..kw {
                        let mut row = cols.row_mut((ci * kh + a) * kw + b);
                        for i in 0..oh {
                            let Some(yy) = tap(i, a, sh, dh, pt, h) else {
                                continue;
                            };
                            for j in 0..ow {
                                if let Some(xx) = tap(j, b, sw, dw, pl, wd) {
                                    row[i * ow + j] = chan[[yy, xx]];
                                }
                            }
                        }
                    }
                }
            }
            let wg = w.slice(s![gi * og..(gi + 1) * og, .., .., ..]);
            let wg = wg.to_shape((og, k)).map_err(|_| bad())?;
            let out = wg.dot(&cols);
            for oi in 0..og {
                let ch = gi * og + oi;
                let b0 = bias.as_ref().map_or(0.0, |b| b[ch]);
                let mut dst = y.slice_mut(s![ni, ch, .., ..]);
                for (d, v) in dst.iter_mut().zip(out.row(oi)) {
                    *d = v + b0;
                }
            }
        }
    }
    Ok(y.into_dyn())
}

/// The output size of a pool over `x`, or an error.
fn pool_dims(x: &ArrayView4<f32>, p: &Pool2d) -> Result<(usize, usize), KernelError> {
    let (_, _, h, w) = x.dim();
    let [kh, kw] = p.window.map(us);
    let [sh, sw] = p.stride.map(us);
    let [pt, pl, pb, pr] = p.pad.map(us);
    let oh = out_size(h, kh, sh, 1, pt, pb, p.ceil);
    let ow = out_size(w, kw, sw, 1, pl, pr, p.ceil);
    oh.zip(ow)
        .ok_or_else(|| shape_error("the pooling window does not fit", &[x.shape()]))
}

/// Max pooling: `y[n, c, i, j]` is the largest `x[n, c, i·sh + a − pt, j·sw + b − pl]` over
/// the window taps `a < kh`, `b < kw` that fall inside the image. Padding never wins (it
/// is −∞), and in ceil mode a window hanging over the end only sees the positions it
/// covers.
pub fn max_pool2d(x: &ArrayViewD<f32>, p: &Pool2d) -> Result<ArrayD<f32>, KernelError> {
    let x = image(x, "maxpool2d input")?;
    let (n, c, h, w) = x.dim();
    let (oh, ow) = pool_dims(&x, p)?;
    let [kh, kw] = p.window.map(us);
    let [sh, sw] = p.stride.map(us);
    let [pt, pl, _, _] = p.pad.map(us);
    let y = Array4::from_shape_fn((n, c, oh, ow), |(ni, ci, i, j)| {
        let mut m = f32::NEG_INFINITY;
        for a in 0..kh {
            let Some(yy) = tap(i, a, sh, 1, pt, h) else {
                continue;
            };
            for b in 0..kw {
                if let Some(xx) = tap(j, b, sw, 1, pl, w) {
                    let v = x[[ni, ci, yy, xx]];
                    // NaN propagates, as in PyTorch and ONNX Runtime.
                    if v > m || v.is_nan() {
                        m = v;
                    }
                }
            }
        }
        m
    });
    Ok(y.into_dyn())
}

/// Average pooling, PyTorch's definition. The window of output `(i, j)` starts at
/// `hs = i·sh − pt`, `ws = j·sw − pl`; the sum runs over its taps inside the image and is
/// divided by
///
/// - `count_pad: true`: the window's area clipped to the padded input,
///   `(min(hs + kh, H + pb) − hs) · (min(ws + kw, W + pr) − ws)` (padding zeros count, the
///   part of a ceil-mode window beyond the padding does not);
/// - `count_pad: false`: the number of taps inside the image.
pub fn avg_pool2d(x: &ArrayViewD<f32>, p: &Pool2d) -> Result<ArrayD<f32>, KernelError> {
    let x = image(x, "avgpool2d input")?;
    let (n, c, h, w) = x.dim();
    let (oh, ow) = pool_dims(&x, p)?;
    let [kh, kw] = p.window.map(us);
    let [sh, sw] = p.stride.map(us);
    let [pt, pl, pb, pr] = p.pad.map(us);
    let y = Array4::from_shape_fn((n, c, oh, ow), |(ni, ci, i, j)| {
        let mut sum = 0.0f64;
        let mut inside = 0usize;
        for a in 0..kh {
            let Some(yy) = tap(i, a, sh, 1, pt, h) else {
                continue;
            };
            for b in 0..kw {
                if let Some(xx) = tap(j, b, sw, 1, pl, w) {
                    sum += f64::from(x[[ni, ci, yy, xx]]);
                    inside += 1;
                }
            }
        }
        let divisor = if p.count_pad {
            // Window rows from i·sh (in padded coordinates) up to the end of the padding.
            let rows = (i * sh + kh).min(h + pt + pb) - i * sh;
            let cols = (j * sw + kw).min(w + pl + pr) - j * sw;
            rows * cols
        } else {
            inside
        };
        if divisor == 0 {
            0.0
        } else {
            (sum / divisor as f64) as f32
        }
    });
    Ok(y.into_dyn())
}

/// Global average pooling: `y[n, c, 0, 0]` is the mean of `x[n, c, :, :]`.
pub fn global_avg_pool(x: &ArrayViewD<f32>) -> Result<ArrayD<f32>, KernelError> {
    let x = image(x, "global_avgpool input")?;
    let (n, c, h, w) = x.dim();
    let y = Array4::from_shape_fn((n, c, 1, 1), |(ni, ci, _, _)| {
        let plane = x.slice(s![ni, ci, .., ..]);
        let sum: f64 = plane.iter().map(|v| f64::from(*v)).sum();
        (sum / (h * w) as f64) as f32
    });
    Ok(y.into_dyn())
}

/// Global max pooling: `y[n, c, 0, 0]` is the largest value of `x[n, c, :, :]`.
pub fn global_max_pool(x: &ArrayViewD<f32>) -> Result<ArrayD<f32>, KernelError> {
    let x = image(x, "global_maxpool input")?;
    let (n, c, _, _) = x.dim();
    let y = Array4::from_shape_fn((n, c, 1, 1), |(ni, ci, _, _)| {
        x.slice(s![ni, ci, .., ..])
            .iter()
            .fold(
                f32::NEG_INFINITY,
                |m, &v| if v > m || v.is_nan() { v } else { m },
            )
    });
    Ok(y.into_dyn())
}

/// Local response normalisation across channels, exactly ONNX's `LRN` (and Caffe's):
///
/// ```text
/// y[n, c, …] = x[n, c, …] / (k + alpha / size · Σ_{j = c − ⌊(size−1)/2⌋}^{c + ⌈(size−1)/2⌉} x[n, j, …]²)^beta
/// ```
///
/// with the sum clipped to the existing channels `0 … C−1`. `alpha` is divided by `size`.
pub fn lrn(
    x: &ArrayViewD<f32>,
    size: u64,
    alpha: f64,
    beta: f64,
    k: f64,
) -> Result<ArrayD<f32>, KernelError> {
    let shape = x.shape().to_vec();
    if shape.len() < 3 || size == 0 {
        return Err(shape_error("lrn needs [N, C, …] and size ≥ 1", &[&shape]));
    }
    let (n, c) = (shape[0], shape[1]);
    let rest: usize = shape[2..].iter().product();
    let x3 = x
        .to_shape((n, c, rest))
        .map_err(|_| shape_error("lrn input", &[&shape]))?;
    let size_u = us(size);
    let before = (size_u - 1) / 2;
    let after = size_u - 1 - before;
    let scale = alpha / size as f64;
    let y = ndarray::Array3::from_shape_fn((n, c, rest), |(ni, ci, r)| {
        let lo = ci.saturating_sub(before);
        let hi = (ci + after).min(c - 1);
        let sq: f64 = (lo..=hi).map(|j| f64::from(x3[[ni, j, r]]).powi(2)).sum();
        (f64::from(x3[[ni, ci, r]]) / (k + scale * sq).powf(beta)) as f32
    });
    y.to_shape(shape.clone())
        .map(|a| a.into_owned())
        .map_err(|_| shape_error("lrn output", &[&shape]))
}

/// Batch normalisation at inference, per channel `c` of axis 1, with the running
/// statistics: `y = (x − mean[c]) / sqrt(var[c] + eps) · scale[c] + shift[c]`.
pub fn batch_norm(
    x: &ArrayViewD<f32>,
    scale: &ArrayViewD<f32>,
    shift: &ArrayViewD<f32>,
    mean: &ArrayViewD<f32>,
    var: &ArrayViewD<f32>,
    eps: f64,
) -> Result<ArrayD<f32>, KernelError> {
    let shape = x.shape();
    let c = *shape
        .get(1)
        .ok_or_else(|| shape_error("batchnorm needs [N, C, …]", &[shape]))?;
    for p in [scale, shift, mean, var] {
        if p.shape() != [c] {
            return Err(shape_error(
                "batchnorm statistics must be [C]",
                &[shape, p.shape()],
            ));
        }
    }
    let mut y = x.to_owned();
    for (ci, mut plane) in y.axis_iter_mut(ndarray::Axis(1)).enumerate() {
        let (m, v, g, b) = (mean[[ci]], var[[ci]], scale[[ci]], shift[[ci]]);
        let denom = (f64::from(v) + eps).sqrt() as f32;
        plane.mapv_inplace(|t| (t - m) / denom * g + b);
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, IxDyn};

    fn arr(shape: &[usize], data: Vec<f32>) -> ArrayD<f32> {
        Array::from_shape_vec(IxDyn(shape), data).expect("shape fits data")
    }

    fn iota(shape: &[usize]) -> ArrayD<f32> {
        let n: usize = shape.iter().product();
        arr(shape, (0..n).map(|i| i as f32).collect())
    }

    fn conv_attrs(k: u64, stride: u64, pad: [u64; 4], dilation: u64, groups: u64) -> Conv2d {
        Conv2d {
            kernel: [k, k],
            stride: [stride, stride],
            pad,
            dilation: [dilation, dilation],
            groups,
        }
    }

    fn pool(k: u64, s: u64, pad: [u64; 4], ceil: bool, count_pad: bool) -> Pool2d {
        Pool2d {
            window: [k, k],
            stride: [s, s],
            pad,
            ceil,
            count_pad,
        }
    }

    /// A direct, seven-loop convolution: the definition, as an independent check of im2col.
    fn naive_conv(x: &ArrayD<f32>, w: &ArrayD<f32>, b: &[f32], c: &Conv2d) -> ArrayD<f32> {
        let (n, ch, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
        let (o, cg, kh, kw) = (w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]);
        let g = c.groups as usize;
        let (sh, dh) = (c.stride[0] as isize, c.dilation[0] as isize);
        let (sw, dw) = (c.stride[1] as isize, c.dilation[1] as isize);
        let (pt, pl) = (c.pad[0] as isize, c.pad[1] as isize);
        let oh = out_size(
            h,
            kh,
            sh as usize,
            dh as usize,
            c.pad[0] as usize,
            c.pad[2] as usize,
            false,
        )
        .expect("fits");
        let ow = out_size(
            wd,
            kw,
            sw as usize,
            dw as usize,
            c.pad[1] as usize,
            c.pad[3] as usize,
            false,
        )
        .expect("fits");
        let mut y = ArrayD::<f32>::zeros(IxDyn(&[n, o, oh, ow]));
        assert_eq!(ch, cg * g);
        for ni in 0..n {
            for oi in 0..o {
                let grp = oi / (o / g);
                for i in 0..oh {
                    for j in 0..ow {
                        let mut acc = b[oi];
                        for ci in 0..cg {
                            for a in 0..kh {
                                for bb in 0..kw {
                                    let yy = i as isize * sh + a as isize * dh - pt;
                                    let xx = j as isize * sw + bb as isize * dw - pl;
                                    if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < wd
                                    {
                                        acc += w[[oi, ci, a, bb]]
                                            * x[[ni, grp * cg + ci, yy as usize, xx as usize]];
                                    }
                                }
                            }
                        }
                        y[[ni, oi, i, j]] = acc;
                    }
                }
            }
        }
        y
    }

    #[test]
    fn output_sizes() {
        // AlexNet conv1 and pool1; GoogLeNet's ceil pools; a ceil window dropped.
        assert_eq!(out_size(227, 11, 4, 1, 0, 0, false), Some(55));
        assert_eq!(out_size(55, 3, 2, 1, 0, 0, false), Some(27));
        assert_eq!(out_size(112, 3, 2, 1, 0, 0, true), Some(56));
        assert_eq!(out_size(112, 3, 2, 1, 0, 0, false), Some(55));
        assert_eq!(out_size(5, 2, 2, 1, 1, 1, true), Some(3));
        // Dilation 2 makes a 3-tap kernel cover 5 positions.
        assert_eq!(out_size(7, 3, 1, 2, 0, 0, false), Some(3));
        assert_eq!(out_size(2, 3, 1, 1, 0, 0, false), None);
    }

    #[test]
    fn conv_by_hand_with_padding() {
        // 3x3 input 1..9, 2x2 kernel of ones, pad 1 on top/left only, stride 2.
        let x = arr(&[1, 1, 3, 3], (1..=9).map(|v| v as f32).collect());
        let w = arr(&[1, 1, 2, 2], vec![1.0; 4]);
        let b = arr(&[1], vec![0.5]);
        let y = conv2d(
            &x.view(),
            &w.view(),
            Some(&b.view()),
            &conv_attrs(2, 2, [1, 1, 0, 0], 1, 1),
        )
        .expect("conv runs");
        // Padded input rows: [0 0 0 0; 0 1 2 3; 0 4 5 6; 0 7 8 9]; windows at (0,0), (0,2),
        // (2,0), (2,2): 1, 2+3, 4+7, 5+6+8+9.
        assert_eq!(y.shape(), &[1, 1, 2, 2]);
        assert_eq!(
            y.iter().copied().collect::<Vec<_>>(),
            vec![1.5, 5.5, 11.5, 28.5]
        );
    }

    #[test]
    fn conv_by_hand_with_dilation_and_groups() {
        // Two channels, groups 2: each output channel sees only its own input channel.
        // Dilation 2 on a 1x... kernel [1, 0, -1]-like: use a 2x2 kernel with dilation 2 on 3x3.
        let x = arr(&[1, 2, 3, 3], (0..18).map(|v| v as f32).collect());
        let w = arr(&[2, 1, 2, 2], vec![1.0, 0.0, 0.0, -1.0, 0.0, 1.0, 1.0, 0.0]);
        let y = conv2d(&x.view(), &w.view(), None, &conv_attrs(2, 1, [0; 4], 2, 2)).expect("runs");
        // Channel 0: x[0,0] − x[2,2] = 0 − 8; channel 1: x[0,2] + x[2,0] = 11 + 15.
        assert_eq!(y.shape(), &[1, 2, 1, 1]);
        assert_eq!(y.iter().copied().collect::<Vec<_>>(), vec![-8.0, 26.0]);
    }

    #[test]
    fn conv_matches_the_definition() {
        // A grid of configurations against the seven-loop definition.
        let x = iota(&[2, 4, 7, 6]).mapv(|v| (v * 0.37).sin());
        for (k, s, pad, d, g) in [
            (3, 1, [1, 1, 1, 1], 1, 1),
            (3, 2, [0, 1, 2, 0], 1, 2),
            (2, 1, [0, 0, 1, 1], 2, 4),
            (1, 3, [0; 4], 1, 1),
            (3, 2, [2, 2, 2, 2], 2, 2),
        ] {
            let attrs = conv_attrs(k, s, pad, d, g);
            let cg = 4 / g as usize;
            let w = iota(&[4, cg, k as usize, k as usize]).mapv(|v| (v * 0.11).cos());
            let b = [0.1, -0.2, 0.3, 0.0];
            let bias = arr(&[4], b.to_vec());
            let got = conv2d(&x.view(), &w.view(), Some(&bias.view()), &attrs).expect("runs");
            let want = naive_conv(&x, &w, &b, &attrs);
            assert_eq!(got.shape(), want.shape(), "{attrs:?}");
            for (a, b) in got.iter().zip(want.iter()) {
                assert!((a - b).abs() < 1e-5, "{attrs:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn ceil_mode_maxpool() {
        // 5x5 input 0..24, 2x2 window, stride 2, ceil: 3x3 output; the last row and
        // column of windows see only the input's last row and column.
        let x = iota(&[1, 1, 5, 5]);
        let y = max_pool2d(&x.view(), &pool(2, 2, [0; 4], true, true)).expect("runs");
        assert_eq!(y.shape(), &[1, 1, 3, 3]);
        assert_eq!(
            y.iter().copied().collect::<Vec<_>>(),
            vec![6.0, 8.0, 9.0, 16.0, 18.0, 19.0, 21.0, 23.0, 24.0]
        );
        // Floor mode drops them.
        let y = max_pool2d(&x.view(), &pool(2, 2, [0; 4], false, true)).expect("runs");
        assert_eq!(y.shape(), &[1, 1, 2, 2]);
        // Padding is −∞: an all-negative input keeps its values at the border.
        let neg = x.mapv(|v| -v - 1.0);
        let y = max_pool2d(&neg.view(), &pool(3, 2, [1, 1, 1, 1], false, true)).expect("runs");
        assert_eq!(y[[0, 0, 0, 0]], -1.0);
    }

    #[test]
    fn avgpool_count_pad_both_ways() {
        // 2x2 input of ones... use 1..4 to see the divisor: [[1, 2], [3, 4]], 3x3 window,
        // stride 1, pad 1: the top-left window covers all four values.
        let x = arr(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let with = avg_pool2d(&x.view(), &pool(3, 1, [1, 1, 1, 1], false, true)).expect("runs");
        let without = avg_pool2d(&x.view(), &pool(3, 1, [1, 1, 1, 1], false, false)).expect("runs");
        assert_eq!(with.shape(), &[1, 1, 2, 2]);
        // count_pad: sum 10 over the full 3x3 window; otherwise over the 4 real values.
        assert!((with[[0, 0, 0, 0]] - 10.0 / 9.0).abs() < 1e-6);
        assert!((without[[0, 0, 0, 0]] - 2.5).abs() < 1e-6);
        // Ceil mode: 3x3 input, 2x2 window, stride 2: the last window hangs over the end
        // (no padding), so both ways it divides by the covered taps only.
        let x = iota(&[1, 1, 3, 3]);
        let y = avg_pool2d(&x.view(), &pool(2, 2, [0; 4], true, true)).expect("runs");
        assert_eq!(y.shape(), &[1, 1, 2, 2]);
        assert_eq!(
            y.iter().copied().collect::<Vec<_>>(),
            vec![
                (0.0 + 1.0 + 3.0 + 4.0) / 4.0,
                (2.0 + 5.0) / 2.0,
                (6.0 + 7.0) / 2.0,
                8.0
            ]
        );
        // Ceil with padding 1 on 4 inputs, window 2, stride 2: outputs start at padded
        // 0, 2, 4; the last window covers padded 4..6, of which 4 is input 3 and 5 padding.
        let x = arr(&[1, 1, 1, 4], vec![1.0, 2.0, 3.0, 4.0]);
        let p = Pool2d {
            window: [1, 2],
            stride: [1, 2],
            pad: [0, 1, 0, 1],
            ceil: true,
            count_pad: true,
        };
        let y = avg_pool2d(&x.view(), &p).expect("runs");
        assert_eq!(y.iter().copied().collect::<Vec<_>>(), vec![0.5, 2.5, 2.0]);
        let y = avg_pool2d(
            &x.view(),
            &Pool2d {
                count_pad: false,
                ..p
            },
        )
        .expect("runs");
        assert_eq!(y.iter().copied().collect::<Vec<_>>(), vec![1.0, 2.5, 4.0]);
    }

    #[test]
    fn global_pools() {
        let x = iota(&[1, 2, 2, 2]);
        let a = global_avg_pool(&x.view()).expect("runs");
        let m = global_max_pool(&x.view()).expect("runs");
        assert_eq!(a.shape(), &[1, 2, 1, 1]);
        assert_eq!(a.iter().copied().collect::<Vec<_>>(), vec![1.5, 5.5]);
        assert_eq!(m.iter().copied().collect::<Vec<_>>(), vec![3.0, 7.0]);
    }

    #[test]
    fn lrn_against_the_formula() {
        // Channels 1, 2, 3, 4 at one position; size 3, alpha 0.3, beta 0.75, k 2.
        let x = arr(&[1, 4, 1, 1], vec![1.0, 2.0, 3.0, 4.0]);
        let y = lrn(&x.view(), 3, 0.3, 0.75, 2.0).expect("runs");
        let sums: [f64; 4] = [1.0 + 4.0, 1.0 + 4.0 + 9.0, 4.0 + 9.0 + 16.0, 9.0 + 16.0];
        for c in 0..4 {
            let want = (c as f64 + 1.0) / (2.0 + 0.3 / 3.0 * sums[c]).powf(0.75);
            assert!(
                (f64::from(y[[0, c, 0, 0]]) - want).abs() < 1e-6,
                "channel {c}"
            );
        }
        // An even size looks one channel further ahead than behind (ONNX): size 2 sums
        // channels c and c + 1.
        let y = lrn(&x.view(), 2, 1.0, 1.0, 1.0).expect("runs");
        let want0 = 1.0 / (1.0 + 0.5 * (1.0 + 4.0));
        assert!((f64::from(y[[0, 0, 0, 0]]) - want0).abs() < 1e-6);
        let want3 = 4.0 / (1.0 + 0.5 * 16.0);
        assert!((f64::from(y[[0, 3, 0, 0]]) - want3).abs() < 1e-6);
    }

    #[test]
    fn batchnorm_with_running_statistics() {
        let x = arr(&[1, 2, 1, 2], vec![1.0, 3.0, 10.0, 20.0]);
        let scale = arr(&[2], vec![2.0, 0.5]);
        let shift = arr(&[2], vec![1.0, -1.0]);
        let mean = arr(&[2], vec![2.0, 15.0]);
        let var = arr(&[2], vec![4.0, 25.0]);
        let y = batch_norm(
            &x.view(),
            &scale.view(),
            &shift.view(),
            &mean.view(),
            &var.view(),
            0.0,
        )
        .expect("runs");
        // (1−2)/2·2+1 = 0, (3−2)/2·2+1 = 2, (10−15)/5·0.5−1 = −1.5, (20−15)/5·0.5−1 = −0.5.
        assert_eq!(
            y.iter().copied().collect::<Vec<_>>(),
            vec![0.0, 2.0, -1.5, -0.5]
        );
        // eps is added to the variance.
        let y = batch_norm(
            &x.view(),
            &scale.view(),
            &shift.view(),
            &mean.view(),
            &var.view(),
            12.0,
        )
        .expect("runs");
        assert!((y[[0, 0, 0, 1]] - (1.0 / 4.0 * 2.0 + 1.0)).abs() < 1e-6);
    }
}
