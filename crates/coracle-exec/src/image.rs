//! What an image name tells the process backend: whether it is a Python image, and which
//! Python version it promises.

/// The repository's last path component and the tag, from `[registry/]path/name[:tag][@digest]`.
fn name_and_tag(image: &str) -> (&str, &str) {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        Some((name, tag)) => (name, tag),
        None => (last, ""),
    }
}

/// `python:*` images and the common vendor spellings (`ubi9/python-311`, `…/python3`).
pub fn is_python_image(image: &str) -> bool {
    let (name, _) = name_and_tag(image);
    name == "python"
        || name
            .strip_prefix("python-")
            .is_some_and(|rest| rest.starts_with('3'))
        || name
            .strip_prefix("python")
            .is_some_and(|rest| rest.starts_with('3'))
}

/// `(3, minor)` that the image promises: `python:3.11-slim` → 3.11, `ubi9/python-311` → 3.11.
/// `None` for `python:latest`, `python:alpine3.9` and non-Python images.
pub fn python_version_of_image(image: &str) -> Option<(u32, u32)> {
    let (name, tag) = name_and_tag(image);
    if name == "python" {
        let mut parts = tag.split(|c: char| !c.is_ascii_digit());
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next()?.parse().ok()?;
        // `3.11` must really be `3.11…`, not `3-…` followed by an unrelated number.
        if major != 3 || !tag.starts_with(&format!("{major}.{minor}")) {
            return None;
        }
        return Some((major, minor));
    }
    let digits = name
        .strip_prefix("python-")
        .or_else(|| name.strip_prefix("python"))?;
    let minor_digits = digits.strip_prefix('3')?;
    let minor_digits = minor_digits.strip_prefix('.').unwrap_or(minor_digits);
    if minor_digits.is_empty() || !minor_digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((3, minor_digits.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_images() {
        let cases = [
            ("python:3.11", true, Some((3, 11))),
            ("python:3.9-slim", true, Some((3, 9))),
            (
                "docker.io/library/python:3.12.1-bookworm",
                true,
                Some((3, 12)),
            ),
            ("python:alpine3.9", true, None),
            ("python", true, None),
            ("python:3", true, None),
            (
                "registry.access.redhat.com/ubi9/python-311:latest",
                true,
                Some((3, 11)),
            ),
            ("python3.10", true, Some((3, 10))),
            ("alpine", false, None),
            ("jetbrainsinfra/jq", false, None),
            ("pythonista:1", false, None),
            ("python:3.11@sha256:abcd", true, Some((3, 11))),
        ];
        for (image, is_python, version) in cases {
            assert_eq!(is_python_image(image), is_python, "{image}");
            assert_eq!(python_version_of_image(image), version, "{image}");
        }
    }
}
