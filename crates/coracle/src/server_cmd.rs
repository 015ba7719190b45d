//! `coracle server`. (being written)

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use crate::CliError;

#[derive(Args)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8888", env = "CORACLE_LISTEN")]
    pub listen: String,
}

pub async fn run(_home: &Path, _args: ServerArgs) -> Result<ExitCode, CliError> {
    Err(CliError::user(anyhow::anyhow!("coracle server is not written yet")))
}
