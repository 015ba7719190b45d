//! The Docker backend (being written: see the module's owner).

use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::{Error, ExitOutcome, LogLine, TaskLaunch};

/// How to reach the engine and what to tell watchers.
#[derive(Debug, Clone, Default)]
pub struct DockerOptions {
    /// The engine's address (`unix:///var/run/docker.sock`, `tcp://…`); default: `DOCKER_HOST`,
    /// else the local socket.
    pub host: Option<String>,
    /// Live log lines of every task.
    pub log_lines: Option<UnboundedSender<LogLine>>,
}

/// Runs tasks as containers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DockerExecutor {}

/// A started container.
#[derive(Debug)]
pub struct DockerTask {}

/// Stops one container; cheap to clone.
#[derive(Clone, Debug)]
pub struct DockerCanceler {}

impl DockerExecutor {
    /// Connects to the engine; a clear error when none answers.
    pub async fn connect(_options: DockerOptions) -> Result<Self, Error> {
        Err(Error::Docker("the Docker backend is not built yet".into()))
    }

    pub async fn launch(&self, task: TaskLaunch) -> Result<DockerTask, Error> {
        Err(Error::Start {
            task_key: task.task_key,
            reason: "the Docker backend is not built yet".into(),
        })
    }

    pub async fn shutdown(&self) {}

    pub fn set_cancel_grace(&self, _grace: Duration) {}
}

impl DockerTask {
    pub fn canceler(&self) -> DockerCanceler {
        DockerCanceler {}
    }

    pub async fn wait(&mut self) -> ExitOutcome {
        ExitOutcome::FailedToStart("the Docker backend is not built yet".into())
    }
}

impl DockerCanceler {
    pub fn cancel(&self) {}
}
