//! Computes derived parameters ([`ParamKind::Derived`]) from the stored ones when weights
//! are bound: the formulas of [`Derivation`], in `f64`, rounded once to `f32`.

use crate::ir::graph::{Derivation, Graph, ParamId, ParamKind};

/// The values of derived parameter `id`, reading stored parameters through `data`
/// (row-major values by parameter). `Err` names what is wrong: a missing or mis-sized
/// source, or `id` not being derived (bugs in netc, since the verifier checks sources).
pub fn derive<'d>(
    graph: &Graph,
    id: ParamId,
    data: &dyn Fn(ParamId) -> Option<&'d [f32]>,
) -> Result<Vec<f32>, String> {
    let p = graph.param(id);
    let (ParamKind::Derived, Some(how)) = (p.kind, &p.derived) else {
        return Err(format!("`{}` is not a derived parameter", p.name));
    };
    let get = |src: ParamId, len: Option<usize>| -> Result<&'d [f32], String> {
        let name = &graph.param(src).name;
        let d = data(src).ok_or_else(|| format!("no values for `{name}`"))?;
        match len {
            Some(n) if d.len() != n => Err(format!(
                "`{name}` has {} values where {n} are needed",
                d.len()
            )),
            _ => Ok(d),
        }
    };
    let out_len = usize::try_from(graph.param_elements(id).unwrap_or(0)).unwrap_or(0);
    if let Derivation::Slice {
        source,
        axis,
        start,
        end,
    } = how
    {
        return slice(graph, *source, *axis, *start, *end, out_len, get);
    }
    if let Derivation::ChannelsLastColumns { source, map } = how {
        let [c, h, w] = map.map(|k| usize::try_from(k).unwrap_or(0));
        let cols = c * h * w;
        let data = get(*source, Some(out_len))?;
        if cols == 0 || out_len % cols != 0 {
            return Err(format!("`{}` does not have C·H·W columns", p.name));
        }
        let mut out = vec![0.0; out_len];
        for (row_out, row_in) in out.chunks_mut(cols).zip(data.chunks(cols)) {
            for (ch, plane) in row_in.chunks(h * w).enumerate() {
                for (pos, x) in plane.iter().enumerate() {
                    row_out[pos * c + ch] = *x;
                }
            }
        }
        return Ok(out);
    }
    let channels =
        p.ty.shape
            .dims()
            .first()
            .and_then(|d| d.known())
            .and_then(|k| usize::try_from(k).ok())
            .ok_or_else(|| format!("`{}` has no channel axis", p.name))?;
    // k[o] = scale[o] / sqrt(var[o] + eps)
    let factor = |scale: &[f32], var: &[f32], eps: f64| -> Vec<f64> {
        scale
            .iter()
            .zip(var)
            .map(|(s, v)| f64::from(*s) / (f64::from(*v) + eps).sqrt())
            .collect()
    };
    match how {
        Derivation::FoldedWeight {
            weight,
            scale,
            var,
            eps,
        } => {
            let w = get(*weight, Some(out_len))?;
            let k = factor(
                get(*scale, Some(channels))?,
                get(*var, Some(channels))?,
                *eps,
            );
            let per = out_len / channels.max(1);
            Ok(w.iter()
                .enumerate()
                .map(|(i, x)| (f64::from(*x) * k[i / per.max(1)]) as f32)
                .collect())
        }
        Derivation::FoldedBias {
            bias,
            scale,
            shift,
            mean,
            var,
            eps,
        } => {
            let k = factor(
                get(*scale, Some(channels))?,
                get(*var, Some(channels))?,
                *eps,
            );
            let shift = get(*shift, Some(channels))?;
            let mean = get(*mean, Some(channels))?;
            let b = match bias {
                Some(b) => Some(get(*b, Some(channels))?),
                None => None,
            };
            Ok((0..channels)
                .map(|o| {
                    let b0 = b.map_or(0.0, |b| f64::from(b[o]));
                    ((b0 - f64::from(mean[o])) * k[o] + f64::from(shift[o])) as f32
                })
                .collect())
        }
        Derivation::Slice { .. } | Derivation::ChannelsLastColumns { .. } => {
            Err("derived above".into())
        }
    }
}

/// Indices `start..end` of `axis` of stored parameter `source` (row-major), which must give
/// `out_len` values.
fn slice<'d>(
    graph: &Graph,
    source: ParamId,
    axis: usize,
    start: u64,
    end: u64,
    out_len: usize,
    get: impl Fn(ParamId, Option<usize>) -> Result<&'d [f32], String>,
) -> Result<Vec<f32>, String> {
    let p = graph.param(source);
    let dims: Vec<usize> =
        p.ty.shape
            .dims()
            .iter()
            .map(|d| d.known().and_then(|k| usize::try_from(k).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("`{}` has a symbolic shape", p.name))?;
    let len = dims.get(axis).copied().unwrap_or(0);
    let (start, end) = (
        usize::try_from(start).unwrap_or(usize::MAX),
        usize::try_from(end).unwrap_or(usize::MAX),
    );
    if axis >= dims.len() || start > end || end > len {
        return Err(format!(
            "`{}` has no slice {start}..{end} on axis {axis}",
            p.name
        ));
    }
    let data = get(source, Some(dims.iter().product()))?;
    let inner: usize = dims[axis + 1..].iter().product();
    let outer: usize = dims[..axis].iter().product();
    let mut out = Vec::with_capacity(out_len);
    for o in 0..outer {
        let base = o * len * inner;
        out.extend_from_slice(&data[base + start * inner..base + end * inner]);
    }
    if out.len() != out_len {
        return Err(format!("a slice of `{}` of the wrong size", p.name));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Span;
    use crate::ir::graph::Param;
    use crate::ir::shape::{DType, Dim, TensorType};

    fn param(name: &str, dims: &[u64], kind: ParamKind, derived: Option<Derivation>) -> Param {
        Param {
            name: name.into(),
            ty: TensorType::new(DType::F32, dims.iter().map(|d| Dim::Known(*d)).collect()),
            kind,
            init: None,
            derived,
            span: Span::default(),
        }
    }

    #[test]
    fn slices_of_any_axis_and_folded_batch_norms() {
        let mut g = Graph::new("t", None, Span::default());
        let w = g.add_param(param("w", &[2, 3], ParamKind::Trainable, None));
        let cols = g.add_param(param(
            "w/cols",
            &[2, 2],
            ParamKind::Derived,
            Some(Derivation::Slice {
                source: w,
                axis: 1,
                start: 1,
                end: 3,
            }),
        ));
        let rows = g.add_param(param(
            "w/rows",
            &[1, 3],
            ParamKind::Derived,
            Some(Derivation::Slice {
                source: w,
                axis: 0,
                start: 1,
                end: 2,
            }),
        ));
        let scale = g.add_param(param("s", &[2], ParamKind::Trainable, None));
        let var = g.add_param(param("v", &[2], ParamKind::Buffer, None));
        let folded = g.add_param(param(
            "w/folded",
            &[2, 3],
            ParamKind::Derived,
            Some(Derivation::FoldedWeight {
                weight: w,
                scale,
                var,
                eps: 0.0,
            }),
        ));
        let values: [&[f32]; 3] = [&[0., 1., 2., 3., 4., 5.], &[2., 3.], &[1., 4.]];
        let data = |p: ParamId| -> Option<&'static [f32]> {
            match p.0 {
                0 => Some(values[0]),
                3 => Some(values[1]),
                4 => Some(values[2]),
                _ => None,
            }
        };
        assert_eq!(derive(&g, cols, &data), Ok(vec![1., 2., 4., 5.]));
        assert_eq!(derive(&g, rows, &data), Ok(vec![3., 4., 5.]));
        // k = scale / sqrt(var) = [2/1, 3/2]: each row scaled by its channel's k.
        assert_eq!(
            derive(&g, folded, &data),
            Ok(vec![0., 2., 4., 4.5, 6., 7.5])
        );
        assert!(
            derive(&g, w, &data).is_err(),
            "a stored parameter is not derived"
        );
    }
}
