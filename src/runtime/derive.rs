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
    }
}
