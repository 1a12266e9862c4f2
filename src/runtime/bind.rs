//! Matching the given inputs against the net's declared inputs: element types, ranks, known
//! sizes, and the values of the symbolic sizes (`N`, `T`, `H`, …), which every other shape
//! of the net is then evaluated with.
//!
//! Symbols are bound in declaration order: the first axis declared as a plain symbol (`N`)
//! fixes its value, and every later use must agree. A size written as an expression
//! (`2*window` is already a number after compilation; `T+1` is not) is checked once its
//! symbols are known, or solved for a single unknown symbol when it is linear in it.

use super::error::{RunError, ShapeProblem};
use super::tensor::{storage, Tensor};
use crate::diagnostics::Span;
use crate::ir::graph::{Graph, Region};
use crate::ir::op::Op;
use crate::ir::shape::{Dim, Poly, Shape, TensorType};
use std::collections::BTreeMap;

/// A declared input of a net.
#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    /// Its name.
    pub name: String,
    /// Its declared type.
    pub ty: TensorType,
    /// Its declaration in the source.
    pub span: Span,
}

/// The inputs of `graph`, in declaration order.
pub fn inputs(graph: &Graph) -> Vec<InputSpec> {
    region_inputs(&graph.body)
}

fn region_inputs(region: &Region) -> Vec<InputSpec> {
    region
        .inputs
        .iter()
        .filter_map(|id| {
            let n = region.node(*id);
            match &n.op {
                Op::Input { name, ty, .. } => Some(InputSpec {
                    name: name.clone(),
                    ty: ty.clone(),
                    span: n.span,
                }),
                _ => None,
            }
        })
        .collect()
}

/// Values of the symbolic sizes of one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bindings {
    values: BTreeMap<String, u64>,
    by: BTreeMap<String, String>,
}

impl Bindings {
    /// The value of symbol `name`, if bound.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.values.get(name).copied()
    }

    /// Every bound symbol with its value, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.values.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Binds `name` to `value` (as fixed by input `by`).
    pub fn bind(&mut self, name: &str, value: u64, by: &str) {
        self.values.insert(name.to_string(), value);
        self.by.insert(name.to_string(), by.to_string());
    }

    /// The value of a polynomial size, when all its symbols are bound and it is not
    /// negative.
    pub fn eval_poly(&self, p: &Poly) -> Option<u64> {
        let mut q = p.clone();
        for s in p.symbols() {
            let v = i64::try_from(self.get(&s)?).ok()?;
            q = q.substitute(&s, v)?;
        }
        u64::try_from(q.as_const()?).ok()
    }

    /// The value of a dimension.
    pub fn eval_dim(&self, d: &Dim) -> Option<usize> {
        let v = match d {
            Dim::Known(k) => *k,
            Dim::Sym(p) => self.eval_poly(p)?,
        };
        usize::try_from(v).ok()
    }

    /// The concrete shape of a declared shape.
    pub fn eval_shape(&self, s: &Shape) -> Option<Vec<usize>> {
        s.dims().iter().map(|d| self.eval_dim(d)).collect()
    }
}

/// Checks `given` against the inputs of `graph` and binds every symbolic size; returns the
/// inputs in declaration order with the bindings.
pub fn bind_inputs(
    graph: &Graph,
    given: &BTreeMap<String, Tensor>,
) -> Result<(Vec<Tensor>, Bindings), RunError> {
    let specs = inputs(graph);
    for name in given.keys() {
        if !specs.iter().any(|s| &s.name == name) {
            return Err(RunError::UnknownInput {
                name: name.clone(),
                inputs: specs.iter().map(|s| s.name.clone()).collect(),
                net: graph.span,
            });
        }
    }
    let mut ordered = Vec::with_capacity(specs.len());
    for s in &specs {
        let t = given.get(&s.name).ok_or_else(|| RunError::MissingInput {
            name: s.name.clone(),
            span: s.span,
        })?;
        check_dtype(s, t)?;
        if t.shape().len() != s.ty.shape.rank() {
            return Err(shape_error(s, t, ShapeProblem::Rank));
        }
        ordered.push(t.clone());
    }
    let mut b = Bindings::default();
    // Pass 1: plain symbols bind; known sizes must match.
    for (s, t) in specs.iter().zip(&ordered) {
        for (axis, (d, &n)) in s.ty.shape.dims().iter().zip(t.shape()).enumerate() {
            let n64 = n as u64;
            match d {
                Dim::Known(k) if *k != n64 => {
                    return Err(shape_error(s, t, ShapeProblem::Size { axis, expected: *k }));
                }
                Dim::Known(_) => {}
                Dim::Sym(p) => {
                    let syms = p.symbols();
                    if syms.len() == 1 && *p == Poly::symbol(&syms[0]) {
                        let sym = &syms[0];
                        match b.get(sym) {
                            None => b.bind(sym, n64, &s.name),
                            Some(v) if v == n64 => {}
                            Some(v) => {
                                let by = b.by.get(sym).cloned().unwrap_or_default();
                                return Err(shape_error(
                                    s,
                                    t,
                                    ShapeProblem::Symbol {
                                        axis,
                                        symbol: sym.clone(),
                                        bound: v,
                                        by,
                                    },
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    // Pass 2: size expressions, solved for one unknown symbol if needed, then checked.
    for (s, t) in specs.iter().zip(&ordered) {
        for (axis, (d, &n)) in s.ty.shape.dims().iter().zip(t.shape()).enumerate() {
            let Dim::Sym(p) = d else { continue };
            let unbound: Vec<String> = p
                .symbols()
                .into_iter()
                .filter(|x| b.get(x).is_none())
                .collect();
            if let [sym] = unbound.as_slice() {
                if let Some(v) = solve_linear(p, sym, n as u64, &b) {
                    b.bind(sym, v, &s.name);
                }
            }
            match b.eval_poly(p) {
                Some(v) if v == n as u64 => {}
                Some(v) => {
                    return Err(shape_error(s, t, ShapeProblem::Size { axis, expected: v }));
                }
                None => return Err(shape_error(s, t, ShapeProblem::Unsolved { axis })),
            }
        }
    }
    Ok((ordered, b))
}

fn check_dtype(s: &InputSpec, t: &Tensor) -> Result<(), RunError> {
    let Some(want) = storage(s.ty.dtype) else {
        return Err(RunError::UnsupportedDType {
            name: s.name.clone(),
            span: s.span,
            dtype: s.ty.dtype,
        });
    };
    if want == t.dtype() {
        Ok(())
    } else {
        Err(RunError::InputDType {
            name: s.name.clone(),
            span: s.span,
            declared: s.ty.dtype,
            found: t.dtype(),
        })
    }
}

fn shape_error(s: &InputSpec, t: &Tensor, problem: ShapeProblem) -> RunError {
    RunError::InputShape {
        name: s.name.clone(),
        span: s.span,
        declared: s.ty.shape.clone(),
        found: t.shape().to_vec(),
        problem: Box::new(problem),
    }
}

/// Solves `p(sym) = n` when `p` is `a·sym + c` with the other symbols bound, `a ≠ 0`, and
/// the solution a whole number ≥ 0.
fn solve_linear(p: &Poly, sym: &str, n: u64, b: &Bindings) -> Option<u64> {
    let mut q = p.clone();
    for s in p.symbols() {
        if s != sym {
            q = q.substitute(&s, i64::try_from(b.get(&s)?).ok()?)?;
        }
    }
    let c = q.substitute(sym, 0)?.as_const()?;
    let a = q.substitute(sym, 1)?.as_const()?.checked_sub(c)?;
    // Linear: the value at 2 must be c + 2a.
    if q.substitute(sym, 2)?.as_const()? != c.checked_add(a.checked_mul(2)?)? || a == 0 {
        return None;
    }
    let rhs = i64::try_from(n).ok()?.checked_sub(c)?;
    if rhs % a != 0 {
        return None;
    }
    u64::try_from(rhs / a).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_sizes_are_solved() {
        // T + 1 = 6 gives T = 5; 2·W = 7 has no whole solution.
        let p = Poly::symbol("T")
            .checked_add(&Poly::constant(1))
            .expect("no overflow");
        assert_eq!(solve_linear(&p, "T", 6, &Bindings::default()), Some(5));
        let q = Poly::symbol("W").checked_scale(2).expect("no overflow");
        assert_eq!(solve_linear(&q, "W", 7, &Bindings::default()), None);
        // H·W is not linear in W once H is bound? It is: H = 3 gives 3·W.
        let hw = Poly::symbol("H")
            .checked_mul(&Poly::symbol("W"))
            .expect("no overflow");
        let mut b = Bindings::default();
        b.bind("H", 3, "x");
        assert_eq!(solve_linear(&hw, "W", 12, &b), Some(4));
        assert_eq!(b.eval_dim(&Dim::Sym(hw)), None);
    }
}
