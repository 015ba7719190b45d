//! The Rust side of the Python worker ("zygote", `zygote.py`): one per environment per
//! executor, forking a child per lightweight component instead of starting an interpreter.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncBufReadExt;
use tokio::net::UnixStream;
use tokio::sync::oneshot;

use crate::sys::{self, ChildSetup};

pub(crate) const SCRIPT: &str = include_str!("zygote.py");
const MAGIC: &[u8; 4] = b"CZQ1";
/// How long a worker may take to import kfp before we give up on it.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How a worker's child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildExit {
    Code(i32),
    Signal(i32),
    /// The worker died before reporting (its children die with it).
    Lost,
}

#[derive(Default)]
struct Pending {
    started: Option<oneshot::Sender<Result<u32, String>>>,
    exited: Option<oneshot::Sender<ChildExit>>,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<HashMap<u64, Pending>>,
    alive: AtomicBool,
}

pub(crate) struct Zygote {
    pub env_name: String,
    socket: Arc<UnixStream>,
    write_lock: tokio::sync::Mutex<()>,
    shared: Arc<Shared>,
    process: Mutex<Option<tokio::process::Child>>,
    pid: Option<u32>,
    next_id: AtomicU64,
}

/// One task for the worker.
pub(crate) struct ZygoteTask<'a> {
    pub cwd: &'a Path,
    pub env: &'a [(String, String)],
    /// Arguments after `--component_module_path <file>`.
    pub args: &'a [String],
    pub source: &'a str,
    pub unbuffered: bool,
}

/// Writes the worker script into `dir` (named by its hash, so an upgraded Coracle never runs a
/// stale copy) and returns its path.
pub(crate) fn install_script(dir: &Path) -> std::io::Result<PathBuf> {
    let digest = Sha256::digest(SCRIPT.as_bytes());
    let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("coracle-zygote-{hash}.py"));
    if std::fs::read(&path).is_ok_and(|existing| existing == SCRIPT.as_bytes()) {
        return Ok(path);
    }
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".coracle-zygote-{hash}.{}.tmp", std::process::id()));
    std::fs::write(&temporary, SCRIPT)?;
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}

impl Zygote {
    /// Starts a worker with `python` running `script`, and waits until it has imported kfp.
    pub(crate) async fn start(
        env_name: &str,
        python: &Path,
        script: &Path,
        env: Vec<(OsString, OsString)>,
    ) -> Result<Arc<Zygote>, String> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| format!("cannot create a socket pair: {e}"))?;
        let mut command = tokio::process::Command::new(python);
        command
            .arg(script)
            .envs(env)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let theirs_fd = theirs.as_raw_fd();
        let mut child = sys::spawn(
            command,
            ChildSetup {
                die_with_parent: true,
                fd3: Some(theirs_fd),
                mounts: None,
            },
            None,
        )
        .await
        .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
        drop(theirs);
        let pid = child.id();
        if let Some(stderr) = child.stderr.take() {
            let env_name = env_name.to_string();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::warn!(env = %env_name, "python worker: {line}");
                }
            });
        }
        ours.set_nonblocking(true)
            .map_err(|e| format!("cannot configure the worker socket: {e}"))?;
        let socket = Arc::new(
            UnixStream::from_std(ours)
                .map_err(|e| format!("cannot register the worker socket: {e}"))?,
        );
        let shared = Arc::new(Shared::default());
        shared.alive.store(true, Ordering::SeqCst);
        let (ready_sender, ready) = oneshot::channel();
        tokio::spawn(read_replies(socket.clone(), shared.clone(), ready_sender));
        let answer = match tokio::time::timeout(READY_TIMEOUT, ready).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("the worker exited before it was ready".to_string()),
            Err(_) => Err(format!(
                "the worker was not ready after {} s",
                READY_TIMEOUT.as_secs()
            )),
        };
        if let Err(reason) = answer {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(reason);
        }
        Ok(Arc::new(Zygote {
            env_name: env_name.to_string(),
            socket,
            write_lock: tokio::sync::Mutex::new(()),
            shared,
            process: Mutex::new(Some(child)),
            pid,
            next_id: AtomicU64::new(1),
        }))
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::SeqCst)
    }

    /// Asks the worker to fork a child for `task` with the given stdout/stderr; returns the
    /// child's pid (a process group leader) and a receiver for its exit.
    pub(crate) async fn run(
        &self,
        task: ZygoteTask<'_>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> Result<(u32, oneshot::Receiver<ChildExit>), String> {
        if !self.is_alive() {
            return Err("the python worker is not running".to_string());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let payload = serde_json::json!({
            "id": id,
            "cwd": task.cwd.to_string_lossy(),
            "env": task.env,
            "argv": task.args,
            "source": task.source,
            "unbuffered": task.unbuffered,
        })
        .to_string();
        let length = u32::try_from(payload.len())
            .map_err(|_| "the task's request is larger than 4 GiB".to_string())?;
        let mut header = Vec::with_capacity(8);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&length.to_be_bytes());

        let (started_sender, started) = oneshot::channel();
        let (exited_sender, exited) = oneshot::channel();
        lock(&self.shared.pending).insert(
            id,
            Pending {
                started: Some(started_sender),
                exited: Some(exited_sender),
            },
        );
        let sent = self
            .send(&header, payload.as_bytes(), &stdout, &stderr)
            .await;
        // The worker has its own copies now (or never will); ours must close so EOF can come.
        drop(stdout);
        drop(stderr);
        if let Err(error) = sent {
            lock(&self.shared.pending).remove(&id);
            return Err(format!(
                "cannot send the task to the python worker: {error}"
            ));
        }
        match started.await {
            Ok(Ok(pid)) => Ok((pid, exited)),
            Ok(Err(reason)) => {
                lock(&self.shared.pending).remove(&id);
                Err(reason)
            }
            Err(_) => Err("the python worker exited before starting the task".to_string()),
        }
    }

    async fn send(
        &self,
        header: &[u8],
        payload: &[u8],
        stdout: &OwnedFd,
        stderr: &OwnedFd,
    ) -> std::io::Result<()> {
        let _serialized = self.write_lock.lock().await;
        let fds = [stdout.as_raw_fd(), stderr.as_raw_fd()];
        let sent = self
            .socket
            .async_io(tokio::io::Interest::WRITABLE, || {
                sys::send_with_fds(&*self.socket, header, &fds)
            })
            .await?;
        write_all(&self.socket, &header[sent..]).await?;
        write_all(&self.socket, payload).await
    }

    /// Closes the socket (the worker kills its children and exits) and reaps the worker.
    pub(crate) async fn shutdown(&self) {
        let _ =
            nix::sys::socket::shutdown(self.socket.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        let child = lock(&self.process).take();
        if let Some(mut child) = child
            && tokio::time::timeout(Duration::from_secs(2), child.wait())
                .await
                .is_err()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.pid
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        let _ =
            nix::sys::socket::shutdown(self.socket.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        // `kill_on_drop` finishes the job for a worker that was not shut down.
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn write_all(socket: &UnixStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        socket.writable().await?;
        match socket.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Reads the worker's replies until it closes the socket, then fails whatever is pending.
async fn read_replies(
    socket: Arc<UnixStream>,
    shared: Arc<Shared>,
    ready: oneshot::Sender<Result<u32, String>>,
) {
    let mut ready = Some(ready);
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    'reading: loop {
        if socket.readable().await.is_err() {
            break;
        }
        let n = match socket.try_read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        };
        buffer.extend_from_slice(&chunk[..n]);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let Ok(message) = serde_json::from_slice::<Value>(&line) else {
                tracing::warn!(line = %String::from_utf8_lossy(&line), "python worker sent an unreadable reply");
                continue;
            };
            if !dispatch(&message, &shared, &mut ready) {
                break 'reading;
            }
        }
    }
    shared.alive.store(false, Ordering::SeqCst);
    if let Some(ready) = ready.take() {
        let _ = ready.send(Err("the worker exited before it was ready".to_string()));
    }
    let pending: Vec<Pending> = lock(&shared.pending).drain().map(|(_, p)| p).collect();
    for entry in pending {
        if let Some(started) = entry.started {
            let _ = started.send(Err("the python worker exited".to_string()));
        }
        if let Some(exited) = entry.exited {
            let _ = exited.send(ChildExit::Lost);
        }
    }
}

/// Handles one reply; `false` means the worker is unusable.
fn dispatch(
    message: &Value,
    shared: &Shared,
    ready: &mut Option<oneshot::Sender<Result<u32, String>>>,
) -> bool {
    let id = |key: &str| message.get(key).and_then(Value::as_u64);
    if let Some(pid) = id("ready") {
        if let Some(ready) = ready.take() {
            let _ = ready.send(Ok(pid as u32));
        }
        return true;
    }
    if let Some(fatal) = message.get("fatal") {
        if let Some(ready) = ready.take() {
            let reason = fatal
                .as_str()
                .unwrap_or("unknown error")
                .trim_end()
                .to_string();
            let _ = ready.send(Err(reason));
        }
        return false;
    }
    let mut pending = lock(&shared.pending);
    if let Some(task) = id("started") {
        let pid = message.get("pid").and_then(Value::as_u64).unwrap_or(0) as u32;
        if let Some(sender) = pending.get_mut(&task).and_then(|p| p.started.take()) {
            let _ = sender.send(Ok(pid));
        }
    } else if let Some(task) = id("failed") {
        let error = message
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        if let Some(entry) = pending.remove(&task)
            && let Some(sender) = entry.started
        {
            let _ = sender.send(Err(format!(
                "the python worker could not start it: {error}"
            )));
        }
    } else if let Some(task) = id("exited") {
        let exit = if let Some(signal) = message.get("signal").and_then(Value::as_i64) {
            ChildExit::Signal(signal as i32)
        } else {
            ChildExit::Code(message.get("code").and_then(Value::as_i64).unwrap_or(1) as i32)
        };
        if let Some(entry) = pending.remove(&task)
            && let Some(sender) = entry.exited
        {
            let _ = sender.send(exit);
        }
    }
    true
}
