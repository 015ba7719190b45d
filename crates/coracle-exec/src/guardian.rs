//! The orphan guardian: a tiny `sh` process that outlives Coracle just long enough to kill the
//! process groups of tasks still running when Coracle dies without cleaning up (SIGKILL, OOM).
//!
//! `PR_SET_PDEATHSIG` only reaches a task's direct child; its own children (a shell's
//! background jobs, a Python component's subprocesses) would survive. The guardian is told
//! `+ PGID` when a task starts and `- PGID` once its group is gone; when its stdin reaches EOF
//! (Coracle exited, however it exited) it sends SIGKILL to every group still listed.

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

const SCRIPT: &str = r#"trap '' INT HUP PIPE
g=' '
while IFS=' ' read -r op n; do
  case $op in
    +) g="$g$n " ;;
    -) case $g in *" $n "*) g="${g%%" $n "*} ${g#*" $n "}" ;; esac ;;
  esac
done
for n in $g; do kill -KILL -"$n" 2>/dev/null; done
"#;

#[derive(Default)]
pub(crate) struct Guardian {
    state: Mutex<GuardianState>,
}

#[derive(Default)]
struct GuardianState {
    started: bool,
    stdin: Option<ChildStdin>,
    child: Option<Child>,
}

impl Guardian {
    pub(crate) fn register(&self, pgid: u32) {
        self.send(&format!("+ {pgid}\n"));
    }

    pub(crate) fn unregister(&self, pgid: u32) {
        self.send(&format!("- {pgid}\n"));
    }

    fn send(&self, line: &str) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !state.started {
            state.started = true;
            match start() {
                Ok(mut child) => {
                    // Never let a stuck guardian block a launch: a full pipe drops the line.
                    state.stdin = child.stdin.take().filter(|stdin| {
                        use nix::fcntl::{FcntlArg, OFlag, fcntl};
                        fcntl(stdin, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).is_ok()
                    });
                    state.child = Some(child);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot start the orphan guardian (sh); tasks' background processes may outlive coracle if it is killed");
                }
            }
        }
        if let Some(stdin) = state.stdin.as_mut() {
            // Lines are far shorter than PIPE_BUF, so a write is all or nothing.
            match stdin.write(line.as_bytes()) {
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    tracing::warn!(
                        line = line.trim_end(),
                        "the orphan guardian is not reading; line dropped"
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, "the orphan guardian is gone");
                    state.stdin = None;
                }
            }
        }
    }

    /// Closes the guardian's stdin (it kills what is still listed, then exits) and reaps it.
    pub(crate) fn stop(&self) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.stdin = None;
        if let Some(mut child) = state.child.take() {
            // It exits as soon as it has read EOF; reap it without blocking the caller.
            if !matches!(child.try_wait(), Ok(Some(_))) {
                let _ = std::thread::Builder::new()
                    .name("coracle-exec-guardian-reaper".into())
                    .spawn(move || child.wait());
            }
        }
    }
}

impl Drop for Guardian {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start() -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // Its own process group: a Ctrl-C aimed at Coracle's group must not take it down first.
    // No PDEATHSIG, on purpose: it must outlive Coracle to do its job.
    Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
}
