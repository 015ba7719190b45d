//! The data directory and what lives in it.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::CliError;

/// `--home` / `$CORACLE_HOME`, else `coracle` in the user's data directory.
pub fn resolve(home: Option<PathBuf>) -> Result<PathBuf, CliError> {
    let home = match home {
        Some(h) => h,
        None => dirs::data_dir()
            .map(|d| d.join("coracle"))
            .context("cannot find a data directory: set CORACLE_HOME")?,
    };
    std::fs::create_dir_all(&home)
        .with_context(|| format!("failed to create data directory {}", home.display()))?;
    Ok(std::path::absolute(&home).unwrap_or(home))
}

pub async fn open_store(home: &Path) -> Result<coracle_store::Store, CliError> {
    let path = home.join("coracle.db");
    Ok(coracle_store::Store::open(&path).await?)
}
