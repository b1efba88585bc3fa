//! Reading an uploaded zip safely: every entry name is checked before anything is read, and the
//! bytes actually inflated are counted (headers can lie), so a zip bomb stops at the limit.

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::error::{PackageError, Result};
use crate::manifest::{Manifest, MANIFEST_FILE};

/// Bounds on what an upload may unpack to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most entries (files and directories) in the zip.
    pub max_entries: usize,
    /// Most bytes all entries inflate to, together.
    pub max_uncompressed: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 1000,
            max_uncompressed: 128 * 1024 * 1024,
        }
    }
}

/// A package whose archive is safe and whose manifest is valid; the component is not checked yet.
#[derive(Debug)]
pub struct Package {
    pub manifest: Manifest,
    pub component: Vec<u8>,
}

fn unsafe_entry(name: &str, reason: &'static str) -> PackageError {
    PackageError::UnsafeEntry {
        name: name.to_string(),
        reason,
    }
}

/// Rejects names that could escape an extraction directory on any platform.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('\0') {
        return Err(unsafe_entry(
            name,
            "empty names and NUL bytes are not allowed",
        ));
    }
    let bytes = name.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if name.starts_with('/') || name.starts_with('\\') || drive {
        return Err(unsafe_entry(name, "absolute paths are not allowed"));
    }
    // Backslashes are not separators in zip names, but Windows extractors treat them as such.
    if name.split(['/', '\\']).any(|part| part == "..") {
        return Err(unsafe_entry(name, "'..' path components are not allowed"));
    }
    Ok(())
}

/// Whether the entry's bytes are worth keeping: only the manifest and components are used.
fn keep(name: &str) -> bool {
    name == MANIFEST_FILE || name.ends_with(".wasm")
}

/// Checks the archive against `limits` and the manifest against its rules, and returns the
/// manifest with the component it names.
pub fn read_package(bytes: &[u8], limits: &Limits) -> Result<Package> {
    let mut archive =
        ZipArchive::new(Cursor::new(bytes)).map_err(|e| PackageError::NotAZip(e.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(PackageError::TooManyEntries {
            limit: limits.max_entries,
        });
    }

    let too_large = PackageError::TooLarge {
        limit: limits.max_uncompressed,
    };
    let mut names = HashSet::new();
    let mut kept: HashMap<String, Vec<u8>> = HashMap::new();
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| PackageError::NotAZip(format!("entry {index}: {e}")))?;
        let name = entry
            .name()
            .map_err(|e| PackageError::NotAZip(format!("entry {index} has no readable name: {e}")))?
            .into_owned();
        check_name(&name)?;
        if entry.is_symlink() {
            return Err(unsafe_entry(&name, "symbolic links are not allowed"));
        }
        if !names.insert(name.clone()) {
            return Err(unsafe_entry(&name, "the name appears twice"));
        }
        if entry.is_dir() {
            continue;
        }
        // The declared size is a cheap early answer for honest archives; the real bound is the
        // count of inflated bytes below.
        if entry.size() > limits.max_uncompressed - total {
            return Err(too_large);
        }
        let remaining = limits.max_uncompressed - total;
        let mut sink = Vec::new();
        let read = (&mut entry)
            .take(remaining + 1)
            .read_to_end(&mut sink)
            .map_err(|e| PackageError::NotAZip(format!("entry {name:?} cannot be read: {e}")))?;
        total += read as u64;
        if total > limits.max_uncompressed {
            return Err(too_large);
        }
        if keep(&name) {
            kept.insert(name, sink);
        }
    }

    let manifest_bytes = kept
        .remove(MANIFEST_FILE)
        .ok_or(PackageError::MissingManifest)?;
    let text = String::from_utf8(manifest_bytes)
        .map_err(|_| PackageError::InvalidManifest("it is not UTF-8 text".into()))?;
    let manifest = Manifest::parse(&text)?;
    let component =
        kept.remove(&manifest.component)
            .ok_or_else(|| PackageError::MissingComponent {
                path: manifest.component.clone(),
            })?;
    Ok(Package {
        manifest,
        component,
    })
}

/// Zips the regular files under `dir` (the layout of a package: `handler.toml` at the root),
/// as `mh package push` does for a directory. Symbolic links are refused, as the server would.
pub fn zip_directory(dir: &Path) -> Result<Vec<u8>> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PackageError::Io { path, source }
    };
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(io(&current))? {
            let entry = entry.map_err(io(&current))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            if kind.is_symlink() {
                return Err(PackageError::Io {
                    path,
                    source: std::io::Error::other("symbolic links cannot be packaged"),
                });
            }
            if kind.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    // A stable order makes the same directory produce the same archive.
    files.sort();

    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let zip_error = |e: zip::result::ZipError| PackageError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::other(e),
    };
    for path in files {
        let relative = path.strip_prefix(dir).map_err(|_| PackageError::Io {
            path: path.clone(),
            source: std::io::Error::other("outside the package directory"),
        })?;
        let name = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let content = std::fs::read(&path).map_err(io(&path))?;
        writer.start_file(name, options).map_err(zip_error)?;
        writer.write_all(&content).map_err(io(&path))?;
    }
    let cursor = writer.finish().map_err(zip_error)?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "name = \"t\"\nruntime = \"wasm-component\"\nruntime_version = \"1.0.0\"\ncomponent = \"handler.wasm\"\n";

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in entries {
            writer
                .start_file(*name, SimpleFileOptions::default())
                .unwrap();
            writer.write_all(content).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn error_of(bytes: &[u8], limits: &Limits) -> String {
        read_package(bytes, limits).unwrap_err().to_string()
    }

    #[test]
    fn manifest_and_component_are_found() {
        let bytes = zip_of(&[
            ("handler.toml", MANIFEST.as_bytes()),
            ("handler.wasm", b"\0asm"),
            ("README.md", b"hi"),
        ]);
        let package = read_package(&bytes, &Limits::default()).unwrap();
        assert_eq!(package.component, b"\0asm");
        assert_eq!(package.manifest.name, "t");
    }

    #[test]
    fn unsafe_names_are_rejected() {
        for (name, reason) in [
            ("../evil", "'..'"),
            ("a/../../evil", "'..'"),
            ("a\\..\\evil", "'..'"),
            ("/etc/passwd", "absolute"),
            ("C:/evil", "absolute"),
        ] {
            let bytes = zip_of(&[(name, b"x")]);
            let message = error_of(&bytes, &Limits::default());
            assert!(message.contains(reason), "{name}: {message}");
        }
    }

    #[test]
    fn limits_hold() {
        let bytes = zip_of(&[("a", b"1"), ("b", b"2"), ("c", b"3")]);
        let limits = Limits {
            max_entries: 2,
            max_uncompressed: 100,
        };
        assert!(error_of(&bytes, &limits).contains("more than 2 zip entries"));
        let big = vec![0u8; 1000];
        let bytes = zip_of(&[("handler.toml", MANIFEST.as_bytes()), ("big", &big)]);
        assert!(error_of(&bytes, &limits).contains("more than 100 bytes"));
    }

    /// Rewrites the uncompressed size in every local and central header to `size`.
    fn lie_about_sizes(mut zip: Vec<u8>, size: u32) -> Vec<u8> {
        for at in 0..zip.len().saturating_sub(30) {
            let offset = match u32::from_le_bytes(zip[at..at + 4].try_into().unwrap()) {
                0x0403_4b50 => 22,
                0x0201_4b50 => 24,
                _ => continue,
            };
            zip[at + offset..at + offset + 4].copy_from_slice(&size.to_le_bytes());
        }
        zip
    }

    #[test]
    fn headers_that_lie_about_sizes_do_not_get_past_the_limit() {
        let zeros = vec![0u8; 4 * 1024 * 1024];
        let bomb = zip_of(&[
            ("handler.toml", MANIFEST.as_bytes()),
            ("handler.wasm", &zeros),
        ]);
        let limits = Limits {
            max_entries: 10,
            max_uncompressed: 1024 * 1024,
        };
        let message = error_of(&bomb, &limits);
        assert!(message.contains("more than 1048576 bytes"), "{message}");
        let message = error_of(&lie_about_sizes(bomb, 10), &limits);
        // zip itself notices the lie while inflating; the byte count is the second line of defence.
        assert!(
            message.contains("more than 1048576 bytes")
                || message.contains("larger than its declared uncompressed size"),
            "{message}"
        );
    }

    #[test]
    fn missing_parts_are_named() {
        let bytes = zip_of(&[("handler.wasm", b"x")]);
        assert!(error_of(&bytes, &Limits::default()).contains("no handler.toml"));
        let bytes = zip_of(&[("handler.toml", MANIFEST.as_bytes())]);
        assert!(error_of(&bytes, &Limits::default())
            .contains("\"handler.wasm\" named by handler.toml is not in the package"));
        assert!(error_of(b"not a zip", &Limits::default()).contains("not a valid zip"));
    }

    #[test]
    fn directories_zip_into_packages() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("handler.toml"), MANIFEST).unwrap();
        std::fs::create_dir(dir.path().join("docs")).unwrap();
        std::fs::write(dir.path().join("docs/notes.txt"), "n").unwrap();
        std::fs::write(dir.path().join("handler.wasm"), b"\0asm").unwrap();
        let bytes = zip_directory(dir.path()).unwrap();
        let package = read_package(&bytes, &Limits::default()).unwrap();
        assert_eq!(package.component, b"\0asm");
    }
}
