//! Volumes of the process backend. A task with mounts runs in a private mount namespace of
//! its own, where each volume's source is bind-mounted at its mount path (read-only ones
//! remounted read-only); the host and other tasks never see those mounts. The namespace is
//! made by the child between fork and exec (`sys::MountPlan`); this module checks what it
//! can before the fork and creates the mount points that do not exist yet.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Mount;
use crate::sys::{self, BindSpec, MountPlan};

static PRIVATE_MOUNTS: OnceLock<Result<(), String>> = OnceLock::new();

/// Whether this machine lets the process backend give a task a private mount namespace with
/// bind mounts, which tasks with volumes need. The first call forks a probe child that does
/// what a task's child does (unshare, and a read-only bind of one temporary directory onto
/// another); the answer is kept for the life of the process.
///
/// `Err` is a sentence saying why not, e.g. "this machine does not allow private mount
/// namespaces (unshare: Operation not permitted)". As root (more exactly, with
/// `CAP_SYS_ADMIN`) this works wherever `unshare(CLONE_NEWNS)` is allowed; otherwise it needs
/// unprivileged user namespaces.
pub fn check_private_mounts() -> Result<(), String> {
    PRIVATE_MOUNTS.get_or_init(probe).clone()
}

/// The answer of [`check_private_mounts`] when it is already known.
pub(crate) fn known_private_mounts() -> Option<Result<(), String>> {
    PRIVATE_MOUNTS.get().cloned()
}

fn probe() -> Result<(), String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir().join(format!(
        "coracle-mount-probe-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = probe_in(&base);
    let _ = std::fs::remove_dir_all(&base);
    let answer = result.map_err(|reason| match reason {
        ProbeFailure::Setup(reason) => {
            format!("cannot check whether this machine allows private mount namespaces: {reason}")
        }
        ProbeFailure::Refused(reason) => {
            format!("this machine does not allow private mount namespaces ({reason})")
        }
    });
    match &answer {
        Ok(()) => tracing::debug!("private mount namespaces are available for task volumes"),
        Err(reason) => tracing::debug!(%reason, "task volumes are not available"),
    }
    answer
}

enum ProbeFailure {
    /// The probe could not be prepared (temporary directory).
    Setup(String),
    /// The child could not make its mounts.
    Refused(String),
}

fn probe_in(base: &Path) -> Result<(), ProbeFailure> {
    let source = base.join("source");
    let target = base.join("target");
    for dir in [&source, &target] {
        std::fs::create_dir_all(dir).map_err(|error| {
            ProbeFailure::Setup(format!(
                "cannot create {}: {}",
                dir.display(),
                describe(&error)
            ))
        })?;
    }
    let marker = source.join("marker");
    std::fs::write(&marker, b"").map_err(|error| {
        ProbeFailure::Setup(format!(
            "cannot create {}: {}",
            marker.display(),
            describe(&error)
        ))
    })?;
    let plan = MountPlan::new(
        &[BindSpec {
            source: &source,
            target: &target,
            read_only: true,
        }],
        None,
    )
    .map_err(ProbeFailure::Setup)?;
    sys::probe_mounts(plan, &target.join("marker")).map_err(ProbeFailure::Refused)
}

/// Prepares a task's volumes for its child: checks the mount paths and sources, creates the
/// mount points that do not exist yet, and orders the mounts so that a mount path inside
/// another one is mounted after it (its mount point is then made inside that volume's
/// source, as a container engine does).
///
/// Mount points are created on the host (directories, or an empty file for a file source)
/// and left there when the task ends: removing them is not safe. A directory that is a mount
/// point in another mount namespace (another task of this Coracle, or of another one using
/// the same mount path) can still be removed from the host, and the kernel then silently
/// detaches the mount inside that namespace, under the running task. What is left is empty
/// and reused by later tasks.
///
/// `Err` is a message naming the mount, e.g. "bind-mount /x at /data: the source does not
/// exist".
pub(crate) fn prepare(mounts: &[Mount], work_dir: &Path) -> Result<MountPlan, String> {
    let mut ordered: Vec<(PathBuf, &Mount)> = Vec::with_capacity(mounts.len());
    for mount in mounts {
        let target = normalise_target(&mount.target).ok_or_else(|| {
            format!(
                "bind-mount {} at {}: the mount path must be an absolute path other than / and without ..",
                mount.source.display(),
                mount.target.display()
            )
        })?;
        if let Some((_, other)) = ordered.iter().find(|(seen, _)| *seen == target) {
            return Err(format!(
                "bind-mount {} at {}: {} is already mounted there",
                mount.source.display(),
                target.display(),
                other.source.display()
            ));
        }
        ordered.push((target, mount));
    }
    // Parents first; the sort is stable, so siblings keep the order they were given in.
    ordered.sort_by_key(|(target, _)| target.components().count());

    for (index, (target, mount)) in ordered.iter().enumerate() {
        let fail = |reason: String| {
            format!(
                "bind-mount {} at {}: {reason}",
                mount.source.display(),
                target.display()
            )
        };
        let source_is_dir = match std::fs::metadata(&mount.source) {
            Ok(metadata) => metadata.is_dir(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(fail("the source does not exist".into()));
            }
            Err(error) => {
                return Err(fail(format!(
                    "cannot examine the source: {}",
                    describe(&error)
                )));
            }
        };
        // Where the mount point is as the host sees it: inside the source of the deepest
        // earlier mount that contains it, else at the mount path itself.
        let mount_point = ordered[..index]
            .iter()
            .rev()
            .find_map(|(outer, outer_mount)| {
                let rest = target.strip_prefix(outer).ok()?;
                Some(outer_mount.source.join(rest))
            })
            .unwrap_or_else(|| target.clone());
        create_mount_point(&mount_point, source_is_dir).map_err(|error| {
            fail(format!(
                "cannot create the mount point {}: {}",
                mount_point.display(),
                describe(&error)
            ))
        })?;
    }

    let binds: Vec<BindSpec<'_>> = ordered
        .iter()
        .map(|(target, mount)| BindSpec {
            source: &mount.source,
            target,
            read_only: mount.read_only,
        })
        .collect();
    // std enters the working directory before the mounts are made; one inside a mount path
    // is entered again afterwards, so that the task is in the volume, not under it.
    let chdir = (work_dir.is_absolute()
        && ordered
            .iter()
            .any(|(target, _)| work_dir.starts_with(target)))
    .then_some(work_dir);
    MountPlan::new(&binds, chdir)
}

/// `target` without `.` components and repeated slashes; `None` when it is relative, `/`,
/// or has a `..` component.
fn normalise_target(target: &Path) -> Option<PathBuf> {
    if !target.is_absolute() {
        return None;
    }
    let mut normal = PathBuf::from("/");
    for component in target.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => normal.push(name),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (normal != Path::new("/")).then_some(normal)
}

/// Makes `path` exist: a directory when the source is one, else an empty file. An existing
/// path is left as it is (a kind that does not match makes the mount fail, with the kernel's
/// reason).
fn create_mount_point(path: &Path, directory: bool) -> io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if directory {
        std::fs::create_dir_all(path)?;
    } else {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
    }
    tracing::debug!(mount_point = %path.display(), "created a mount point for a task volume; it stays after the task");
    Ok(())
}

/// An I/O error as the C library words it, without "(os error N)".
fn describe(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_normalised_or_refused() {
        let normal = |t: &str| normalise_target(Path::new(t));
        assert_eq!(normal("/data"), Some(PathBuf::from("/data")));
        assert_eq!(
            normal("//mnt/./secret/"),
            Some(PathBuf::from("/mnt/secret"))
        );
        assert_eq!(normal("/"), None);
        assert_eq!(normal("/./"), None);
        assert_eq!(normal("data"), None);
        assert_eq!(normal("/data/../etc"), None);
    }
}
