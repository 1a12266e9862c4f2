//! Document URIs ↔ file paths.
//!
//! Editors name documents by URI (`file:///home/ada/nets/model%20v2.net`); the loader reads
//! files by path. Only `file:` URIs map to real paths; any other scheme (`untitled:`, a
//! remote file system) is kept as an opaque name, checked on its own, and its imports are
//! resolved relative to nothing.

use lsp_types::Uri;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

/// The file path a document URI names, or `None` when it is not a `file:` URI.
pub fn to_path(uri: &Uri) -> Option<PathBuf> {
    let s = uri.as_str();
    let rest = s.strip_prefix("file://")?;
    // `file://host/path`: only an empty host or `localhost` is this machine.
    let path = if rest.starts_with('/') {
        rest
    } else {
        let slash = rest.find('/')?;
        if !rest[..slash].eq_ignore_ascii_case("localhost") {
            return None;
        }
        &rest[slash..]
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let decoded = percent_decode(path)?;
    // `file:///C:/x` on Windows: drop the slash before the drive letter.
    let bytes = decoded.as_bytes();
    if cfg!(windows) && bytes.len() >= 3 && bytes[0] == b'/' && bytes[2] == b':' {
        return Some(PathBuf::from(&decoded[1..]));
    }
    Some(PathBuf::from(decoded))
}

/// The `file:` URI of an absolute `path`, or `None` when the path is relative or the result
/// does not parse as a URI.
pub fn from_path(path: &Path) -> Option<Uri> {
    if !path.is_absolute() {
        return None;
    }
    let text = path.to_string_lossy().replace('\\', "/");
    let mut out = String::from("file://");
    if !text.starts_with('/') {
        out.push('/');
    }
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Uri::from_str(&out).ok()
}

/// Lexically normalised path (`a/./b/../c` → `a/c`), the form the server compares paths in.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        Uri::from_str(s).expect("a valid URI")
    }

    #[test]
    fn file_uris_round_trip_with_escapes() {
        let p = Path::new("/tmp/my nets/modèle#1.net");
        let u = from_path(p).expect("absolute");
        assert_eq!(u.as_str(), "file:///tmp/my%20nets/mod%C3%A8le%231.net");
        assert_eq!(to_path(&u).as_deref(), Some(p));
    }

    #[test]
    fn localhost_is_this_machine_and_other_schemes_are_not_paths() {
        assert_eq!(
            to_path(&uri("file://localhost/a/b.net")),
            Some(PathBuf::from("/a/b.net"))
        );
        assert_eq!(to_path(&uri("file://server/a/b.net")), None);
        assert_eq!(to_path(&uri("untitled:Untitled-1")), None);
        assert_eq!(percent_decode("/a/%zz.net"), None);
        assert_eq!(percent_decode("/a/%C3"), None);
    }

    #[test]
    fn normalize_removes_dots() {
        assert_eq!(
            normalize(Path::new("/a/./b/../c.net")),
            PathBuf::from("/a/c.net")
        );
        assert_eq!(normalize(Path::new("../x.net")), PathBuf::from("../x.net"));
    }
}
