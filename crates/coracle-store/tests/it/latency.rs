//! Not a test: prints what single writes cost, for the ~1 ms per task budget of the run loop.
//! `cargo test --release -p coracle-store --test it -- --ignored --nocapture latency`

use std::time::{Duration, Instant};

use coracle_store::{RunState, TaskState};

use crate::common::{run, task, temp_store, time};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
#[ignore = "prints timings; run by hand"]
async fn latency_of_single_writes() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    let n = 2000;

    // Baseline: one round trip to SQLite's thread that reads nothing (an indexed miss).
    let mut baseline = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        store.get_run("missing").await.unwrap();
        baseline.push(start.elapsed());
    }
    let baseline = median(baseline);

    let mut insert = Vec::with_capacity(n);
    let mut update = Vec::with_capacity(n);
    for index in 0..n {
        let mut record = task("r1", &format!("root/t{index}"), 0);
        let start = Instant::now();
        store.upsert_task(&record).await.unwrap();
        insert.push(start.elapsed());

        record.state = TaskState::Running;
        record.started_at = Some(time("2024-05-01T12:00:01Z"));
        let start = Instant::now();
        store.upsert_task(&record).await.unwrap();
        update.push(start.elapsed());
    }
    let mut run_state = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        store
            .set_run_state("r1", RunState::Running, None, time("2024-05-01T12:00:01Z"))
            .await
            .unwrap();
        run_state.push(start.elapsed());
    }
    let batch: Vec<_> = (0..100)
        .map(|index| task("r1", &format!("root/b{index}"), 0))
        .collect();
    let start = Instant::now();
    store.upsert_tasks(&batch).await.unwrap();
    let batch_time = start.elapsed();
    let start = Instant::now();
    let tasks = store.list_tasks("r1").await.unwrap();
    let list_time = start.elapsed();

    let report = |label: &str, samples: Vec<Duration>| {
        let median = median(samples);
        let ratio = median.as_secs_f64() / baseline.as_secs_f64();
        println!("{label} median: {median:?} ({ratio:.1}x baseline)");
    };
    println!("baseline (get_run of a missing id) median: {baseline:?}");
    report("upsert_task (insert)", insert);
    report("upsert_task (update)", update);
    report("set_run_state", run_state);
    println!("upsert_tasks (100 in one transaction): {batch_time:?}");
    println!("list_tasks ({} rows): {list_time:?}", tasks.len());
}
