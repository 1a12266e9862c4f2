//! Memory planning: for every net in `nets/` the planned arena lies between the lower
//! bound and the unplanned sum (`lower_bound <= planned <= unplanned`), and for VGG-16 at
//! batch 1 the plan is within 10% of the lower bound.

use netc::passes::pipeline::PassOptions;
use netc::passes::{compile_with, CompileOptions};
use netc::report::table::Memory;
use netc::syntax::loader::{load_source_with, DiskReader};
use std::path::PathBuf;

/// The memory figures of `file` at `batch` after all passes (`T`/`U` set to small
/// lengths, since plans need known sizes).
fn memory(file: &str, batch: u64) -> Vec<(String, Memory)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("nets")
        .join(file);
    let source = std::fs::read_to_string(&path)
        .expect("readable net")
        .replace("i64[N, T]", "i64[N, 16]")
        .replace("i64[N, U]", "i64[N, 12]")
        .replace("f32[N, 1, H, W]", "f32[N, 1, 64, 48]");
    let loaded = load_source_with(&path.to_string_lossy(), source.as_bytes(), &DiskReader);
    let (program, diags) = netc::check_program(loaded);
    assert!(!diags.has_errors(), "{file}: {diags:?}");
    let nets: Vec<String> = source
        .lines()
        .filter_map(|l| l.strip_prefix("net "))
        .filter_map(|l| l.split('(').next())
        .map(|n| n.trim().to_string())
        .collect();
    nets.into_iter()
        .map(|net| {
            let opts = CompileOptions {
                net: Some(net.clone()),
                batch: Some(batch),
            };
            let c = compile_with(&program, &opts, &PassOptions::default()).expect("compiles");
            let m = c.compiled.report.totals.memory.expect("sizes are known");
            (net, m)
        })
        .collect()
}

#[test]
fn plans_lie_between_the_bounds() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nets");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("nets/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".net"))
        .collect();
    files.sort();
    assert!(files.len() > 10);
    for file in files {
        for (net, m) in memory(&file, 1) {
            assert!(
                m.lower_bound_bytes <= m.planned_peak_bytes
                    && m.planned_peak_bytes <= m.unplanned_bytes,
                "{net}: {m:?}"
            );
            assert!(m.lower_bound_bytes > 0, "{net}: {m:?}");
        }
    }
}

#[test]
fn vgg16_plan_is_within_ten_percent_of_the_lower_bound() {
    for (net, m) in memory("vgg16.net", 1) {
        assert!(
            m.planned_peak_bytes * 10 <= m.lower_bound_bytes * 11,
            "{net}: {m:?}"
        );
        // The plan reuses memory: far below one buffer per value.
        assert!(m.planned_peak_bytes * 2 < m.unplanned_bytes, "{net}: {m:?}");
    }
}
