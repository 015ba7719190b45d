//! `coracle-artifacts`: where artifacts live and how their URIs map to storage.
//!
//! Today the store is the local file system: an artifact's URI is its absolute path (as
//! `kfp.local` does, so the KFP executor's `Artifact.path` is the URI itself), and passing an
//! artifact from one task to the next hands over that path: nothing is copied. Remote stores
//! (S3, GCS, MinIO) will be added behind the same functions.
//!
//! Invariant: knows nothing about runs or tasks; it maps URIs and prepares locations.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "artifact URI {uri:?} uses a remote store ({scheme}://), which this version of Coracle cannot reach yet"
    )]
    RemoteUnsupported { uri: String, scheme: String },
    #[error("artifact URI {uri:?} is not an absolute local path")]
    NotAbsolute { uri: String },
    #[error("failed to create directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("failed to read artifact at {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// The pipeline root to use: the one asked for, else the spec's `defaultPipelineRoot` when it
/// is local, else `fallback`. Returns the root and, when the spec's root was passed over, why.
pub fn choose_pipeline_root(
    asked: Option<&str>,
    spec_default: Option<&str>,
    fallback: &Path,
) -> (String, Option<String>) {
    if let Some(asked) = asked {
        return (strip_file_scheme(asked).to_string(), None);
    }
    match spec_default {
        Some(root) if local_path(root).is_ok() => (
            strip_file_scheme(root).trim_end_matches('/').to_string(),
            None,
        ),
        Some(root) => (
            fallback.display().to_string(),
            Some(format!(
                "the pipeline's default root {root:?} is not local; artifacts go to {} instead",
                fallback.display()
            )),
        ),
        None => (fallback.display().to_string(), None),
    }
}

fn strip_file_scheme(uri: &str) -> &str {
    uri.strip_prefix("file://").unwrap_or(uri)
}

/// The local path behind an artifact URI (`/abs/path` or `file:///abs/path`).
pub fn local_path(uri: &str) -> Result<PathBuf, Error> {
    if let Some((scheme, _)) = uri.split_once("://")
        && scheme != "file"
    {
        return Err(Error::RemoteUnsupported {
            uri: uri.to_string(),
            scheme: scheme.to_string(),
        });
    }
    let path = Path::new(strip_file_scheme(uri));
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Err(Error::NotAbsolute {
            uri: uri.to_string(),
        })
    }
}

/// Creates each directory (and its parents) so tasks can write their outputs.
pub fn prepare_dirs<S: AsRef<str>>(dirs: &[S]) -> Result<(), Error> {
    for dir in dirs {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// A digest of an artifact's content: SHA-256 of a file, or of a directory's files (their
/// relative paths and contents, in name order). `None` when nothing exists at the URI (a
/// Metrics artifact keeps its values in metadata and may have no file).
pub fn content_digest(uri: &str) -> Result<Option<String>, Error> {
    use sha2::{Digest, Sha256};
    let path = local_path(uri)?;
    let read_error = |path: &Path, source| Error::Read {
        path: path.display().to_string(),
        source,
    };
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(None);
    };
    let mut hasher = Sha256::new();
    if meta.is_dir() {
        let mut stack = vec![path.clone()];
        let mut files = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).map_err(|e| read_error(&dir, e))? {
                let entry = entry.map_err(|e| read_error(&dir, e))?;
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p)
                } else {
                    files.push(p)
                }
            }
        }
        files.sort();
        for file in files {
            let relative = file.strip_prefix(&path).unwrap_or(&file);
            hasher.update(relative.to_string_lossy().as_bytes());
            hasher.update([0]);
            let mut f = std::fs::File::open(&file).map_err(|e| read_error(&file, e))?;
            std::io::copy(&mut f, &mut hasher).map_err(|e| read_error(&file, e))?;
            hasher.update([0]);
        }
    } else {
        let mut f = std::fs::File::open(&path).map_err(|e| read_error(&path, e))?;
        std::io::copy(&mut f, &mut hasher).map_err(|e| read_error(&path, e))?;
    }
    Ok(Some(format!("sha256:{:x}", hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_map_to_local_paths() {
        assert_eq!(local_path("/a/b").unwrap(), PathBuf::from("/a/b"));
        assert_eq!(local_path("file:///a/b").unwrap(), PathBuf::from("/a/b"));
        assert_eq!(
            local_path("gs://bucket/x").unwrap_err().to_string(),
            "artifact URI \"gs://bucket/x\" uses a remote store (gs://), which this version of Coracle cannot reach yet"
        );
        assert!(local_path("relative/x").is_err());
    }

    #[test]
    fn pipeline_root_choice() {
        let fallback = Path::new("/home/u/.coracle/artifacts");
        assert_eq!(
            choose_pipeline_root(Some("file:///r"), Some("/s"), fallback),
            ("/r".to_string(), None)
        );
        assert_eq!(
            choose_pipeline_root(None, Some("/s/"), fallback),
            ("/s".to_string(), None)
        );
        let (root, note) = choose_pipeline_root(None, Some("gs://b"), fallback);
        assert_eq!(root, "/home/u/.coracle/artifacts");
        assert!(note.unwrap().contains("not local"));
        assert_eq!(
            choose_pipeline_root(None, None, fallback).0,
            "/home/u/.coracle/artifacts"
        );
    }

    #[test]
    fn digests_follow_content() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, "abc").unwrap();
        let uri = file.display().to_string();
        let first = content_digest(&uri).unwrap().unwrap();
        assert_eq!(
            first,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::write(&file, "abd").unwrap();
        assert_ne!(content_digest(&uri).unwrap().unwrap(), first);
        assert_eq!(
            content_digest(&tmp.path().join("none").display().to_string()).unwrap(),
            None
        );
        // A directory: same files, same digest; a renamed file changes it.
        let dir = tmp.path().join("d");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/a"), "1").unwrap();
        let d1 = content_digest(&dir.display().to_string()).unwrap().unwrap();
        assert_eq!(
            content_digest(&dir.display().to_string()).unwrap().unwrap(),
            d1
        );
        std::fs::rename(dir.join("sub/a"), dir.join("sub/b")).unwrap();
        assert_ne!(
            content_digest(&dir.display().to_string()).unwrap().unwrap(),
            d1
        );
    }

    #[test]
    fn prepare_dirs_creates_nested_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c").display().to_string();
        prepare_dirs(&[&dir]).unwrap();
        assert!(Path::new(&dir).is_dir());
    }
}
