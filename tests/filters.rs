//! The lecture's fixed filters (`nets/filters.net`) run by `netc run` on synthetic images
//! with known responses, and on a real photograph (`tests/data/camera.png`).

use ndarray::{ArrayD, Ix4};
use ndarray_npy::ReadNpyExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn netc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("netc runs")
}

/// A fresh folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netc-filters-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Writes a grey PNG whose pixel (y, x) is `f(y, x)` (0…255).
fn grey_png(path: &Path, h: u32, w: u32, f: impl Fn(u32, u32) -> u8) {
    let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([f(y, x)]));
    img.save(path).expect("writes png");
}

/// Runs the filters on `input`, writing every output as `.npy`; returns them by name as
/// `[H, W]` planes.
fn run_filters(dir: &Path, input: &Path) -> Vec<(String, ndarray::Array2<f32>)> {
    let out = dir.join("out.npy");
    let o = netc(&[
        "run",
        "nets/filters.net",
        "--input",
        s(input),
        "--output",
        s(&out),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    ["box", "gaussian", "sharpen", "h_edge", "v_edge", "motion"]
        .iter()
        .map(|name| {
            let path = dir.join(format!("out_{name}.npy"));
            let file = std::fs::File::open(&path).expect("output written");
            let a = ArrayD::<f32>::read_npy(file).expect("valid npy");
            let a = a.into_dimensionality::<Ix4>().expect("[N, C, H, W]");
            assert_eq!(&a.shape()[..2], &[1, 1]);
            (
                name.to_string(),
                a.index_axis_move(ndarray::Axis(0), 0)
                    .index_axis_move(ndarray::Axis(0), 0),
            )
        })
        .collect()
}

fn get<'a>(outs: &'a [(String, ndarray::Array2<f32>)], name: &str) -> &'a ndarray::Array2<f32> {
    &outs.iter().find(|(n, _)| n == name).expect("output").1
}

#[test]
fn vertical_edge_kernel_responds_only_along_a_vertical_step() {
    // Dark left half (0), bright right half (1) from column 9 on; 12 x 16 pixels.
    let dir = scratch("step");
    let input = dir.join("step.png");
    let (h, w, step) = (12usize, 16usize, 9usize);
    grey_png(&input, h as u32, w as u32, |_, x| {
        if x as usize >= step {
            255
        } else {
            0
        }
    });
    let outs = run_filters(&dir, &input);
    let v = get(&outs, "v_edge");
    assert_eq!(v.shape(), &[h, w], "pad: same keeps H x W");
    // v_edge3 = [1, 0, -1] in each of three rows: left minus right. Away from the image
    // border, the columns either side of the step see 0 on the left and 1 on the right:
    // 3 · (0 − 1) = −3; every other column sees equal neighbours: 0.
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let want = if x == step - 1 || x == step {
                -3.0
            } else {
                0.0
            };
            assert_eq!(v[[y, x]], want, "v_edge at ({y}, {x})");
        }
    }
    // The horizontal-edge kernel sees no change from top to bottom away from the border.
    let hz = get(&outs, "h_edge");
    for y in 1..h - 1 {
        for x in 0..w {
            assert_eq!(hz[[y, x]], 0.0, "h_edge at ({y}, {x})");
        }
    }
    // The same step written as a PNG with `abs`: white exactly on the two step columns
    // (|−3| clamps to 1), black elsewhere inside.
    let png = dir.join("edges.png");
    let png_arg = format!("v_edge={}", s(&png));
    let o = netc(&[
        "run",
        "nets/filters.net",
        "--input",
        s(&input),
        "--output",
        &png_arg,
        "--png-scale",
        "abs",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let img = image::open(&png).expect("png").to_luma8();
    assert_eq!(img.dimensions(), (w as u32, h as u32));
    for x in 1..w - 1 {
        let want = if x == step - 1 || x == step { 255 } else { 0 };
        assert_eq!(img.get_pixel(x as u32, 5).0[0], want, "column {x}");
    }
    // Only the asked-for output was written.
    assert!(!dir.join("edges_box.png").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn blurs_and_sharpening_keep_a_constant_image() {
    // 153/255 = 0.6 everywhere.
    let dir = scratch("constant");
    let input = dir.join("grey.png");
    grey_png(&input, 10, 11, |_, _| 153);
    let outs = run_filters(&dir, &input);
    let c = 0.6f32;
    // Kernel sums: box and sharpen exactly 1; the lecture's rounded Gaussian and motion
    // tables sum to 0.9995 and 1.0001.
    let sums = [
        ("box", 1.0f32, 1),
        ("sharpen", 1.0, 1),
        ("gaussian", 0.9995, 2),
        ("motion", 1.0001, 2),
        ("h_edge", 0.0, 1),
        ("v_edge", 0.0, 1),
    ];
    for (name, sum, reach) in sums {
        let a = get(&outs, name);
        assert_eq!(a.shape(), &[10, 11]);
        for y in reach..10 - reach {
            for x in reach..11 - reach {
                let got = a[[y, x]];
                assert!((got - c * sum).abs() < 1e-5, "{name} at ({y}, {x}): {got}");
            }
        }
    }
    // At a corner the zero padding shows: the box filter sees 4 of its 9 taps.
    let b = get(&outs, "box");
    assert!((b[[0, 0]] - c * 4.0 / 9.0).abs() < 1e-6, "{}", b[[0, 0]]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn six_pictures_of_a_photograph() {
    let dir = scratch("camera");
    let out = dir.join("out.png");
    let o = netc(&[
        "run",
        "nets/filters.net",
        "--input",
        "tests/data/camera.png",
        "--output",
        s(&out),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let photo = image::open("tests/data/camera.png")
        .expect("camera.png")
        .to_luma8();
    for name in ["box", "gaussian", "sharpen", "h_edge", "v_edge", "motion"] {
        let path = dir.join(format!("out_{name}.png"));
        assert!(stdout.contains(&format!("out_{name}.png")), "{stdout}");
        let img = image::open(&path).expect("a PNG per output").to_luma8();
        assert_eq!(img.dimensions(), photo.dimensions(), "{name}");
    }
    // The blur is close to the photo on average but not equal to it.
    let blur = image::open(dir.join("out_box.png"))
        .expect("png")
        .to_luma8();
    let diffs: Vec<i32> = blur
        .pixels()
        .zip(photo.pixels())
        .map(|(a, b)| i32::from(a.0[0]) - i32::from(b.0[0]))
        .collect();
    let mean_abs = diffs.iter().map(|d| d.abs()).sum::<i32>() as f64 / diffs.len() as f64;
    assert!(
        mean_abs > 0.5 && mean_abs < 20.0,
        "mean |blur - photo| = {mean_abs}"
    );
    // No temporary files are left next to the outputs.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
