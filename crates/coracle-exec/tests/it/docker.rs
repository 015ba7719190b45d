//! The Docker backend against a real engine: exit codes, logs, shared paths, volumes,
//! environment, masked secrets, limits, cancel, drop, shutdown, missing images, memory kills,
//! and no container left behind. Run with `CORACLE_TEST_DOCKER=1` (a running dockerd and the
//! image `coracle-test/bookworm-python:1`, which `scripts/docker-setup` builds); otherwise
//! each test prints that it was skipped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coracle_exec::{
    DockerExecutor, DockerOptions, DockerTask, Error, ExitOutcome, LogLine, LogStream, Mount,
    TaskLaunch,
};
use tokio::sync::mpsc::UnboundedReceiver;

const IMAGE: &str = "coracle-test/bookworm-python:1";
/// A label every test puts on its containers, to find them (tests run in parallel, in one
/// process, so they share the boot id).
const CASE_LABEL: &str = "coracle-test.case";
const HELPER_ENV: &str = "CORACLE_EXEC_DOCKER_HELPER";

/// Gate: `CORACLE_TEST_DOCKER=1`, then waits (up to 15 minutes) for the test image.
fn docker_tests_enabled(test: &str) -> bool {
    if std::env::var("CORACLE_TEST_DOCKER").as_deref() != Ok("1") {
        eprintln!(
            "skipped {test}: set CORACLE_TEST_DOCKER=1 to run it (needs dockerd and {IMAGE})"
        );
        return false;
    }
    let engine = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    assert!(
        engine.as_ref().is_ok_and(|output| output.status.success()),
        "{test}: CORACLE_TEST_DOCKER=1 but no Docker engine answers (`docker version`: {:?}); start it with scripts/docker-setup",
        engine.map(|output| String::from_utf8_lossy(&output.stderr).trim().to_string())
    );
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let present = Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if present {
            return true;
        }
        assert!(
            Instant::now() < deadline,
            "{test}: image {IMAGE} is missing; run scripts/docker-setup"
        );
        std::thread::sleep(Duration::from_secs(5));
    }
}

struct Fixture {
    case: String,
    dir: tempfile::TempDir,
    executor: DockerExecutor,
    lines: UnboundedReceiver<LogLine>,
}

impl Fixture {
    async fn new(case: &str) -> Self {
        let (sender, lines) = tokio::sync::mpsc::unbounded_channel();
        let executor = DockerExecutor::connect(DockerOptions {
            host: None,
            log_lines: Some(sender),
        })
        .await
        .unwrap_or_else(|error| panic!("failed to {error}"));
        Fixture {
            case: case.to_string(),
            dir: tempfile::tempdir().expect("temp dir"),
            executor,
            lines,
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn task(&self, key: &str, argv: &[&str]) -> TaskLaunch {
        let work_dir = self.dir.path().join(format!("work-{key}"));
        std::fs::create_dir_all(&work_dir).expect("work dir");
        TaskLaunch {
            task_key: format!("{}-{key}", self.case),
            image: IMAGE.to_string(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            work_dir,
            log_path: self.dir.path().join(format!("{key}.log")),
            shared_paths: vec![self.path()],
            labels: [(CASE_LABEL.to_string(), self.case.clone())].into(),
            ..Default::default()
        }
    }

    async fn start(&self, task: TaskLaunch) -> DockerTask {
        let key = task.task_key.clone();
        self.executor
            .launch(task)
            .await
            .unwrap_or_else(|error| panic!("launch {key}: failed to {error}"))
    }

    async fn run(&self, task: TaskLaunch) -> ExitOutcome {
        self.start(task).await.wait().await
    }

    fn log(&self, key: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{key}.log"))).expect("log file")
    }

    fn drain_lines(&mut self) -> Vec<(LogStream, String)> {
        let mut lines = Vec::new();
        while let Ok(line) = self.lines.try_recv() {
            lines.push((line.stream, line.line));
        }
        lines
    }

    /// Containers of this test case that still exist.
    fn leftovers(&self) -> Vec<String> {
        containers_with_labels(&[
            format!("coracle.boot={}", DockerExecutor::boot_id()),
            format!("{CASE_LABEL}={}", self.case),
        ])
    }

    fn assert_no_leftovers(&self) {
        assert_eq!(
            self.leftovers(),
            Vec::<String>::new(),
            "containers left behind"
        );
    }
}

/// Names of containers (running or not) carrying all these `key=value` labels.
fn containers_with_labels(labels: &[String]) -> Vec<String> {
    let mut command = Command::new("docker");
    command.args(["ps", "-a", "--format", "{{.Names}}"]);
    for label in labels {
        command.args(["--filter", &format!("label={label}")]);
    }
    let output = command.output().expect("docker ps");
    assert!(output.status.success(), "docker ps failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

async fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn docker_connect_names_the_address_and_the_way_out() {
    // Needs no engine: nothing listens on this socket.
    let error = DockerExecutor::connect(DockerOptions {
        host: Some("unix:///nonexistent/coracle-test.sock".into()),
        log_lines: None,
    })
    .await
    .expect_err("no engine there");
    let message = error.to_string();
    assert!(matches!(error, Error::Docker(_)), "{message}");
    assert!(
        message.contains("unix:///nonexistent/coracle-test.sock"),
        "{message}"
    );
    assert!(message.contains("start dockerd"), "{message}");
    assert!(message.contains("--executor process"), "{message}");
}

#[tokio::test]
async fn docker_exit_codes() {
    if !docker_tests_enabled("docker_exit_codes") {
        return;
    }
    let fixture = Fixture::new("exit-codes").await;
    let cases: [(&str, &[&str], ExitOutcome); 3] = [
        ("true", &["true"], ExitOutcome::Exited(0)),
        ("false", &["false"], ExitOutcome::Exited(1)),
        ("exit-3", &["sh", "-c", "exit 3"], ExitOutcome::Exited(3)),
    ];
    for (key, argv, expected) in cases {
        let mut task = fixture.start(fixture.task(key, argv)).await;
        assert!(task.container_name().starts_with("coracle-exit-codes-"));
        assert_eq!(task.wait().await, expected, "{key}");
        assert_eq!(
            task.wait().await,
            expected,
            "{key}: a second wait answers the same"
        );
        fixture.assert_no_leftovers();
    }
}

#[tokio::test]
async fn docker_logs_reach_the_file_and_the_channel() {
    if !docker_tests_enabled("docker_logs_reach_the_file_and_the_channel") {
        return;
    }
    let mut fixture = Fixture::new("logs").await;
    let script = "echo out1; sleep 0.2; echo err1 >&2; sleep 0.2; printf 'out2\\nno newline'; sleep 0.2; printf 'err2' >&2";
    let outcome = fixture
        .run(fixture.task("logs", &["sh", "-c", script]))
        .await;
    assert_eq!(outcome, ExitOutcome::Exited(0));
    assert_eq!(fixture.log("logs"), "out1\nerr1\nout2\nno newline\nerr2\n");
    assert_eq!(
        fixture.drain_lines(),
        [
            (LogStream::Stdout, "out1".to_string()),
            (LogStream::Stderr, "err1".to_string()),
            (LogStream::Stdout, "out2".to_string()),
            (LogStream::Stdout, "no newline".to_string()),
            (LogStream::Stderr, "err2".to_string()),
        ]
    );
    fixture.assert_no_leftovers();
}

#[tokio::test]
async fn docker_quick_tasks_lose_no_output() {
    if !docker_tests_enabled("docker_quick_tasks_lose_no_output") {
        return;
    }
    let fixture = Fixture::new("quick").await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let key = format!("q{i}");
        let script = format!("echo hello {i}; echo bye {i} >&2");
        tasks.push((
            key.clone(),
            fixture
                .start(fixture.task(&key, &["sh", "-c", &script]))
                .await,
        ));
    }
    for (i, (key, mut task)) in tasks.into_iter().enumerate() {
        assert_eq!(task.wait().await, ExitOutcome::Exited(0));
        let log = fixture.log(&key);
        assert!(log.contains(&format!("hello {i}\n")), "{key}: {log:?}");
        assert!(log.contains(&format!("bye {i}\n")), "{key}: {log:?}");
    }
    fixture.assert_no_leftovers();
}

#[tokio::test]
async fn docker_big_output_is_complete() {
    if !docker_tests_enabled("docker_big_output_is_complete") {
        return;
    }
    let fixture = Fixture::new("big").await;
    let script = "seq 1 100000; head -c 307200 /dev/zero | tr '\\0' x >&2";
    let outcome = fixture
        .run(fixture.task("big", &["sh", "-c", script]))
        .await;
    assert_eq!(outcome, ExitOutcome::Exited(0));
    let log = fixture.log("big");
    let numbers: Vec<&str> = log.lines().filter(|l| !l.starts_with('x')).collect();
    assert_eq!(numbers.len(), 100_000);
    assert_eq!(numbers.last(), Some(&"100000"));
    let xs: usize = log
        .lines()
        .filter(|l| l.starts_with('x'))
        .map(str::len)
        .sum();
    assert_eq!(xs, 307_200);
    fixture.assert_no_leftovers();
}

#[tokio::test]
async fn docker_runs_in_the_work_dir_and_writes_to_shared_paths() {
    if !docker_tests_enabled("docker_runs_in_the_work_dir_and_writes_to_shared_paths") {
        return;
    }
    let fixture = Fixture::new("shared").await;
    let launch = fixture.task(
        "shared",
        &["sh", "-c", "pwd; echo 'from the container' > out.txt"],
    );
    let work_dir = launch.work_dir.clone();
    assert_eq!(fixture.run(launch).await, ExitOutcome::Exited(0));
    assert_eq!(fixture.log("shared"), format!("{}\n", work_dir.display()));
    assert_eq!(
        std::fs::read_to_string(work_dir.join("out.txt")).expect("the container's file"),
        "from the container\n"
    );
    fixture.assert_no_leftovers();
}

#[tokio::test]
async fn docker_volumes_are_mounted_read_write_or_read_only() {
    if !docker_tests_enabled("docker_volumes_are_mounted_read_write_or_read_only") {
        return;
    }
    let fixture = Fixture::new("volumes").await;
    let data = tempfile::tempdir().expect("data dir");
    let config = tempfile::tempdir().expect("config dir");
    std::fs::write(data.path().join("in.txt"), "host data\n").unwrap();
    std::fs::write(config.path().join("setting"), "blue\n").unwrap();
    let script = "cat /mnt/data/in.txt; echo written > /mnt/data/new.txt; cat /etc/team/setting; \
                  if (echo x > /etc/team/attempt) 2>/dev/null; then echo ro-writable; else echo ro-refused; fi; \
                  touch /etc/team/attempt";
    let mut launch = fixture.task("volumes", &["sh", "-c", script]);
    launch.mounts = vec![
        Mount {
            source: data.path().to_path_buf(),
            target: PathBuf::from("/mnt/data"),
            read_only: false,
        },
        Mount {
            source: config.path().to_path_buf(),
            target: PathBuf::from("/etc/team"),
            read_only: true,
        },
    ];
    assert_eq!(fixture.run(launch).await, ExitOutcome::Exited(1));
    let log = fixture.log("volumes");
    // stdout in order; stderr's line may come anywhere between them.
    let stdout: Vec<&str> = log.lines().filter(|l| !l.contains("touch")).collect();
    assert_eq!(stdout, ["host data", "blue", "ro-refused"], "{log}");
    assert!(log.contains("Read-only file system"), "{log}");
    assert_eq!(
        std::fs::read_to_string(data.path().join("new.txt")).unwrap(),
        "written\n"
    );
    assert!(!config.path().join("attempt").exists());
    fixture.assert_no_leftovers();
}

#[tokio::test]
async fn docker_environment_and_masked_secrets() {
    if !docker_tests_enabled("docker_environment_and_masked_secrets") {
        return;
    }
    let mut fixture = Fixture::new("env").await;
    let mut launch = fixture.task(
        "env",
        &[
            "sh",
            "-c",
            "echo \"foo=$FOO\"; echo \"password is $DB_PASSWORD\" >&2",
        ],
    );
    launch.env = vec![
        ("FOO".into(), "bar baz".into()),
        ("DB_PASSWORD".into(), "hunter2-s3cret".into()),
    ];
    launch.redact = vec!["hunter2-s3cret".into()];
    assert_eq!(fixture.run(launch).await, ExitOutcome::Exited(0));
    let log = fixture.log("env");
    assert!(log.contains("foo=bar baz\n"), "{log}");
    assert!(log.contains("password is ***\n"), "{log}");
    assert!(!log.contains("hunter2"), "{log}");
    let lines = fixture.drain_lines();
    assert!(
        lines.contains(&(LogStream::Stderr, "password is ***".to_string())),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|(_, line)| line.contains("hunter2")));
    fixture.assert_no_leftovers();
}

#[tokio::test]
async fn docker_limits_are_visible_inside() {
    if !docker_tests_enabled("docker_limits_are_visible_inside") {
        return;
    }
    let fixture = Fixture::new("limits").await;
    // cgroup v1 and v2 spellings; whichever exists.
    let script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
                  if [ -e /sys/fs/cgroup/cpu.max ]; then cat /sys/fs/cgroup/cpu.max; \
                  else echo \"$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)\"; fi; \
                  cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight";
    let mut launch = fixture.task("limits", &["sh", "-c", script]);
    launch.resources.memory_limit_bytes = Some(256 * 1024 * 1024);
    launch.resources.memory_request_bytes = Some(128 * 1024 * 1024);
    launch.resources.cpu_limit_millis = Some(500);
    launch.resources.cpu_request_millis = Some(250);
    assert_eq!(fixture.run(launch).await, ExitOutcome::Exited(0));
    let log = fixture.log("limits");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.first(), Some(&"268435456"), "{log}");
    let cpu: Vec<u64> = lines[1]
        .split_whitespace()
        .map(|n| n.parse().expect("a number"))
        .collect();
    assert_eq!(cpu.len(), 2, "{log}");
    assert_eq!(cpu[0] * 1000 / cpu[1], 500, "half a CPU: {log}");
    if Path::new("/sys/fs/cgroup/cpu/cpu.shares").exists() {
        assert_eq!(lines[2], "256", "250m is 256 shares: {log}");
    }
    fixture.assert_no_leftovers();
}

#[tokio::test]
async fn docker_memory_limit_kill_fails_the_task_and_says_why() {
    if !docker_tests_enabled("docker_memory_limit_kill_fails_the_task_and_says_why") {
        return;
    }
    let fixture = Fixture::new("oom").await;
    let mut launch = fixture.task(
        "oom",
        &[
            "python3",
            "-c",
            "x = bytearray(400 * 1024 * 1024); print('survived')",
        ],
    );
    launch.resources.memory_limit_bytes = Some(64 * 1024 * 1024);
    let outcome = fixture.run(launch).await;
    assert!(!outcome.success(), "{outcome:?}");
    assert_eq!(outcome, ExitOutcome::Exited(137));
    let log = fixture.log("oom");
    assert!(!log.contains("survived"), "{log}");
    assert!(
        log.contains("coracle: the container was killed for exceeding its memory limit"),
        "{log}"
    );
    fixture.assert_no_leftovers();
}

#[tokio::test]
async fn docker_cancel_stops_the_container_after_the_grace() {
    if !docker_tests_enabled("docker_cancel_stops_the_container_after_the_grace") {
        return;
    }
    let fixture = Fixture::new("cancel").await;
    fixture.executor.set_cancel_grace(Duration::from_secs(1));
    // `sleep` as the container's PID 1 ignores SIGTERM: the kill after the grace ends it.
    let mut task = fixture.start(fixture.task("sleep", &["sleep", "60"])).await;
    let canceler = task.canceler();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    canceler.cancel();
    canceler.cancel();
    assert_eq!(task.wait().await, ExitOutcome::Killed);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "killed before the grace: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "killed too late: {elapsed:?}"
    );
    canceler.cancel();
    assert_eq!(task.wait().await, ExitOutcome::Killed);
    fixture.assert_no_leftovers();

    // A task that honours SIGTERM ends at once.
    let script = "trap 'echo terminated; exit 0' TERM; echo ready; while true; do sleep 0.1; done";
    let mut task = fixture
        .start(fixture.task("polite", &["sh", "-c", script]))
        .await;
    let log_path = fixture.path().join("polite.log");
    assert!(
        eventually(Duration::from_secs(10), || std::fs::read_to_string(
            &log_path
        )
        .is_ok_and(|log| log.contains("ready")))
        .await
    );
    let started = Instant::now();
    task.canceler().cancel();
    assert_eq!(task.wait().await, ExitOutcome::Killed);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fixture.log("polite"), "ready\nterminated\n");
    fixture.assert_no_leftovers();
}

#[tokio::test]
async fn docker_cancel_after_the_end_does_nothing() {
    if !docker_tests_enabled("docker_cancel_after_the_end_does_nothing") {
        return;
    }
    let fixture = Fixture::new("late-cancel").await;
    let mut task = fixture.start(fixture.task("done", &["true"])).await;
    let canceler = task.canceler();
    assert_eq!(task.wait().await, ExitOutcome::Exited(0));
    canceler.cancel();
    assert_eq!(task.wait().await, ExitOutcome::Exited(0));
    fixture.assert_no_leftovers();
}

#[tokio::test]
async fn docker_dropping_a_task_removes_its_container() {
    if !docker_tests_enabled("docker_dropping_a_task_removes_its_container") {
        return;
    }
    let fixture = Fixture::new("drop").await;
    let task = fixture.start(fixture.task("sleep", &["sleep", "60"])).await;
    assert_eq!(fixture.leftovers().len(), 1);
    drop(task);
    assert!(
        eventually(Duration::from_secs(10), || fixture.leftovers().is_empty()).await,
        "left behind: {:?}",
        fixture.leftovers()
    );
}

#[tokio::test]
async fn docker_shutdown_stops_everything_and_refuses_launches() {
    if !docker_tests_enabled("docker_shutdown_stops_everything_and_refuses_launches") {
        return;
    }
    let fixture = Fixture::new("shutdown").await;
    let mut first = fixture.start(fixture.task("one", &["sleep", "60"])).await;
    let mut second = fixture.start(fixture.task("two", &["sleep", "60"])).await;
    assert_eq!(fixture.leftovers().len(), 2);
    let started = Instant::now();
    fixture.executor.shutdown().await;
    fixture.assert_no_leftovers();
    assert_eq!(first.wait().await, ExitOutcome::Killed);
    assert_eq!(second.wait().await, ExitOutcome::Killed);
    assert!(started.elapsed() < Duration::from_secs(10));
    let error = fixture
        .executor
        .launch(fixture.task("late", &["true"]))
        .await
        .expect_err("launch after shutdown");
    assert!(matches!(error, Error::ShutDown { .. }), "{error}");
    fixture.assert_no_leftovers();
}

#[tokio::test]
async fn docker_missing_image_is_a_clear_start_error() {
    if !docker_tests_enabled("docker_missing_image_is_a_clear_start_error") {
        return;
    }
    let fixture = Fixture::new("missing-image").await;
    let mut launch = fixture.task("missing", &["true"]);
    launch.image = "coracle-test/no-such-image:1".into();
    let error = fixture
        .executor
        .launch(launch)
        .await
        .expect_err("the image cannot be pulled here");
    let message = error.to_string();
    assert!(matches!(error, Error::Start { .. }), "{message}");
    assert!(
        message.contains(
            "image coracle-test/no-such-image:1 is not present locally and cannot be pulled: "
        ),
        "{message}"
    );
    assert!(message.contains("docker pull"), "{message}");
    assert!(message.contains("docker load"), "{message}");
    let log = fixture.log("missing");
    assert!(
        log.contains("coracle: image coracle-test/no-such-image:1 is not present locally; pulling"),
        "{log}"
    );
    assert!(
        log.contains(&format!("coracle: failed to {message}")),
        "{log}"
    );
    fixture.assert_no_leftovers();
}

#[tokio::test]
async fn docker_missing_program_is_a_start_error() {
    if !docker_tests_enabled("docker_missing_program_is_a_start_error") {
        return;
    }
    let fixture = Fixture::new("missing-program").await;
    let error = fixture
        .executor
        .launch(fixture.task("missing", &["/no/such/program", "arg"]))
        .await
        .expect_err("nothing to run");
    let message = error.to_string();
    assert!(matches!(error, Error::Start { .. }), "{message}");
    assert!(message.contains("the container did not start"), "{message}");
    assert!(message.contains("/no/such/program"), "{message}");
    assert!(
        fixture
            .log("missing")
            .contains("coracle: failed to start task")
    );
    fixture.assert_no_leftovers();
}

/// A helper "Coracle" process: starts a long container, says so, and waits to be killed.
#[tokio::test]
#[ignore = "run by docker_leftovers_of_a_killed_coracle_are_removed_at_connect"]
async fn docker_leftover_helper() {
    if std::env::var(HELPER_ENV).as_deref() != Ok("1") {
        return;
    }
    let fixture = Fixture::new("leftover").await;
    let task = fixture
        .start(fixture.task("sleep", &["sleep", "300"]))
        .await;
    println!("BOOT {}", DockerExecutor::boot_id());
    println!("CONTAINER {}", task.container_name());
    std::mem::forget(task);
    tokio::time::sleep(Duration::from_secs(300)).await;
}

/// Kills the helper process however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn docker_leftovers_of_a_killed_coracle_are_removed_at_connect() {
    if !docker_tests_enabled("docker_leftovers_of_a_killed_coracle_are_removed_at_connect") {
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let helper = Command::new(exe)
        .args([
            "--exact",
            "docker::docker_leftover_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start helper");
    let mut helper = KillOnDrop(helper);
    let mut stdout = BufReader::new(helper.0.stdout.take().unwrap());
    let (mut boot, mut container) = (None, None);
    let mut line = String::new();
    while container.is_none() {
        line.clear();
        if stdout.read_line(&mut line).expect("helper output") == 0 {
            break;
        }
        // The test harness may print `test … ... ` before the helper's own words.
        if let Some((_, value)) = line.trim().split_once("BOOT ") {
            boot = Some(value.to_string());
        }
        if let Some((_, value)) = line.trim().split_once("CONTAINER ") {
            container = Some(value.to_string());
        }
    }
    let (boot, container) = (
        boot.expect("helper's boot id"),
        container.expect("helper's container"),
    );
    let of_helper = [format!("coracle.boot={boot}")];
    // While the helper lives, a new executor leaves its container alone.
    let fixture = Fixture::new("leftover-check").await;
    assert_eq!(
        containers_with_labels(&of_helper),
        std::slice::from_ref(&container)
    );
    helper.0.kill().expect("kill the helper");
    helper.0.wait().expect("reap the helper");
    // Killed with SIGKILL, it could not clean up: the container still runs.
    assert_eq!(
        containers_with_labels(&of_helper),
        std::slice::from_ref(&container)
    );
    drop(fixture);
    let _fixture = Fixture::new("leftover-check").await;
    assert_eq!(
        containers_with_labels(&of_helper),
        Vec::<String>::new(),
        "connect removes what a dead Coracle left"
    );
}
