//! One face for every backend: the orchestrator launches, waits for and cancels tasks without
//! knowing whether they are local processes or containers.

use std::time::Duration;

use crate::docker::{DockerCanceler, DockerExecutor, DockerTask};
use crate::executor::{Canceler, ProcessExecutor, RunningTask};
use crate::{Error, ExitOutcome, TaskLaunch};

/// Where tasks run. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Executor {
    /// Local processes (the default).
    Process(ProcessExecutor),
    /// Containers of a Docker engine.
    Docker(DockerExecutor),
}

/// A started task of either backend. Dropping it before [`LaunchedTask::wait`] returned
/// stops the task.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per running task; boxing buys nothing
pub enum LaunchedTask {
    Process(RunningTask),
    Docker(DockerTask),
}

/// Cancels one task; cheap to clone.
#[derive(Clone, Debug)]
pub enum TaskCanceler {
    Process(Canceler),
    Docker(DockerCanceler),
}

impl Executor {
    /// `process` or `docker`, as `--executor` names it.
    pub fn name(&self) -> &'static str {
        match self {
            Executor::Process(_) => "process",
            Executor::Docker(_) => "docker",
        }
    }

    /// Starts a task. `Err` means it could not be started; the message says why.
    pub async fn launch(&self, task: TaskLaunch) -> Result<LaunchedTask, Error> {
        match self {
            Executor::Process(executor) => executor.launch(task).await.map(LaunchedTask::Process),
            Executor::Docker(executor) => executor.launch(task).await.map(LaunchedTask::Docker),
        }
    }

    /// Stops every running task and releases what the backend holds; later launches fail.
    pub async fn shutdown(&self) {
        match self {
            Executor::Process(executor) => executor.shutdown().await,
            Executor::Docker(executor) => executor.shutdown().await,
        }
    }

    /// Time between the polite stop and the kill when a task is canceled.
    pub fn set_cancel_grace(&self, grace: Duration) {
        match self {
            Executor::Process(executor) => executor.set_cancel_grace(grace),
            Executor::Docker(executor) => executor.set_cancel_grace(grace),
        }
    }
}

impl LaunchedTask {
    pub fn canceler(&self) -> TaskCanceler {
        match self {
            LaunchedTask::Process(task) => TaskCanceler::Process(task.canceler()),
            LaunchedTask::Docker(task) => TaskCanceler::Docker(task.canceler()),
        }
    }

    /// Waits for the task to end; its log file is complete when this returns.
    pub async fn wait(&mut self) -> ExitOutcome {
        match self {
            LaunchedTask::Process(task) => task.wait().await,
            LaunchedTask::Docker(task) => task.wait().await,
        }
    }
}

impl TaskCanceler {
    /// Asks the task to stop (SIGTERM), kills it after the grace period; nothing once it ended.
    pub fn cancel(&self) {
        match self {
            TaskCanceler::Process(canceler) => canceler.cancel(),
            TaskCanceler::Docker(canceler) => canceler.cancel(),
        }
    }
}

impl From<ProcessExecutor> for Executor {
    fn from(executor: ProcessExecutor) -> Self {
        Executor::Process(executor)
    }
}

impl From<DockerExecutor> for Executor {
    fn from(executor: DockerExecutor) -> Self {
        Executor::Docker(executor)
    }
}
