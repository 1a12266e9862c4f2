//! Running nets: weights files (and, next, the reference interpreter over the IR).

pub mod weights;
