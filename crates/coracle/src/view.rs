//! What a person sees while a run goes on: on a terminal, a live line per running task under
//! the log lines; when piped, one plain line per state change.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use coracle_engine::TaskState;
use coracle_exec::LogLine;
use coracle_orchestrator::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub struct View {
    handle: JoinHandle<()>,
}

impl View {
    /// `quiet_stdout`: everything goes to stderr (stdout is kept for `--output json`).
    pub fn start(
        progress: mpsc::UnboundedReceiver<Progress>,
        logs: mpsc::UnboundedReceiver<LogLine>,
        _quiet_stdout: bool,
    ) -> View {
        let live = std::io::stderr().is_terminal();
        let handle = tokio::spawn(async move {
            let mut state = ViewState::new(live);
            state.pump(progress, logs).await;
        });
        View { handle }
    }

    pub async fn finish(self) {
        let _ = self.handle.await;
    }
}

struct ViewState {
    started: Instant,
    multi: Option<MultiProgress>,
    /// One line on top counting executor tasks by state (terminal only).
    summary: Option<ProgressBar>,
    /// Last known state of each executor task, for the counts.
    states: BTreeMap<String, TaskState>,
    bars: BTreeMap<String, ProgressBar>,
}

impl ViewState {
    fn new(live: bool) -> Self {
        let multi =
            live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(12)));
        let summary = multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        ViewState {
            started: Instant::now(),
            multi,
            summary,
            states: BTreeMap::new(),
            bars: BTreeMap::new(),
        }
    }

    async fn pump(
        &mut self,
        mut progress: mpsc::UnboundedReceiver<Progress>,
        mut logs: mpsc::UnboundedReceiver<LogLine>,
    ) {
        let mut logs_open = true;
        loop {
            tokio::select! {
                biased;
                line = logs.recv(), if logs_open => match line {
                    Some(line) => self.log(&line),
                    None => logs_open = false,
                },
                p = progress.recv() => match p {
                    Some(p) => self.progress(p),
                    None => break,
                },
            }
        }
        // Lines still buffered when the run ended.
        while let Ok(line) = logs.try_recv() {
            self.log(&line);
        }
        for (_, bar) in std::mem::take(&mut self.bars) {
            bar.finish_and_clear();
        }
        if let Some(summary) = self.summary.take() {
            summary.finish_and_clear();
        }
    }

    fn print(&self, line: String) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    fn elapsed(&self) -> String {
        format!("{:>7.2}s", self.started.elapsed().as_secs_f64())
    }

    fn show_counts(&self) {
        let Some(summary) = &self.summary else { return };
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for state in self.states.values() {
            let word = match state {
                TaskState::Pending => "pending",
                TaskState::Running => "running",
                TaskState::Succeeded => "succeeded",
                TaskState::Cached => "cached",
                TaskState::Failed => "failed",
                TaskState::Skipped => "skipped",
                TaskState::Canceled => "canceled",
            };
            *counts.entry(word).or_default() += 1;
        }
        let parts: Vec<String> = [
            "succeeded",
            "running",
            "pending",
            "failed",
            "skipped",
            "canceled",
        ]
        .iter()
        .filter_map(|w| counts.get(w).map(|n| format!("{n} {w}")))
        .collect();
        summary.set_message(format!("{} tasks: {}", self.states.len(), parts.join(", ")));
    }

    fn log(&self, line: &LogLine) {
        self.print(format!("{} | {}", line.task_key, line.line));
    }

    fn progress(&mut self, p: Progress) {
        match p {
            Progress::RunStarted {
                run_id,
                run_name,
                run_dir,
            } => {
                self.print(format!(
                    "run {run_id} ({run_name}) started; files in {}",
                    run_dir.display()
                ));
            }
            Progress::Note(note) => self.print(format!("note: {note}")),
            Progress::Task { update, .. } => {
                if !update.is_dag {
                    self.states.insert(update.task_path.clone(), update.state);
                    self.show_counts();
                }
                if update.state == TaskState::Pending {
                    return;
                }
                let kind = if update.is_dag { " (dag)" } else { "" };
                let state = format!("{:?}", update.state).to_uppercase();
                match (&self.multi, update.state) {
                    (Some(multi), TaskState::Running) => {
                        let bar = multi.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar.set_message(format!("{}{kind}", update.task_path));
                        bar.enable_steady_tick(Duration::from_millis(120));
                        self.bars.insert(update.task_path.clone(), bar);
                    }
                    _ => {
                        if let Some(bar) = self.bars.remove(&update.task_path) {
                            bar.finish_and_clear();
                        }
                        let error = update.error.map(|e| format!(": {e}")).unwrap_or_default();
                        self.print(format!(
                            "{} {:<9} {}{kind}{error}",
                            self.elapsed(),
                            state,
                            update.task_path
                        ));
                    }
                }
            }
        }
    }
}
