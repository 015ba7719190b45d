//! Process-level plumbing: spawning children that die with us, signalling process groups,
//! pipes. The only `unsafe` of the crate lives here: the code that runs in a forked child
//! between `fork` and `exec` (`Command::pre_exec`).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::mpsc;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// How a child is prepared between fork and exec.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChildSetup {
    /// `PR_SET_PDEATHSIG(SIGKILL)`: the child dies when Coracle dies. This needs code in the
    /// child between fork and exec, which makes the spawn a full `fork` of Coracle (page
    /// tables copied, TLBs shot down) instead of `posix_spawn`; without it a spawn costs
    /// about half as much.
    pub die_with_parent: bool,
    /// Duplicate this descriptor onto fd 3 in the child (without close-on-exec).
    pub fd3: Option<RawFd>,
}

/// Applies `setup` to `command` (its own process group is set by the caller with
/// `process_group(0)`).
pub(crate) fn prepare(command: &mut std::process::Command, setup: ChildSetup) {
    use std::os::unix::process::CommandExt;
    if !setup.die_with_parent && setup.fd3.is_none() {
        return;
    }
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (prctl, getppid, dup2, fcntl, _exit); it allocates
    // nothing and touches no lock.
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
            Ok(())
        });
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
        if let (Ok(child), Some(on_spawned)) = (&spawned, on_spawned) {
            if let Some(pid) = child.id() {
                on_spawned(pid);
            }
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
