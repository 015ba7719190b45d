//! Plain processes: exit codes, environment, working directory, logs, cancel, start failures.

use std::time::{Duration, Instant};

use coracle_exec::{Error, ExitOutcome, LogStream};

use crate::common::{Fixture, eventually, group_members, process_alive};

#[tokio::test]
async fn exit_codes_and_signals() {
    let fixture = Fixture::new();
    let cases: [(&str, &[&str], ExitOutcome); 4] = [
        ("true", &["true"], ExitOutcome::Exited(0)),
        ("false", &["false"], ExitOutcome::Exited(1)),
        ("exit-3", &["sh", "-c", "exit 3"], ExitOutcome::Exited(3)),
        (
            "self-kill",
            &["sh", "-c", "kill -TERM $$"],
            ExitOutcome::Signaled(15),
        ),
    ];
    for (key, argv, expected) in cases {
        let mut task = fixture.start(fixture.task(key, argv)).await;
        assert!(task.pid().is_some());
        assert_eq!(task.wait().await, expected, "{key}");
        assert_eq!(
            task.wait().await,
            expected,
            "{key}: a second wait answers the same"
        );
    }
}

#[tokio::test]
async fn environment_is_inherited_plus_the_tasks() {
    let fixture = Fixture::new();
    let mut launch = fixture.task("env", &["sh", "-c", "echo \"foo=$FOO home=${HOME:+set}\""]);
    launch.env = vec![("FOO".into(), "bar baz".into())];
    let mut task = fixture.start(launch).await;
    assert_eq!(task.wait().await, ExitOutcome::Exited(0));
    assert_eq!(fixture.log("env"), "foo=bar baz home=set\n");
}

#[tokio::test]
async fn runs_in_the_work_dir() {
    let fixture = Fixture::new();
    let launch = fixture.task("cwd", &["pwd"]);
    let work_dir = launch.work_dir.canonicalize().unwrap();
    let mut task = fixture.start(launch).await;
    assert_eq!(task.wait().await, ExitOutcome::Exited(0));
    assert_eq!(fixture.log("cwd"), format!("{}\n", work_dir.display()));
}

#[tokio::test]
async fn log_file_and_live_lines_have_stdout_and_stderr() {
    let mut fixture = Fixture::new();
    let script = "echo out1; sleep 0.05; echo err1 >&2; sleep 0.05; printf 'out2\\nno newline'";
    let mut task = fixture
        .start(fixture.task("logs", &["sh", "-c", script]))
        .await;
    assert_eq!(task.wait().await, ExitOutcome::Exited(0));
    assert_eq!(fixture.log("logs"), "out1\nerr1\nout2\nno newline\n");
    let lines: Vec<(LogStream, String)> = fixture
        .drain_lines()
        .into_iter()
        .map(|line| {
            assert_eq!(line.task_key, "logs");
            (line.stream, line.line)
        })
        .collect();
    assert_eq!(
        lines,
        [
            (LogStream::Stdout, "out1".to_string()),
            (LogStream::Stderr, "err1".to_string()),
            (LogStream::Stdout, "out2".to_string()),
            (LogStream::Stdout, "no newline".to_string()),
        ]
    );
}

#[tokio::test]
async fn live_lines_arrive_while_the_task_runs() {
    let mut fixture = Fixture::new();
    let mut task = fixture
        .start(fixture.task("live", &["sh", "-c", "echo first; sleep 100"]))
        .await;
    let line = tokio::time::timeout(Duration::from_secs(5), fixture.lines.recv())
        .await
        .expect("a line before the task ends")
        .expect("channel open");
    assert_eq!(line.line, "first");
    task.canceler().cancel();
    assert_eq!(task.wait().await, ExitOutcome::Killed);
}

#[tokio::test]
async fn big_output_is_complete() {
    let fixture = Fixture::new();
    // 200k lines on stdout, one 300 KiB line on stderr.
    let script = "seq 1 200000; head -c 307200 /dev/zero | tr '\\0' x >&2";
    let mut task = fixture
        .start(fixture.task("big", &["sh", "-c", script]))
        .await;
    assert_eq!(task.wait().await, ExitOutcome::Exited(0));
    let log = fixture.log("big");
    let numbers: Vec<&str> = log.lines().filter(|l| !l.starts_with('x')).collect();
    assert_eq!(numbers.len(), 200_000);
    assert_eq!(numbers.last(), Some(&"200000"));
    let xs: usize = log
        .lines()
        .filter(|l| l.starts_with('x'))
        .map(str::len)
        .sum();
    assert_eq!(xs, 307_200);
}

#[tokio::test]
async fn cancel_kills_the_whole_process_group() {
    let fixture = Fixture::new();
    let mut task = fixture
        .start(fixture.task("cancel", &["sh", "-c", "sleep 100 & sleep 100"]))
        .await;
    let pgid = task.pid().unwrap();
    assert!(
        eventually(Duration::from_secs(5), || group_members(pgid).len() >= 3).await,
        "sh and two sleeps should be running: {:?}",
        group_members(pgid)
    );
    let started = Instant::now();
    task.canceler().cancel();
    assert_eq!(task.wait().await, ExitOutcome::Killed);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "SIGTERM is enough here"
    );
    assert!(
        eventually(Duration::from_secs(2), || group_members(pgid).is_empty()).await,
        "left behind: {:?}",
        group_members(pgid)
    );
}

#[tokio::test]
async fn cancel_escalates_to_sigkill_after_the_grace_period() {
    let fixture = Fixture::new();
    fixture
        .executor
        .set_cancel_grace(Duration::from_millis(300));
    // `trap '' TERM` makes the shell and the sleep it starts ignore SIGTERM.
    let mut task = fixture
        .start(fixture.task(
            "stubborn",
            &["sh", "-c", "trap '' TERM; sleep 100 & sleep 100"],
        ))
        .await;
    let pgid = task.pid().unwrap();
    assert!(eventually(Duration::from_secs(5), || group_members(pgid).len() >= 3).await);
    let started = Instant::now();
    let canceler = task.canceler();
    canceler.cancel();
    canceler.cancel();
    assert_eq!(task.wait().await, ExitOutcome::Killed);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250),
        "killed too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "killed too late: {elapsed:?}"
    );
    assert!(eventually(Duration::from_secs(2), || group_members(pgid).is_empty()).await);
}

#[tokio::test]
async fn background_processes_die_with_the_main_process() {
    let fixture = Fixture::new();
    let started = Instant::now();
    let mut task = fixture
        .start(fixture.task("background", &["sh", "-c", "sleep 100 & echo started"]))
        .await;
    let pgid = task.pid().unwrap();
    assert_eq!(task.wait().await, ExitOutcome::Exited(0));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "wait must not hang on the background sleep"
    );
    assert_eq!(fixture.log("background"), "started\n");
    assert!(eventually(Duration::from_secs(2), || group_members(pgid).is_empty()).await);
}

#[tokio::test]
async fn cancel_after_the_end_does_nothing() {
    let fixture = Fixture::new();
    let mut task = fixture.start(fixture.task("done", &["true"])).await;
    let canceler = task.canceler();
    assert_eq!(task.wait().await, ExitOutcome::Exited(0));
    canceler.cancel();
    assert_eq!(task.wait().await, ExitOutcome::Exited(0));
}

#[tokio::test]
async fn dropping_a_running_task_kills_it() {
    let fixture = Fixture::new();
    let task = fixture
        .start(fixture.task("dropped", &["sh", "-c", "sleep 100 & sleep 100"]))
        .await;
    let pgid = task.pid().unwrap();
    assert!(eventually(Duration::from_secs(5), || group_members(pgid).len() >= 3).await);
    drop(task);
    assert!(eventually(Duration::from_secs(2), || group_members(pgid).is_empty()).await);
}

#[tokio::test]
async fn shutdown_kills_running_tasks_and_refuses_new_ones() {
    let fixture = Fixture::new();
    let mut task = fixture
        .start(fixture.task("running", &["sh", "-c", "sleep 100 & sleep 100"]))
        .await;
    let pgid = task.pid().unwrap();
    assert!(eventually(Duration::from_secs(5), || group_members(pgid).len() >= 3).await);
    fixture.executor.shutdown().await;
    assert_eq!(task.wait().await, ExitOutcome::Killed);
    assert!(eventually(Duration::from_secs(2), || group_members(pgid).is_empty()).await);
    assert!(!process_alive(pgid));
    let error = fixture
        .executor
        .launch(fixture.task("late", &["true"]))
        .await
        .expect_err("launch after shutdown fails");
    assert!(matches!(error, Error::ShutDown { .. }), "{error}");
}

#[tokio::test]
async fn start_failures_say_what_is_wrong() {
    let fixture = Fixture::new();
    let error = fixture
        .executor
        .launch(fixture.task("missing", &["coracle-no-such-program", "x"]))
        .await
        .expect_err("cannot start");
    assert_eq!(
        error.to_string(),
        "start task missing: program \"coracle-no-such-program\" not found (looked up on PATH)"
    );

    let mut launch = fixture.task("no-dir", &["true"]);
    launch.work_dir = fixture.dir.path().join("does-not-exist");
    let error = fixture
        .executor
        .launch(launch)
        .await
        .expect_err("cannot start");
    assert_eq!(
        error.to_string(),
        format!(
            "start task no-dir: working directory {} does not exist",
            fixture.dir.path().join("does-not-exist").display()
        )
    );

    let error = fixture
        .executor
        .launch(fixture.task("empty", &[]))
        .await
        .expect_err("cannot start");
    assert_eq!(error.to_string(), "start task empty: the command is empty");

    let mut launch = fixture.task("no-log", &["true"]);
    launch.log_path = fixture.dir.path().join("no/such/dir/task.log");
    let error = fixture
        .executor
        .launch(launch)
        .await
        .expect_err("cannot start");
    assert!(
        error
            .to_string()
            .starts_with("start task no-log: cannot create log file"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_at_once() {
    let fixture = std::sync::Arc::new(Fixture::new());
    let mut handles = Vec::new();
    for i in 0..50 {
        let fixture = fixture.clone();
        handles.push(tokio::spawn(async move {
            let key = format!("parallel-{i}");
            let script = format!("echo {i}; sleep 0.1; exit {}", i % 7);
            let mut task = fixture
                .start(fixture.task(&key, &["sh", "-c", &script]))
                .await;
            (i, task.wait().await)
        }));
    }
    for handle in handles {
        let (i, outcome) = handle.await.unwrap();
        assert_eq!(outcome, ExitOutcome::Exited(i % 7));
        assert_eq!(fixture.log(&format!("parallel-{i}")), format!("{i}\n"));
    }
}

/// Not a test of behaviour: prints what launching a process costs beyond fork/exec.
/// Run with `cargo test -p coracle-exec --release --test it -- --ignored --nocapture timing`.
#[tokio::test]
#[ignore]
async fn timing_plain_true() {
    const N: u32 = 300;
    let fixture = Fixture::new();
    for _ in 0..20 {
        std::process::Command::new("true").status().unwrap();
        fixture
            .start(fixture.task("warmup", &["true"]))
            .await
            .wait()
            .await;
    }
    let started = Instant::now();
    for _ in 0..N {
        std::process::Command::new("true").status().unwrap();
    }
    let baseline = started.elapsed() / N;
    let started = Instant::now();
    for _ in 0..N {
        let mut task = fixture.start(fixture.task("true", &["true"])).await;
        assert_eq!(task.wait().await, ExitOutcome::Exited(0));
    }
    let ours = started.elapsed() / N;
    eprintln!(
        "plain `true`: std::process::Command {baseline:?} per run, ProcessExecutor {ours:?} per task (log file, pipes, guardian), overhead {:?}",
        ours.saturating_sub(baseline)
    );
}
