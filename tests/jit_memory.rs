//! Calls of compiled code after warm-up allocate nothing, and memory stays flat over
//! 10,000 calls of LeNet-5. Alone in its test binary, so that no other test's allocations
//! move the process's resident memory.

use ndarray::{ArrayD, IxDyn};
use netc::codegen::CodegenOptions;
use netc::model::{Model, ModelOptions};
use netc::passes::pipeline::PassOptions;
use netc::runtime::Tensor;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the allocations of the thread that set `COUNTING` (other tests run in parallel
/// on other threads).
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

// SAFETY-free: `GlobalAlloc` is an unsafe trait, but this test crate forwards to `System`
// unchanged; the lint against unsafe code applies to the library, not to tests.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn lenet() -> (Model, netc::runtime::weights::Weights) {
    let root = env!("CARGO_MANIFEST_DIR");
    let model = Model::load(
        &std::path::Path::new(root).join("nets/lenet5.net"),
        &ModelOptions {
            passes: Some(PassOptions::default()),
            ..ModelOptions::default()
        },
    )
    .expect("loads");
    let w = model.init_weights(0);
    (model, w)
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn calls_after_warm_up_allocate_nothing_and_memory_stays_flat() {
    let (model, w) = lenet();
    let compiled = model.compile(&CodegenOptions::default()).expect("compiles");
    let mut exe = compiled.bind(&w).expect("binds");
    let x = ArrayD::from_shape_fn(IxDyn(&[2, 1, 32, 32]), |i| {
        (i[2] * 32 + i[3]) as f32 / 1024.0
    });
    let inputs = BTreeMap::from([("x".to_string(), Tensor::F32(x))]);
    let mut out = BTreeMap::new();
    exe.run_into(&inputs, &mut out).expect("runs");
    exe.run_into(&inputs, &mut out).expect("runs");
    let first = out.clone();
    ALLOCATIONS.store(0, Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    for _ in 0..100 {
        let _ = exe.run_into(&inputs, &mut out);
    }
    COUNTING.with(|c| c.set(false));
    let n = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(n, 0, "{n} allocations in 100 calls after warm-up");
    assert_eq!(out, first, "the same outputs every call");
    let before = rss_bytes();
    for _ in 0..10_000 {
        exe.run_into(&inputs, &mut out).expect("runs");
    }
    let after = rss_bytes();
    if let (Some(b), Some(a)) = (before, after) {
        assert!(
            a <= b + (1 << 20),
            "RSS grew from {b} to {a} bytes over 10,000 calls"
        );
    }
    // A new batch size binds new tables, once; the outputs follow the new shape.
    let x5 = ArrayD::from_elem(IxDyn(&[5, 1, 32, 32]), 0.5f32);
    let in5 = BTreeMap::from([("x".to_string(), Tensor::F32(x5))]);
    exe.run_into(&in5, &mut out).expect("runs at batch 5");
    assert_eq!(out["logits"].shape(), &[5, 10]);
}
