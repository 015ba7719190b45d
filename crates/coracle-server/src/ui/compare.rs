//! `/compare?runs=a,b,…`: two to ten runs side by side: their root parameters
//! (`table#compare-params`) and the scalar metrics of their `system.Metrics` artifacts
//! (`table#compare-metrics`), a column per run, a row per parameter or metric; the cells of a
//! row whose values differ between the runs have class `diff`. A metric's row is named by the
//! metric alone when only one task output of the compared runs has a metric of that name,
//! else `task/output/metric`.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::Deserialize;

use super::{PageError, PageResult, charts, show_value};
use crate::AppState;

/// How many runs one comparison takes.
pub const RUNS_RANGE: std::ops::RangeInclusive<usize> = 2..=10;

/// What a cell shows for a run that has no such parameter or metric.
const MISSING: &str = "—";

pub fn routes() -> Router<AppState> {
    Router::new().route("/compare", get(compare))
}

#[derive(Debug, Default, Deserialize)]
struct CompareQuery {
    runs: Option<String>,
}

struct RunColumn {
    run_id: String,
    name: String,
    state: String,
}

struct Row {
    name: String,
    cells: Vec<String>,
    differs: bool,
}

impl Row {
    fn new(name: String, cells: Vec<String>) -> Row {
        let differs = cells.iter().any(|cell| *cell != cells[0]);
        Row {
            name,
            cells,
            differs,
        }
    }
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    runs: Vec<RunColumn>,
    parameters: Vec<Row>,
    metrics: Vec<Row>,
}

/// The run ids of `a,b,c` (spaces and repeats dropped).
fn run_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for id in text.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        if !ids.iter().any(|seen| seen == id) {
            ids.push(id.to_owned());
        }
    }
    ids
}

/// Metric rows from each run's metrics keyed `(task, output, metric)`.
fn metric_rows(per_run: &[BTreeMap<(String, String, String), f64>]) -> Vec<Row> {
    let keys: BTreeSet<&(String, String, String)> =
        per_run.iter().flat_map(|metrics| metrics.keys()).collect();
    let mut outputs_per_metric: BTreeMap<&str, BTreeSet<(&str, &str)>> = BTreeMap::new();
    for (task, output, metric) in &keys {
        outputs_per_metric
            .entry(metric.as_str())
            .or_default()
            .insert((task.as_str(), output.as_str()));
    }
    let mut rows: Vec<Row> = keys
        .iter()
        .map(|key| {
            let (task, output, metric) = key;
            let name = if outputs_per_metric[metric.as_str()].len() == 1 {
                metric.clone()
            } else {
                format!("{task}/{output}/{metric}")
            };
            let cells = per_run
                .iter()
                .map(|metrics| {
                    metrics
                        .get(*key)
                        .map_or_else(|| MISSING.to_owned(), |value| charts::format_number(*value))
                })
                .collect();
            Row::new(name, cells)
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

async fn compare(State(state): State<AppState>, Query(query): Query<CompareQuery>) -> PageResult {
    let ids = run_ids(query.runs.as_deref().unwrap_or_default());
    if !RUNS_RANGE.contains(&ids.len()) {
        return Err(PageError::bad_request(format!(
            "compare takes {} to {} runs (/compare?runs=a,b); {} given",
            RUNS_RANGE.start(),
            RUNS_RANGE.end(),
            ids.len()
        )));
    }
    let mut runs = Vec::with_capacity(ids.len());
    let mut parameters = Vec::with_capacity(ids.len());
    let mut metrics = Vec::with_capacity(ids.len());
    for id in &ids {
        let Some(found) = state.store.get_api_run_summary(id).await? else {
            return Err(PageError::not_found(format!("run {id:?} not found")));
        };
        let run = found.run;
        let mut run_metrics = BTreeMap::new();
        for artifact in state.store.list_artifacts(id).await? {
            if artifact.schema_title != "system.Metrics" {
                continue;
            }
            for (metric, value) in charts::scalar_metrics(&artifact.metadata) {
                run_metrics.insert(
                    (
                        artifact.producer_task_id.clone(),
                        artifact.name.clone(),
                        metric,
                    ),
                    value,
                );
            }
        }
        metrics.push(run_metrics);
        parameters.push(run.parameters.as_object().cloned().unwrap_or_default());
        runs.push(RunColumn {
            run_id: run.run_id,
            name: run.display_name,
            state: run.state.as_str().to_owned(),
        });
    }
    let names: BTreeSet<&String> = parameters.iter().flat_map(|p| p.keys()).collect();
    let parameter_rows = names
        .into_iter()
        .map(|name| {
            let cells = parameters
                .iter()
                .map(|p| p.get(name).map_or_else(|| MISSING.to_owned(), show_value))
                .collect();
            Row::new(name.clone(), cells)
        })
        .collect();
    super::page(&ComparePage {
        runs,
        parameters: parameter_rows,
        metrics: metric_rows(&metrics),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_split_and_deduplicated() {
        assert_eq!(run_ids(" a, b,,a ,c"), vec!["a", "b", "c"]);
        assert!(run_ids("").is_empty());
    }

    #[test]
    fn metric_names_are_short_when_unique() {
        let key = |task: &str, output: &str, metric: &str| {
            (task.to_owned(), output.to_owned(), metric.to_owned())
        };
        let first = BTreeMap::from([
            (key("train", "metrics", "accuracy"), 0.9),
            (key("train", "metrics", "loss"), 0.1),
            (key("eval", "metrics", "loss"), 0.2),
        ]);
        let second = BTreeMap::from([
            (key("train", "metrics", "accuracy"), 0.9),
            (key("train", "metrics", "loss"), 0.15),
        ]);
        let rows = metric_rows(&[first, second]);
        let shown: Vec<(&str, Vec<&str>, bool)> = rows
            .iter()
            .map(|row| {
                (
                    row.name.as_str(),
                    row.cells.iter().map(String::as_str).collect(),
                    row.differs,
                )
            })
            .collect();
        assert_eq!(
            shown,
            vec![
                ("accuracy", vec!["0.9", "0.9"], false),
                ("eval/metrics/loss", vec!["0.2", "—"], true),
                ("train/metrics/loss", vec!["0.1", "0.15"], true),
            ]
        );
    }
}
