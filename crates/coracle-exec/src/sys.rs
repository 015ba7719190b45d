//! Process-level plumbing: spawning children that die with us, signalling process groups,
//! private mount namespaces, pipes. The only `unsafe` of the crate lives here: the code that
//! runs in a forked child between `fork` and `exec` (`Command::pre_exec`).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// How a child is prepared between fork and exec.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChildSetup {
    /// `PR_SET_PDEATHSIG(SIGKILL)`: the child dies when Coracle dies. This needs code in the
    /// child between fork and exec, which makes the spawn a full `fork` of Coracle (page
    /// tables copied, TLBs shot down) instead of `posix_spawn`; without it a spawn costs
    /// about half as much.
    pub die_with_parent: bool,
    /// Duplicate this descriptor onto fd 3 in the child (without close-on-exec).
    pub fd3: Option<RawFd>,
    /// Run the child in its own mount namespace holding these bind mounts.
    pub mounts: Option<Arc<MountPlan>>,
}

/// Applies `setup` to `command` (its own process group is set by the caller with
/// `process_group(0)`).
pub(crate) fn prepare(command: &mut std::process::Command, setup: ChildSetup) {
    use std::os::unix::process::CommandExt;
    if !setup.die_with_parent && setup.fd3.is_none() && setup.mounts.is_none() {
        // No code in the child: std uses posix_spawn.
        return;
    }
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (prctl, getppid, dup2, fcntl, _exit, and for mounts
    // unshare, open, write, close, mount, chdir); it allocates nothing and touches no lock:
    // everything the mounts need was allocated before the fork (`MountPlan::new`).
    unsafe {
        command.pre_exec(move || {
            if setup.die_with_parent {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // Coracle died between fork and prctl: the signal will never come.
                if libc::getppid() != parent {
                    libc::_exit(137);
                }
            }
            if let Some(fd) = setup.fd3 {
                if fd == 3 {
                    let flags = libc::fcntl(3, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(plan) = &setup.mounts {
                plan.enter()?;
            }
            Ok(())
        });
    }
}

/// One bind mount of a [`MountPlan`].
#[derive(Debug)]
pub(crate) struct BindSpec<'a> {
    /// The host path mounted.
    pub source: &'a Path,
    /// Where the task sees it (absolute, normalised).
    pub target: &'a Path,
    pub read_only: bool,
}

#[derive(Debug)]
struct Bind {
    source: CString,
    target: CString,
    read_only: bool,
    /// Flags of the read-only remount: the source mount's nosuid/nodev/noexec, which a user
    /// namespace may not drop (the kernel refuses a remount that clears a locked flag).
    remount_flags: libc::c_ulong,
}

/// A private mount namespace for one child, with everything the child needs allocated
/// before the fork so that it only makes system calls.
#[derive(Debug)]
pub(crate) struct MountPlan {
    /// `Some` when Coracle lacks `CAP_SYS_ADMIN`: the child first enters a new user
    /// namespace mapping only its own uid and gid, which owns the new mount namespace.
    id_maps: Option<IdMaps>,
    /// Parents before children.
    binds: Vec<Bind>,
    /// Entered again once the mounts are made (the working directory lies under a target).
    chdir: Option<CString>,
    /// The child writes here the number of the step that failed before it returns the error,
    /// so that the parent can say which mount it was (std passes back only the errno).
    failed_step_read: OwnedFd,
    failed_step_write: OwnedFd,
}

#[derive(Debug)]
struct IdMaps {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

const STEP_UNSHARE: u32 = 1;
const STEP_SETGROUPS: u32 = 2;
const STEP_UID_MAP: u32 = 3;
const STEP_GID_MAP: u32 = 4;
const STEP_PRIVATE: u32 = 5;
const STEP_CHDIR: u32 = 6;
/// Bind `i` is step `STEP_BIND + 2 i`, its read-only remount the step after.
const STEP_BIND: u32 = 16;

impl MountPlan {
    /// Prepares `binds` (in order: a target under another one must come after it); `chdir`
    /// is entered again after the mounts. Fails when a path holds a NUL byte, a source
    /// cannot be examined, or no pipe can be made.
    pub(crate) fn new(binds: &[BindSpec<'_>], chdir: Option<&Path>) -> Result<MountPlan, String> {
        let c_path = |path: &Path| {
            CString::new(path.as_os_str().as_bytes())
                .map_err(|_| format!("the path {} holds a NUL byte", path.display()))
        };
        let mut prepared = Vec::with_capacity(binds.len());
        for bind in binds {
            let source = c_path(bind.source)?;
            let target = c_path(bind.target)?;
            // MS_REC would be ignored: a remount changes one mount.
            let mut remount_flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
            if bind.read_only {
                use nix::sys::statvfs::{FsFlags, statvfs};
                let flags = statvfs(bind.source)
                    .map_err(|errno| {
                        format!(
                            "bind-mount {} at {}: cannot examine the source: {}",
                            bind.source.display(),
                            bind.target.display(),
                            errno.desc()
                        )
                    })?
                    .flags();
                for (present, flag) in [
                    (FsFlags::ST_NOSUID, libc::MS_NOSUID),
                    (FsFlags::ST_NODEV, libc::MS_NODEV),
                    (FsFlags::ST_NOEXEC, libc::MS_NOEXEC),
                ] {
                    if flags.contains(present) {
                        remount_flags |= flag;
                    }
                }
            }
            prepared.push(Bind {
                source,
                target,
                read_only: bind.read_only,
                remount_flags,
            });
        }
        let id_maps = (!has_cap_sys_admin()).then(|| {
            // SAFETY: geteuid and getegid cannot fail and touch no memory of ours.
            let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
            IdMaps {
                uid_map: format!("{uid} {uid} 1").into_bytes(),
                gid_map: format!("{gid} {gid} 1").into_bytes(),
            }
        });
        let chdir = chdir.map(c_path).transpose()?;
        use nix::fcntl::OFlag;
        let (failed_step_read, failed_step_write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
                .map_err(|errno| format!("cannot create a pipe: {}", errno.desc()))?;
        Ok(MountPlan {
            id_maps,
            binds: prepared,
            chdir,
            failed_step_read,
            failed_step_write,
        })
    }

    /// Runs in the forked child: enters the namespace(s) and makes the mounts.
    ///
    /// # Safety
    /// Only between fork and exec (it changes the calling process's namespaces).
    unsafe fn enter(&self) -> io::Result<()> {
        // SAFETY: async-signal-safe calls on memory allocated before the fork.
        unsafe {
            let flags = if self.id_maps.is_some() {
                libc::CLONE_NEWUSER | libc::CLONE_NEWNS
            } else {
                libc::CLONE_NEWNS
            };
            if libc::unshare(flags) != 0 {
                return Err(self.fail(STEP_UNSHARE));
            }
            if let Some(maps) = &self.id_maps {
                // Kernels without the file (before 3.19) need no `deny`.
                match write_file(c"/proc/self/setgroups", b"deny") {
                    Err(error) if error.raw_os_error() != Some(libc::ENOENT) => {
                        return Err(self.report(STEP_SETGROUPS, error));
                    }
                    _ => {}
                }
                write_file(c"/proc/self/uid_map", &maps.uid_map)
                    .map_err(|error| self.report(STEP_UID_MAP, error))?;
                write_file(c"/proc/self/gid_map", &maps.gid_map)
                    .map_err(|error| self.report(STEP_GID_MAP, error))?;
            }
            // Nothing mounted from now on propagates back to the host.
            if libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(self.fail(STEP_PRIVATE));
            }
            for (index, bind) in self.binds.iter().enumerate() {
                let step = STEP_BIND + 2 * index as u32;
                if libc::mount(
                    bind.source.as_ptr(),
                    bind.target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(self.fail(step));
                }
                // A bind mount takes the flags of its source; read-only needs a remount (of
                // the top mount only: mounts below the source keep their own flags).
                if bind.read_only
                    && libc::mount(
                        std::ptr::null(),
                        bind.target.as_ptr(),
                        std::ptr::null(),
                        bind.remount_flags,
                        std::ptr::null(),
                    ) != 0
                {
                    return Err(self.fail(step + 1));
                }
            }
            if let Some(dir) = &self.chdir
                && libc::chdir(dir.as_ptr()) != 0
            {
                return Err(self.fail(STEP_CHDIR));
            }
        }
        Ok(())
    }

    /// Records `step` as failed with the current errno (in the child).
    fn fail(&self, step: u32) -> io::Error {
        self.report(step, io::Error::last_os_error())
    }

    fn report(&self, step: u32, error: io::Error) -> io::Error {
        let bytes = step.to_ne_bytes();
        // SAFETY: write(2) of a local buffer; a failure only loses the step's name.
        unsafe {
            libc::write(
                self.failed_step_write.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
            );
        }
        error
    }

    /// After a failed spawn: what the child could not do, as "bind-mount /x at /data:
    /// Permission denied"; `None` when the failure was not one of the plan's steps (the
    /// program could not be executed).
    pub(crate) fn failure(&self, error: &io::Error) -> Option<String> {
        let mut bytes = [0u8; 4];
        let read = nix::unistd::read(&self.failed_step_read, &mut bytes).ok()?;
        if read != bytes.len() {
            return None;
        }
        let step = u32::from_ne_bytes(bytes);
        let reason = match error.raw_os_error() {
            Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
            None => error.to_string(),
        };
        let text = |c: &CString| c.to_string_lossy().into_owned();
        Some(match step {
            STEP_UNSHARE if self.id_maps.is_some() => {
                let hint = if error.raw_os_error() == Some(libc::ENOSPC) {
                    "; the sysctl user.max_user_namespaces allows none"
                } else {
                    ""
                };
                format!("unshare a user namespace, needed without CAP_SYS_ADMIN: {reason}{hint}")
            }
            STEP_UNSHARE => format!("unshare: {reason}"),
            STEP_SETGROUPS => format!("write /proc/self/setgroups: {reason}"),
            STEP_UID_MAP => format!("write /proc/self/uid_map: {reason}"),
            STEP_GID_MAP => format!("write /proc/self/gid_map: {reason}"),
            STEP_PRIVATE => format!("make the task's mount tree private: {reason}"),
            STEP_CHDIR => format!(
                "enter working directory {} after mounting volumes: {reason}",
                self.chdir.as_ref().map(text).unwrap_or_default()
            ),
            step if step >= STEP_BIND => {
                let index = ((step - STEP_BIND) / 2) as usize;
                let bind = self.binds.get(index)?;
                if (step - STEP_BIND).is_multiple_of(2) {
                    format!(
                        "bind-mount {} at {}: {reason}",
                        text(&bind.source),
                        text(&bind.target)
                    )
                } else {
                    format!("make {} read-only: {reason}", text(&bind.target))
                }
            }
            _ => return None,
        })
    }
}

/// Writes `data` to the file at `path` with one write(2); for the child, between fork and
/// exec.
///
/// # Safety
/// Async-signal-safe; `path` and `data` must be allocated before the fork.
unsafe fn write_file(path: &CStr, data: &[u8]) -> io::Result<()> {
    // SAFETY: open/write/close on valid pointers.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = libc::write(fd, data.as_ptr().cast(), data.len());
        let result = if written < 0 {
            Err(io::Error::last_os_error())
        } else if written as usize != data.len() {
            Err(io::Error::from_raw_os_error(libc::EIO))
        } else {
            Ok(())
        };
        libc::close(fd);
        result
    }
}

/// Whether this process holds `CAP_SYS_ADMIN` (then it may create mount namespaces without
/// a user namespace); read from `/proc/self/status`, else assumed for uid 0.
fn has_cap_sys_admin() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    let effective = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        });
    match effective {
        Some(caps) => caps & (1 << CAP_SYS_ADMIN) != 0,
        // SAFETY: geteuid cannot fail and touches no memory of ours.
        None => (unsafe { libc::geteuid() }) == 0,
    }
}

/// Forks a child that sets up `plan` and then checks, instead of running a program, that
/// `marker` (a file of the first bind's source, named through its target) is visible and
/// that the first bind, which must be read-only, refuses writes. `Err` says what failed.
pub(crate) fn probe_mounts(plan: MountPlan, marker: &Path) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    use std::os::unix::process::ExitStatusExt;
    const NOT_VISIBLE: i32 = 3;
    const WRITABLE: i32 = 4;
    let marker = CString::new(marker.as_os_str().as_bytes())
        .map_err(|_| "the probe's temporary path holds a NUL byte".to_string())?;
    let Some(first) = plan.binds.first() else {
        return Err("the probe has no mount".into());
    };
    let read_only_target = first.target.clone();
    let plan = Arc::new(plan);
    let in_child = plan.clone();
    let mut command = std::process::Command::new("true");
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure makes only async-signal-safe calls (those of `MountPlan::enter`,
    // access, _exit) on memory allocated before the fork. `_exit(0)` closes std's
    // exec-status pipe without writing to it, which the parent reads as a successful start.
    unsafe {
        command.pre_exec(move || {
            in_child.enter()?;
            if libc::access(marker.as_ptr(), libc::F_OK) != 0 {
                libc::_exit(NOT_VISIBLE);
            }
            if libc::access(read_only_target.as_ptr(), libc::W_OK) == 0 {
                libc::_exit(WRITABLE);
            }
            libc::_exit(0);
        });
    }
    let status = match command.spawn() {
        Ok(mut child) => child
            .wait()
            .map_err(|error| format!("cannot wait for the probe process: {error}"))?,
        Err(error) => {
            return Err(plan
                .failure(&error)
                .unwrap_or_else(|| format!("cannot start a probe process: {error}")));
        }
    };
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(NOT_VISIBLE), _) => Err("a bind mount did not show its source".into()),
        (Some(WRITABLE), _) => Err("a read-only bind mount stayed writable".into()),
        (code, signal) => Err(format!(
            "the probe process ended unexpectedly (exit code {code:?}, signal {signal:?})"
        )),
    }
}

type SpawnJob = Box<dyn FnOnce() + Send>;

/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process.
/// Tokio's blocking threads come and go, so every child that must die with Coracle is forked
/// from this one thread, which lives as long as the process.
fn spawner() -> &'static mpsc::Sender<SpawnJob> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnJob>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("coracle-exec-spawner".into())
            .spawn(move || {
                for job in receiver {
                    job();
                }
            })
            .expect("cannot start the coracle-exec spawner thread");
        sender
    })
}

/// Spawns `command` from the long-lived spawner thread, registered with the current Tokio
/// runtime.
/// `on_spawned` runs on the spawner thread with the child's pid right after it started,
/// before anything else can happen on that thread.
pub(crate) async fn spawn(
    mut command: tokio::process::Command,
    setup: ChildSetup,
    on_spawned: Option<Box<dyn FnOnce(u32) + Send>>,
) -> io::Result<tokio::process::Child> {
    prepare(command.as_std_mut(), setup);
    let runtime = tokio::runtime::Handle::current();
    let (reply, result) = tokio::sync::oneshot::channel();
    let job: SpawnJob = Box::new(move || {
        let spawned = {
            let _entered = runtime.enter();
            command.spawn()
        };
        if let (Ok(child), Some(on_spawned)) = (&spawned, on_spawned)
            && let Some(pid) = child.id()
        {
            on_spawned(pid);
        }
        // Drop our copies of the child's stdio descriptors before anyone waits for EOF.
        drop(command);
        let _ = reply.send(spawned);
    });
    spawner()
        .send(job)
        .map_err(|_| io::Error::other("the coracle-exec spawner thread is gone"))?;
    result
        .await
        .map_err(|_| io::Error::other("the coracle-exec spawner thread dropped a spawn"))?
}

/// Sends `signal` to process group `pgid`; a group that no longer exists is not an error.
pub(crate) fn signal_group(pgid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pgid) else {
        return;
    };
    if raw <= 1 {
        return;
    }
    let _ = nix::sys::signal::killpg(Pid::from_raw(raw), signal);
}

/// A pipe whose read end is non-blocking and registered with Tokio, and whose write end is a
/// plain blocking descriptor to hand to a child. Both are close-on-exec.
pub(crate) fn log_pipe() -> io::Result<(tokio::net::unix::pipe::Receiver, OwnedFd)> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(io::Error::from)?;
    let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(read)?;
    Ok((receiver, write))
}

/// Sends `header` on a Unix stream socket with `fds` attached (SCM_RIGHTS). Returns how many
/// bytes of `header` were sent; the caller sends the rest without descriptors.
pub(crate) fn send_with_fds(
    socket: &impl AsRawFd,
    header: &[u8],
    fds: &[RawFd],
) -> io::Result<usize> {
    use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
    let iov = [io::IoSlice::new(header)];
    let cmsgs = [ControlMessage::ScmRights(fds)];
    sendmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &iov,
        &cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(io::Error::from)
}
