//! netc's single-precision GEMM against the `gemm` crate (faer's engine), one thread,
//! row-major `C = A·B` on cubes of 1024, 256 and 64 (or the sizes given as arguments):
//! every kernel variant this machine supports, the pre-packed-B path, and `gemm` with
//! `Parallelism::None`. Runs are interleaved (one run of each variant per round) so drift
//! in the machine's speed hits all alike. The table gives the median wall time and its
//! GFLOP/s, and on Linux also GFLOP/s from the thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), which time slices lost to other processes on a shared
//! machine do not inflate; the ratio to `gemm` uses CPU time where there is one.
//!
//! Run with `cargo bench --bench sgemm [-- SIZE… FILTER…]`, e.g. `-- 512 avx2` (sizes
//! replace the default ones; words keep the variants whose names contain them).
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark prints its figures and may stop on a broken set-up"
)]
#![allow(
    unsafe_code,
    reason = "the `gemm` crate's entry point is an unsafe fn on raw pointers, and the \
              thread's CPU clock is read through libc's `clock_gettime`"
)]

use netc::codegen::kernels::gemm::{sgemm_packed, sgemm_with, Isa, MatMut, MatRef, PackedB};
use std::time::Instant;

/// Rounds per size (each round runs every variant once, or a batch for small sizes).
const ROUNDS: usize = 15;

/// Deterministic values in [-1, 1) (a 64-bit LCG).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The CPU time this thread has used, in seconds (Linux; `None` elsewhere).
#[cfg(target_os = "linux")]
fn thread_cpu_seconds() -> Option<f64> {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `clock_gettime` writes one `struct timespec` (two 64-bit fields on 64-bit
    // Linux) to a pointer that is valid for it.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0 && cfg!(target_pointer_width = "64")).then_some(ts.sec as f64 + ts.nsec as f64 * 1e-9)
}

/// The CPU time this thread has used (Linux only).
#[cfg(not(target_os = "linux"))]
fn thread_cpu_seconds() -> Option<f64> {
    None
}

/// A closure computing `C = A·B` into its argument, for the current size.
type Run<'a> = Box<dyn FnMut(&mut [f32]) + 'a>;

/// One contender: a name and its closure.
struct Variant<'a> {
    name: String,
    run: Run<'a>,
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![1024, 256, 64]
    } else {
        sizes
    };
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| a.parse::<usize>().is_err())
        .map(|a| a.as_str())
        .collect();
    println!(
        "netc sgemm vs the gemm crate, 1 thread, {ROUNDS} interleaved rounds; detected: {}",
        Isa::detected().name()
    );
    println!(
        "{:>5} {:<26} {:>11} {:>9} {:>9} {:>8}",
        "size", "variant", "wall med", "GFLOP/s", "cpu GF/s", "vs gemm"
    );
    for s in sizes {
        bench_size(s, &filters);
    }
}

fn bench_size(s: usize, filters: &[&str]) {
    let (m, n, k) = (s, s, s);
    let a = values(m * k, 1);
    let b = values(k * n, 2);
    let mut c = vec![0.0f32; m * n];
    let flop = 2.0 * (m * n * k) as f64;
    // Batch small sizes so each timed sample lasts about 20 ms or more.
    let batch = ((2e9 / flop).ceil() as usize).max(1);
    let packed = PackedB::new(k, n, &b, n as isize, 1).unwrap();

    let mut variants: Vec<Variant> = Vec::new();
    variants.push(Variant {
        name: "gemm crate".into(),
        run: Box::new(|c: &mut [f32]| {
            // SAFETY: A is m×k, B k×n, C m×n, all dense row-major and disjoint.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    1,
                    k as isize,
                    b.as_ptr(),
                    1,
                    n as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                )
            }
        }),
    });
    for isa in Isa::supported() {
        let (a, b) = (&a, &b);
        variants.push(Variant {
            name: format!("netc {}", isa.name()),
            run: Box::new(move |c: &mut [f32]| {
                let (a, b) = (MatRef::row_major(a, m, k), MatRef::row_major(b, k, n));
                sgemm_with(isa, a, b, MatMut::row_major(c, m, n), &[], false).unwrap();
            }),
        });
    }
    variants.push(Variant {
        name: format!("netc {} packed B", packed.isa().name()),
        run: Box::new(|c: &mut [f32]| {
            let a = MatRef::row_major(&a, m, k);
            sgemm_packed(a, &packed, MatMut::row_major(c, m, n), &[], false).unwrap();
        }),
    });
    // The `gemm` crate (the reference) always runs; the others when a filter matches.
    variants.retain(|v| {
        v.name == "gemm crate" || filters.is_empty() || filters.iter().any(|f| v.name.contains(f))
    });

    // Warm up (and fill the per-thread packing buffers), then interleave the rounds.
    for v in &mut variants {
        (v.run)(&mut c);
    }
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..ROUNDS {
        for (i, v) in variants.iter_mut().enumerate() {
            let (start, cpu_start) = (Instant::now(), thread_cpu_seconds());
            for _ in 0..batch {
                (v.run)(&mut c);
            }
            wall[i].push(start.elapsed().as_secs_f64() / batch as f64);
            if let (Some(t0), Some(t1)) = (cpu_start, thread_cpu_seconds()) {
                cpu[i].push((t1 - t0) / batch as f64);
            }
        }
    }
    let median = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs.get(xs.len() / 2).copied()
    };
    let wall: Vec<f64> = wall.into_iter().map(|t| median(t).unwrap()).collect();
    let cpu: Vec<Option<f64>> = cpu.into_iter().map(median).collect();
    for (i, v) in variants.iter().enumerate() {
        let (ratio, cpu_gf) = match (cpu[0], cpu[i]) {
            (Some(reference), Some(t)) => (reference / t, format!("{:9.1}", flop / t / 1e9)),
            _ => (wall[0] / wall[i], format!("{:>9}", "-")),
        };
        println!(
            "{:>5} {:<26} {:>9.3}ms {:>9.1} {} {:>7.2}x",
            s,
            v.name,
            wall[i] * 1e3,
            flop / wall[i] / 1e9,
            cpu_gf,
            ratio
        );
    }
}
