//! Reading inputs and writing outputs: `.npy` arrays, PNG/JPEG images, plain text for
//! the character-level language models, and atomic writes.
//!
//! - **`.npy`**: `float32` and `float64` (rounded to `f32`) for float inputs; `int32` and
//!   `int64` for integer inputs (token ids). Any byte order and C or Fortran order.
//! - **Images** (PNG, JPEG), see [`read_image`]: decoded, converted to the declared
//!   channel count (1: luma `0.2126 R + 0.7152 G + 0.0722 B`, or the grey values of a grey
//!   image; 3: RGB; alpha dropped), resized to a fixed declared `H x W` (triangle filter,
//!   i.e. bilinear, antialiased when shrinking; the aspect ratio is not kept), scaled to
//!   `[0, 1]`, then optionally normalised with ImageNet's channel means and deviations.
//! - **Text**, see [`Vocab`]: characters to ids through a vocabulary; the default is the
//!   65 characters of the tiny-Shakespeare corpus.
//! - **PNG output** of `[N, 1, H, W]` or `[N, 3, H, W]` tensors, see [`PngScale`].
//!
//! Outputs are written through temporary files renamed into place ([`write_all_atomic`]),
//! so an error never leaves a half-written file.

use super::tensor::Tensor;
use crate::diagnostics::{Code, Diagnostic, Label, SourceMap, Span};
use ndarray::{Array4, ArrayD, Axis, IxDyn};
use ndarray_npy::{ReadNpyError, ReadNpyExt, WriteNpyExt};
use std::path::{Path, PathBuf};

/// Why an input could not be read or an output written.
#[derive(Clone, Debug, PartialEq)]
pub enum IoError {
    /// The file cannot be read (missing, a folder, no permission).
    File {
        /// The file.
        path: PathBuf,
        /// What the system said.
        message: String,
    },
    /// The file cannot be written (no such folder, no permission, disk full).
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        message: String,
    },
    /// The file's content is not what its kind needs (not an image, a broken `.npy`, text
    /// that is not UTF-8 or has characters outside the vocabulary).
    Decode {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor cannot be written as asked (a PNG of something that is not an image).
    Encode {
        /// What was being written.
        what: String,
        /// What is wrong.
        message: String,
    },
}

impl IoError {
    /// The diagnostic for this error. The file is added to `sources` with no text, so the
    /// diagnostic renders as one line naming it.
    pub fn diagnostic(&self, sources: &mut SourceMap) -> Diagnostic {
        let mut at = |path: &Path| {
            let name = path.display().to_string();
            let file = sources.find(&name).unwrap_or_else(|| sources.add(name, ""));
            Label::new(Span::new(file, 0, 0), "")
        };
        match self {
            IoError::File { path, message } => Diagnostic::error(
                Code::Io,
                format!("cannot read `{}`: {message}", path.display()),
                at(path),
            ),
            IoError::Write { path, message } => Diagnostic::error(
                Code::BadOutput,
                format!("cannot write `{}`: {message}", path.display()),
                at(path),
            ),
            IoError::Decode { path, message } => Diagnostic::error(
                Code::BadInputFile,
                format!("`{}` {message}", path.display()),
                at(path),
            ),
            IoError::Encode { what, message } => Diagnostic::error(
                Code::BadOutput,
                format!("cannot write {what}: {message}"),
                at(Path::new("<output>")),
            ),
        }
    }

    /// Whether this is a failure of the file system rather than of the data (exit code 2
    /// rather than 1).
    pub fn is_file_system(&self) -> bool {
        matches!(self, IoError::File { .. } | IoError::Write { .. })
    }

    fn decode(path: &Path, message: impl Into<String>) -> IoError {
        IoError::Decode {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// Reads a whole file.
pub fn read_file(path: &Path) -> Result<Vec<u8>, IoError> {
    std::fs::read(path).map_err(|e| IoError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The kind of an input file, from its extension or, failing that, its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A NumPy `.npy` array.
    Npy,
    /// A PNG or JPEG image.
    Image,
    /// Plain UTF-8 text.
    Text,
}

/// Decides how to read `path` whose contents start with `head`: by extension (`.npy`,
/// `.png`, `.jpg`/`.jpeg`, `.txt`), else by magic bytes, else `None`.
pub fn input_kind(path: &Path, head: &[u8]) -> Option<InputKind> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("npy") => return Some(InputKind::Npy),
        Some("png" | "jpg" | "jpeg") => return Some(InputKind::Image),
        Some("txt") => return Some(InputKind::Text),
        _ => {}
    }
    if head.starts_with(b"\x93NUMPY") {
        Some(InputKind::Npy)
    } else if head.starts_with(b"\x89PNG") || head.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(InputKind::Image)
    } else {
        None
    }
}

/// Reads a `.npy` array: floats as `f32`, integers as `i64` (see the module docs).
pub fn read_npy(path: &Path, bytes: &[u8]) -> Result<Tensor, IoError> {
    let err = |e: ReadNpyError| IoError::decode(path, format!("is not a valid .npy file: {e}"));
    match ArrayD::<f32>::read_npy(bytes) {
        Ok(a) => return Ok(Tensor::F32(a)),
        Err(ReadNpyError::WrongDescriptor(_)) => {}
        Err(e) => return Err(err(e)),
    }
    if let Ok(a) = ArrayD::<f64>::read_npy(bytes) {
        return Ok(Tensor::F32(a.mapv(|v| v as f32)));
    }
    if let Ok(a) = ArrayD::<i64>::read_npy(bytes) {
        return Ok(Tensor::I64(a));
    }
    match ArrayD::<i32>::read_npy(bytes) {
        Ok(a) => Ok(Tensor::I64(a.mapv(i64::from))),
        Err(ReadNpyError::WrongDescriptor(d)) => Err(IoError::decode(
            path,
            format!("holds elements of type {d}; netc reads float32, float64, int32 and int64"),
        )),
        Err(e) => Err(err(e)),
    }
}

/// The `.npy` bytes of a tensor (`float32` or `int64`, C order).
pub fn npy_bytes(t: &Tensor) -> Result<Vec<u8>, IoError> {
    let mut out = Vec::new();
    let r = match t {
        Tensor::F32(a) => a.as_standard_layout().write_npy(&mut out),
        Tensor::I64(a) => a.as_standard_layout().write_npy(&mut out),
    };
    r.map_err(|e| IoError::Encode {
        what: t.describe(),
        message: e.to_string(),
    })?;
    Ok(out)
}

/// Per-channel normalisation applied after scaling an image to `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Normalize {
    /// None: pixel values in `[0, 1]`.
    #[default]
    None,
    /// `(v − mean) / std` with ImageNet's RGB statistics (torchvision's pretrained models):
    /// mean `[0.485, 0.456, 0.406]`, std `[0.229, 0.224, 0.225]`; 3-channel inputs only.
    Imagenet,
}

/// The ImageNet channel means (RGB).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// The ImageNet channel standard deviations (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// How an image is prepared for a net input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageOptions {
    /// Channels the input declares: 1 or 3.
    pub channels: usize,
    /// The declared `(height, width)` when both are known; `None` keeps the image's size.
    pub size: Option<(usize, usize)>,
    /// Normalisation after scaling to `[0, 1]`.
    pub normalize: Normalize,
}

/// Decodes a PNG or JPEG image into a `[1, C, H, W]` tensor as `opts` says (see the
/// module docs for every step).
pub fn read_image(path: &Path, bytes: &[u8], opts: &ImageOptions) -> Result<Array4<f32>, IoError> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| IoError::decode(path, format!("is not a PNG or JPEG image ({e})")))?;
    let grey = !img.color().has_color();
    let (w, h) = (img.width(), img.height());
    let (th, tw) = match opts.size {
        Some((th, tw)) => (th, tw),
        None => (h as usize, w as usize),
    };
    let fit =
        |v: usize| u32::try_from(v).map_err(|_| IoError::decode(path, "is too large to resize"));
    let (th32, tw32) = (fit(th)?, fit(tw)?);
    let filter = image::imageops::FilterType::Triangle;
    let mut out = Array4::<f32>::zeros((1, opts.channels, th, tw));
    match opts.channels {
        1 => {
            let luma: image::ImageBuffer<image::Luma<f32>, Vec<f32>> = if grey {
                img.to_luma32f()
            } else {
                let rgb = img.to_rgb32f();
                image::ImageBuffer::from_fn(w, h, |x, y| {
                    let [r, g, b] = rgb.get_pixel(x, y).0;
                    image::Luma([0.2126 * r + 0.7152 * g + 0.0722 * b])
                })
            };
            let luma = if (w, h) == (tw32, th32) {
                luma
            } else {
                image::imageops::resize(&luma, tw32, th32, filter)
            };
            for (x, y, p) in luma.enumerate_pixels() {
                out[[0, 0, y as usize, x as usize]] = p.0[0];
            }
        }
        3 => {
            let rgb = img.to_rgb32f();
            let rgb = if (w, h) == (tw32, th32) {
                rgb
            } else {
                image::imageops::resize(&rgb, tw32, th32, filter)
            };
            for (x, y, p) in rgb.enumerate_pixels() {
                for c in 0..3 {
                    out[[0, c, y as usize, x as usize]] = p.0[c];
                }
            }
        }
        c => {
            return Err(IoError::decode(
                path,
                format!("is an image, which gives 1 (grey) or 3 (RGB) channels; the input has {c}"),
            ))
        }
    }
    out.mapv_inplace(|v| v.clamp(0.0, 1.0));
    if opts.normalize == Normalize::Imagenet {
        if opts.channels != 3 {
            return Err(IoError::decode(
                path,
                "is to be normalised with ImageNet statistics, which needs 3 channels",
            ));
        }
        for (c, mut plane) in out.axis_iter_mut(Axis(1)).enumerate() {
            plane.mapv_inplace(|v| (v - IMAGENET_MEAN[c]) / IMAGENET_STD[c]);
        }
    }
    Ok(out)
}

/// How float values become 8-bit pixels in PNG output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PngScale {
    /// `clamp(v, 0, 1)`: the inverse of the input scaling, for images (blurs, sharpening).
    #[default]
    Clamp,
    /// `clamp(|v|, 0, 1)`: both signs of a signed response (edge filters) as brightness.
    Abs,
    /// `(v − min) / (max − min)` over each image: any range stretched to black…white.
    Minmax,
}

/// The PNG files of a `[N, C, H, W]` tensor with `C` 1 (grey) or 3 (RGB), one per example,
/// values mapped by `scale` (NaN becomes 0) then rounded to 0…255.
pub fn png_bytes(t: &Tensor, scale: PngScale) -> Result<Vec<Vec<u8>>, IoError> {
    let bad = |m: &str| IoError::Encode {
        what: t.describe(),
        message: m.to_string(),
    };
    let a = t
        .as_f32()
        .ok_or_else(|| bad("only float tensors can be written as images"))?;
    let &[n, c, h, w] = a.shape() else {
        return Err(bad("a PNG needs a [N, C, H, W] image tensor"));
    };
    if c != 1 && c != 3 {
        return Err(bad("a PNG needs 1 (grey) or 3 (RGB) channels"));
    }
    let (w32, h32) = (
        u32::try_from(w).map_err(|_| bad("too wide"))?,
        u32::try_from(h).map_err(|_| bad("too high"))?,
    );
    let mut files = Vec::with_capacity(n);
    for example in a.axis_iter(Axis(0)) {
        let (lo, hi) = example
            .iter()
            .filter(|v| v.is_finite())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let map = |v: f32| -> u8 {
            let u = match scale {
                PngScale::Clamp => v,
                PngScale::Abs => v.abs(),
                PngScale::Minmax if hi > lo => (v - lo) / (hi - lo),
                PngScale::Minmax => 0.0,
            };
            let u = if u.is_nan() { 0.0 } else { u.clamp(0.0, 1.0) };
            (u * 255.0).round() as u8
        };
        let mut raw = Vec::with_capacity(c * h * w);
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    raw.push(map(example[[ch, y, x]]));
                }
            }
        }
        let color = if c == 1 {
            image::ExtendedColorType::L8
        } else {
            image::ExtendedColorType::Rgb8
        };
        let mut png = Vec::new();
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut png),
            &raw,
            w32,
            h32,
            color,
        )
        .map_err(|e| bad(&e.to_string()))?;
        files.push(png);
    }
    Ok(files)
}

/// A character vocabulary for text input: character `i` of the list has id `i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocab {
    chars: Vec<char>,
}

/// The 65 characters of the tiny-Shakespeare corpus (char-rnn, nanoGPT), sorted: newline,
/// space, `!$&',-.3:;?`, `A`–`Z`, `a`–`z`.
pub const SHAKESPEARE_CHARS: &str =
    "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl Vocab {
    /// The tiny-Shakespeare vocabulary (the default; the language models of `nets/` have
    /// `vocab = 65`).
    pub fn shakespeare() -> Vocab {
        Vocab {
            chars: SHAKESPEARE_CHARS.chars().collect(),
        }
    }

    /// The sorted distinct characters of `corpus`, as char-rnn and nanoGPT build their
    /// vocabularies from the training text.
    pub fn from_corpus(corpus: &str) -> Vocab {
        let set: std::collections::BTreeSet<char> = corpus.chars().collect();
        Vocab {
            chars: set.into_iter().collect(),
        }
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The id of `c`.
    pub fn id(&self, c: char) -> Option<i64> {
        self.chars
            .iter()
            .position(|&x| x == c)
            .and_then(|i| i64::try_from(i).ok())
    }

    /// The character of id `i`.
    pub fn char(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }
}

/// Reads UTF-8 text as a `[1, T]` sequence of ids. One trailing newline (the end of the
/// file's last line) is dropped.
pub fn read_text(path: &Path, bytes: &[u8], vocab: &Vocab) -> Result<ArrayD<i64>, IoError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| IoError::decode(path, format!("is not UTF-8 text: {e}")))?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        return Err(IoError::decode(path, "is empty"));
    }
    let mut ids = Vec::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        let id = vocab.id(c).ok_or_else(|| {
            IoError::decode(
                path,
                format!(
                    "has character {c:?} (number {}), which is not in the {}-character vocabulary",
                    i + 1,
                    vocab.len()
                ),
            )
        })?;
        ids.push(id);
    }
    let n = ids.len();
    ArrayD::from_shape_vec(IxDyn(&[1, n]), ids).map_err(|e| IoError::decode(path, e.to_string()))
}

/// Writes every `(path, bytes)`: first all to temporary files next to their targets, then
/// renames them into place. If any write fails, the temporary files are removed and no
/// target is touched.
pub fn write_all_atomic(files: &[(PathBuf, Vec<u8>)]) -> Result<(), IoError> {
    let mut temps: Vec<PathBuf> = Vec::with_capacity(files.len());
    let cleanup = |temps: &[PathBuf]| {
        for t in temps {
            let _ = std::fs::remove_file(t);
        }
    };
    for (path, bytes) in files {
        let tmp = temp_path(path);
        if let Err(e) = std::fs::write(&tmp, bytes) {
            cleanup(&temps);
            let _ = std::fs::remove_file(&tmp);
            return Err(IoError::Write {
                path: path.clone(),
                message: e.to_string(),
            });
        }
        temps.push(tmp);
    }
    for (i, ((path, _), tmp)) in files.iter().zip(&temps).enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            cleanup(&temps[i..]);
            return Err(IoError::Write {
                path: path.clone(),
                message: e.to_string(),
            });
        }
    }
    Ok(())
}

/// `dir/.name.tmpPID`: hidden, in the target's folder (so the rename stays on one file
/// system), unique per process.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = format!(".{name}.tmp{}", std::process::id());
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.join(tmp),
        None => PathBuf::from(tmp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabularies() {
        let v = Vocab::shakespeare();
        assert_eq!(v.len(), 65);
        assert_eq!(v.id('\n'), Some(0));
        assert_eq!(v.id('A'), Some(13));
        assert_eq!(v.id('z'), Some(64));
        assert_eq!(v.char(13), Some('A'));
        let c = Vocab::from_corpus("hello");
        assert_eq!(c.len(), 4);
        assert_eq!(c.id('l'), Some(2));
        let ids = read_text(Path::new("t.txt"), b"Hi!\n", &v).expect("reads");
        assert_eq!(ids.into_raw_vec_and_offset().0, vec![20, 47, 2]);
        assert!(read_text(Path::new("t.txt"), "é".as_bytes(), &v).is_err());
        assert!(read_text(Path::new("t.txt"), b"\n", &v).is_err());
    }

    #[test]
    fn npy_round_trip_and_dtypes() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1.0f32, 2.0, 3.0, 4.0]).expect("fits");
        let t = Tensor::F32(a);
        let bytes = npy_bytes(&t).expect("writes");
        assert_eq!(read_npy(Path::new("a.npy"), &bytes).expect("reads"), t);
        let mut ib = Vec::new();
        ArrayD::from_shape_vec(IxDyn(&[3]), vec![1i32, 2, 3])
            .expect("fits")
            .write_npy(&mut ib)
            .expect("writes");
        let i = read_npy(Path::new("i.npy"), &ib).expect("reads");
        assert_eq!(
            i.as_i64().map(|a| a.iter().copied().collect::<Vec<_>>()),
            Some(vec![1, 2, 3])
        );
        let mut ub = Vec::new();
        ArrayD::from_shape_vec(IxDyn(&[1]), vec![1u8])
            .expect("fits")
            .write_npy(&mut ub)
            .expect("writes");
        let e = read_npy(Path::new("u.npy"), &ub).expect_err("u8 is not read");
        assert!(
            matches!(&e, IoError::Decode { message, .. } if message.contains("|u1")),
            "{e:?}"
        );
        assert!(read_npy(Path::new("x.npy"), b"\x93NUMPY garbage").is_err());
    }

    #[test]
    fn images_round_trip_through_png() {
        // A 2x3 grey ramp written as PNG and read back exactly.
        let a = ArrayD::from_shape_vec(IxDyn(&[1, 1, 2, 3]), vec![0.0f32, 0.2, 0.4, 0.6, 0.8, 1.0])
            .expect("fits");
        let png = png_bytes(&Tensor::F32(a.clone()), PngScale::Clamp).expect("encodes");
        assert_eq!(png.len(), 1);
        let opts = ImageOptions {
            channels: 1,
            size: None,
            normalize: Normalize::None,
        };
        let back = read_image(Path::new("a.png"), &png[0], &opts).expect("decodes");
        for (x, y) in back.iter().zip(a.iter()) {
            assert!((x - y).abs() <= 0.5 / 255.0, "{x} vs {y}");
        }
        // As RGB: three equal channels; resized to 4x6.
        let rgb = ImageOptions {
            channels: 3,
            size: Some((4, 6)),
            normalize: Normalize::None,
        };
        let big = read_image(Path::new("a.png"), &png[0], &rgb).expect("decodes");
        assert_eq!(big.shape(), &[1, 3, 4, 6]);
        assert_eq!(big[[0, 0, 1, 1]], big[[0, 2, 1, 1]]);
        // Min-max stretches; abs folds signs.
        let s =
            ArrayD::from_shape_vec(IxDyn(&[1, 1, 1, 3]), vec![-2.0f32, 0.0, 2.0]).expect("fits");
        let mm = png_bytes(&Tensor::F32(s.clone()), PngScale::Minmax).expect("encodes");
        let back = read_image(Path::new("m.png"), &mm[0], &opts).expect("decodes");
        assert_eq!(
            back.iter()
                .map(|v| (v * 255.0).round() as u8)
                .collect::<Vec<_>>(),
            vec![0, 128, 255]
        );
        let ab = png_bytes(&Tensor::F32(s), PngScale::Abs).expect("encodes");
        let back = read_image(Path::new("b.png"), &ab[0], &opts).expect("decodes");
        assert_eq!(
            back.iter().copied().collect::<Vec<_>>(),
            vec![1.0, 0.0, 1.0]
        );
        // Not an image.
        assert!(read_image(Path::new("x.png"), b"hello", &opts).is_err());
        let flat = Tensor::F32(ArrayD::zeros(IxDyn(&[1, 10])));
        assert!(png_bytes(&flat, PngScale::Clamp).is_err());
    }

    #[test]
    fn atomic_writes_leave_nothing_on_failure() {
        let dir = std::env::temp_dir().join(format!("netc-io-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let ok = dir.join("a.bin");
        let bad = dir.join("missing-folder").join("b.bin");
        let r = write_all_atomic(&[(ok.clone(), vec![1, 2]), (bad, vec![3])]);
        assert!(r.is_err());
        assert!(
            !ok.exists(),
            "the first file must not be written when the second fails"
        );
        assert_eq!(std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(99), 0);
        write_all_atomic(&[(ok.clone(), vec![1, 2])]).expect("writes");
        assert_eq!(std::fs::read(&ok).ok(), Some(vec![1, 2]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
