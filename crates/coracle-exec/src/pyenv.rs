//! Managed Python environments: one virtual environment per (interpreter, requirement set, pip
//! options), created once, reused by every later task and run, offline once it exists.
//!
//! Layout under `envs_dir`:
//! - `<name>` — a symlink to the finished environment; its existence means "ready";
//! - `<name>.build-<pid>-<nanos>/` — the environment itself, built in place (a venv cannot move)
//!   and published by atomically renaming the symlink into place;
//! - `<name>.lock` — `flock`ed while building, so two Coracle processes never build the same env;
//! - `<name>.log` — the output of `python -m venv` and `pip install`.
//!
//! `<name>` reads like `py3.11-kfp2.14.6-<hash>`, the hash covering the interpreter's version
//! and executable, the sorted requirements and the pip options.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::Error;
use crate::sys::{ChildSetup, prepare};

/// The kfp version a managed environment gets when the command does not pin one.
pub const DEFAULT_KFP_VERSION: &str = "2.14.6";

/// A base interpreter, as probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interpreter {
    /// What was asked for (`python3.11`, `/opt/py/bin/python3`).
    pub requested: String,
    /// `sys.executable` of that interpreter: the real binary, past shims.
    pub executable: PathBuf,
    /// `3.11.7`.
    pub version: String,
}

/// A ready environment to run components in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PythonEnv {
    /// Human-readable name for messages (the managed env's name, or the `use_env` path).
    pub name: String,
    /// The prefix (`VIRTUAL_ENV`).
    pub root: PathBuf,
    pub bin: PathBuf,
    pub python: PathBuf,
    /// Whether kfp is expected to be importable (false for bare environments).
    pub has_kfp: bool,
}

/// What a managed environment must contain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct EnvRequest {
    /// Sorted, without duplicates; includes the `kfp==X` pin when there is one.
    pub requirements: Vec<String>,
    pub pip_options: Vec<String>,
}

impl EnvRequest {
    /// The environment for a kfp component: `kfp==version` (or [`DEFAULT_KFP_VERSION`] when
    /// nothing in `packages` provides kfp) plus `packages`.
    pub(crate) fn for_kfp(
        kfp_version: Option<&str>,
        packages: &[String],
        pip_options: &[String],
    ) -> Self {
        let mut requirements: Vec<String> = packages.to_vec();
        match kfp_version {
            Some(version) => requirements.push(format!("kfp=={version}")),
            None if !packages
                .iter()
                .any(|p| p.to_ascii_lowercase().contains("kfp")) =>
            {
                requirements.push(format!("kfp=={DEFAULT_KFP_VERSION}"));
            }
            None => {}
        }
        requirements.sort();
        requirements.dedup();
        EnvRequest {
            requirements,
            pip_options: pip_options.to_vec(),
        }
    }

    /// A plain venv with nothing installed, for `python:*` images running their own commands.
    pub(crate) fn bare() -> Self {
        EnvRequest {
            requirements: Vec::new(),
            pip_options: Vec::new(),
        }
    }

    pub(crate) fn has_kfp(&self) -> bool {
        self.requirements
            .iter()
            .any(|r| r.to_ascii_lowercase().contains("kfp"))
    }

    pub(crate) fn describe(&self) -> String {
        if self.requirements.is_empty() {
            "no packages".to_string()
        } else {
            self.requirements.join(", ")
        }
    }

    /// `py3.11-kfp2.14.6-0123456789abcdef`.
    pub(crate) fn env_name(&self, interpreter: &Interpreter) -> String {
        let mut material = String::from("coracle python env v1\n");
        let _ = writeln!(material, "python {}", interpreter.version);
        let _ = writeln!(material, "executable {}", interpreter.executable.display());
        for requirement in &self.requirements {
            let _ = writeln!(material, "requirement {requirement}");
        }
        for option in &self.pip_options {
            let _ = writeln!(material, "pip-option {option}");
        }
        let digest = Sha256::digest(material.as_bytes());
        let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let minor: String = interpreter
            .version
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".");
        let kfp = self
            .requirements
            .iter()
            .find_map(|r| r.strip_prefix("kfp=="))
            .map(|v| format!("-kfp{v}"))
            .unwrap_or_default();
        let kfp: String = kfp
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("py{minor}{kfp}-{hash}")
    }
}

/// Finds `name` in `PATH` (or returns it when it contains a slash).
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Runs the interpreter once to learn its version and real executable.
pub(crate) async fn probe_interpreter(requested: &str) -> Result<Interpreter, Error> {
    let fail = |reason: String| Error::Interpreter {
        interpreter: requested.to_string(),
        reason,
    };
    let output = tokio::process::Command::new(requested)
        .args([
            "-I",
            "-S",
            "-c",
            "import sys; print('%d.%d.%d' % sys.version_info[:3]); print(sys.executable)",
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|error| fail(error.to_string()))?;
    if !output.status.success() {
        return Err(fail(format!(
            "exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    let version = lines.next().unwrap_or_default().trim().to_string();
    let executable = lines.next().unwrap_or_default().trim().to_string();
    if version.is_empty() || executable.is_empty() {
        return Err(fail(format!(
            "unexpected answer to a version probe: {stdout:?}"
        )));
    }
    Ok(Interpreter {
        requested: requested.to_string(),
        executable: PathBuf::from(executable),
        version,
    })
}

/// A user-named environment (`use_env`), used as is.
pub(crate) fn existing_env(path: &Path) -> Result<PythonEnv, Error> {
    let bin = path.join("bin");
    let python = ["python3", "python"]
        .iter()
        .map(|name| bin.join(name))
        .find(|candidate| candidate.exists())
        .ok_or_else(|| Error::UseEnv {
            path: path.to_path_buf(),
            reason: format!("no python3 or python in {}", bin.display()),
        })?;
    Ok(PythonEnv {
        name: path.display().to_string(),
        root: path.to_path_buf(),
        bin,
        python,
        has_kfp: true,
    })
}

fn env_at(name: &str, root: PathBuf, has_kfp: bool) -> PythonEnv {
    let bin = root.join("bin");
    PythonEnv {
        name: name.to_string(),
        python: bin.join("python"),
        bin,
        root,
        has_kfp,
    }
}

/// The environment if it is ready, without running anything.
pub(crate) fn ready_env(envs_dir: &Path, name: &str, has_kfp: bool) -> Option<PythonEnv> {
    let link = envs_dir.join(name);
    // The symlink only exists once the build finished; a dangling one is not ready.
    if link.join("bin").join("python").exists() {
        Some(env_at(name, link, has_kfp))
    } else {
        None
    }
}

/// Creates the environment (blocking: runs `venv` and `pip`). Holds `<name>.lock` while it works,
/// so a concurrent creator in another process waits and then finds it ready.
pub(crate) fn create_env(
    envs_dir: &Path,
    name: &str,
    interpreter: &Interpreter,
    request: &EnvRequest,
) -> Result<PythonEnv, Error> {
    let log_path = envs_dir.join(format!("{name}.log"));
    let fail = |reason: String| Error::PythonEnv {
        env: name.to_string(),
        log: log_path.clone(),
        reason,
    };
    fs::create_dir_all(envs_dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", envs_dir.display())))?;
    let lock_path = envs_dir.join(format!("{name}.lock"));
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            fail(format!(
                "cannot open lock file {}: {e}",
                lock_path.display()
            ))
        })?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| fail(format!("cannot lock {}: {e}", lock_path.display())))?;
    let has_kfp = request.has_kfp();
    if let Some(env) = ready_env(envs_dir, name, has_kfp) {
        return Ok(env);
    }
    remove_leftovers(envs_dir, name);

    tracing::info!(
        env = %name,
        python = %interpreter.version,
        executable = %interpreter.executable.display(),
        requirements = %request.describe(),
        log = %log_path.display(),
        "creating python environment (once; later tasks and runs reuse it)"
    );
    let mut log =
        File::create(&log_path).map_err(|e| fail(format!("cannot create log file: {e}")))?;
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let build_name = format!("{name}.build-{}-{nanos}", std::process::id());
    let build = envs_dir.join(&build_name);
    let result = build_env(&build, interpreter, request, &mut log);
    if let Err(reason) = result {
        let _ = writeln!(log, "coracle: {reason}");
        let _ = fs::remove_dir_all(&build);
        return Err(fail(reason));
    }
    let record = serde_json::json!({
        "name": name,
        "python": interpreter.version,
        "executable": interpreter.executable,
        "requested_interpreter": interpreter.requested,
        "requirements": request.requirements,
        "pip_options": request.pip_options,
    });
    let _ = fs::write(build.join("coracle-env.json"), format!("{record:#}\n"));
    let temporary_link = envs_dir.join(format!("{build_name}.link"));
    std::os::unix::fs::symlink(&build_name, &temporary_link)
        .and_then(|()| fs::rename(&temporary_link, envs_dir.join(name)))
        .map_err(|e| fail(format!("cannot publish {}: {e}", build.display())))?;
    let _ = writeln!(log, "coracle: environment {name} is ready");
    ready_env(envs_dir, name, has_kfp)
        .ok_or_else(|| fail("environment vanished right after it was created".to_string()))
}

/// Removes unfinished builds of `name` (their builder died; we hold the lock) and a dangling
/// symlink.
fn remove_leftovers(envs_dir: &Path, name: &str) {
    let prefix = format!("{name}.build-");
    if let Ok(entries) = fs::read_dir(envs_dir) {
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            if file_name.starts_with(&prefix) {
                let path = entry.path();
                let _ = if file_name.ends_with(".link") {
                    fs::remove_file(&path)
                } else {
                    fs::remove_dir_all(&path)
                };
            }
        }
    }
    let link = envs_dir.join(name);
    if link.symlink_metadata().is_ok() {
        let _ = fs::remove_file(&link);
    }
}

fn build_env(
    build: &Path,
    interpreter: &Interpreter,
    request: &EnvRequest,
    log: &mut File,
) -> Result<(), String> {
    let mut venv = Command::new(&interpreter.executable);
    venv.args(["-m", "venv"]).arg(build);
    if let Err(reason) = run_logged(venv, log, "python -m venv") {
        // Interpreters without ensurepip (Debian's without python3-venv) can still make a
        // pip-less venv, which is all a bare environment needs.
        if !request.requirements.is_empty() {
            return Err(reason);
        }
        let _ = fs::remove_dir_all(build);
        let mut venv = Command::new(&interpreter.executable);
        venv.args(["-m", "venv", "--without-pip"]).arg(build);
        run_logged(venv, log, "python -m venv --without-pip")?;
    }
    let python = build.join("bin").join("python");
    if !request.requirements.is_empty() {
        let mut pip = Command::new(&python);
        pip.args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "--no-input",
        ])
        .args(&request.pip_options)
        .args(&request.requirements);
        run_logged(pip, log, "pip install")?;
    }
    if request.has_kfp() {
        let mut check = Command::new(&python);
        check
            .args(["-c", "import kfp.dsl.executor_main"])
            .env("_KFP_RUNTIME", "true");
        run_logged(check, log, "import kfp.dsl.executor_main")?;
    }
    Ok(())
}

fn run_logged(mut command: Command, log: &mut File, what: &str) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let _ = writeln!(log, "coracle: running {command:?}");
    let _ = log.flush();
    let stdout = log.try_clone().map_err(|e| format!("{what}: {e}"))?;
    let stderr = log.try_clone().map_err(|e| format!("{what}: {e}"))?;
    command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .process_group(0);
    // This thread waits for the child, so the thread-bound PDEATHSIG cannot fire early.
    prepare(
        &mut command,
        ChildSetup {
            die_with_parent: true,
            fd3: None,
            mounts: None,
        },
    );
    let status = command
        .status()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", command.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interpreter() -> Interpreter {
        Interpreter {
            requested: "python3.11".into(),
            executable: "/usr/bin/python3.11".into(),
            version: "3.11.2".into(),
        }
    }

    #[test]
    fn env_names_depend_on_what_matters_only() {
        let a = EnvRequest::for_kfp(Some("2.14.6"), &["numpy".into(), "pandas".into()], &[]);
        let b = EnvRequest::for_kfp(Some("2.14.6"), &["pandas".into(), "numpy".into()], &[]);
        assert_eq!(a.env_name(&interpreter()), b.env_name(&interpreter()));
        assert!(a.env_name(&interpreter()).starts_with("py3.11-kfp2.14.6-"));
        let c = EnvRequest::for_kfp(Some("2.14.5"), &["numpy".into(), "pandas".into()], &[]);
        assert_ne!(a.env_name(&interpreter()), c.env_name(&interpreter()));
        let d = EnvRequest::for_kfp(
            Some("2.14.6"),
            &["numpy".into(), "pandas".into()],
            &["--index-url".into(), "https://example.com/simple".into()],
        );
        assert_ne!(a.env_name(&interpreter()), d.env_name(&interpreter()));
        let mut other_python = interpreter();
        other_python.version = "3.12.1".into();
        assert_ne!(a.env_name(&interpreter()), a.env_name(&other_python));
    }

    #[test]
    fn kfp_defaults_only_when_nothing_provides_it() {
        assert_eq!(
            EnvRequest::for_kfp(None, &[], &[]).requirements,
            [format!("kfp=={DEFAULT_KFP_VERSION}")]
        );
        assert_eq!(
            EnvRequest::for_kfp(None, &["kfp[kubernetes]>=2".into()], &[]).requirements,
            ["kfp[kubernetes]>=2"]
        );
        assert!(!EnvRequest::bare().has_kfp());
    }
}
