//! Volumes of the process backend: each task with mounts runs in a private mount namespace.
//!
//! Every test first asks `check_private_mounts()`. Where the machine does not allow private
//! mount namespaces, it asserts instead that a task with a volume is refused with the
//! sentence that says so, and stops there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use coracle_exec::{ExitOutcome, Mount, TaskLaunch, check_private_mounts};
use serde_json::json;

use crate::common::{Fixture, eventually, python_tests_enabled};
use crate::python::{component_argv, output_of, python_fixture, python_task};

/// A fresh `/tmp/coracle-mnt-<random>` directory; mount paths go below it.
fn mount_base() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("coracle-mnt-")
        .tempdir_in("/tmp")
        .expect("mount base")
}

fn mount(source: &Path, target: &Path, read_only: bool) -> Mount {
    Mount {
        source: source.to_path_buf(),
        target: target.to_path_buf(),
        read_only,
    }
}

/// A source directory under the fixture holding `files`.
fn source_dir(fixture: &Fixture, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = fixture.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, content) in files {
        std::fs::write(dir.join(file), content).unwrap();
    }
    dir
}

fn task_with(fixture: &Fixture, key: &str, script: &str, mounts: Vec<Mount>) -> TaskLaunch {
    let mut task = fixture.task(key, &["sh", "-c", script]);
    task.mounts = mounts;
    task
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mount_namespace(pid: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .unwrap_or_else(|error| panic!("read the mount namespace of {pid}: {error}"))
        .display()
        .to_string()
}

/// Whether private mount namespaces work here. When they do not, asserts that a task with a
/// volume is refused with the reason and the advice to use Docker, and returns false.
async fn volumes_work(fixture: &Fixture, test: &str) -> bool {
    let reason = match check_private_mounts() {
        Ok(()) => return true,
        Err(reason) => reason,
    };
    assert!(
        reason.starts_with("this machine does not allow private mount namespaces (")
            || reason.starts_with("cannot check whether this machine allows"),
        "{reason}"
    );
    let source = source_dir(fixture, "refused-source", &[]);
    let base = mount_base();
    let task = task_with(
        fixture,
        "refused",
        "true",
        vec![mount(&source, &base.path().join("data"), false)],
    );
    let error = fixture
        .executor
        .launch(task)
        .await
        .expect_err("a task with a volume cannot start without private mounts");
    assert_eq!(
        error.to_string(),
        format!("start task refused: {reason}; run with --executor docker to use volumes")
    );
    assert!(
        !base.path().join("data").exists(),
        "nothing is prepared for a refused task"
    );
    eprintln!("{test}: only checked the refusal: {reason}");
    false
}

#[tokio::test]
async fn a_task_reads_and_writes_through_a_volume() {
    let fixture = Fixture::new();
    if !volumes_work(&fixture, "a_task_reads_and_writes_through_a_volume").await {
        return;
    }
    let source = source_dir(&fixture, "pvc", &[("in.txt", "from the host\n")]);
    let base = mount_base();
    let target = base.path().join("deep/data");
    let script = format!(
        "cat {t}/in.txt && echo 'from the task' > {t}/out.txt && ls {t}",
        t = target.display()
    );
    let mut task = fixture
        .start(task_with(
            &fixture,
            "rw",
            &script,
            vec![mount(&source, &target, false)],
        ))
        .await;
    assert_eq!(
        task.wait().await,
        ExitOutcome::Exited(0),
        "{}",
        fixture.log("rw")
    );
    assert_eq!(fixture.log("rw"), "from the host\nin.txt\nout.txt\n");
    assert_eq!(
        std::fs::read_to_string(source.join("out.txt")).unwrap(),
        "from the task\n"
    );
    // Coracle made the mount point (two levels) and left it, empty.
    assert!(target.is_dir());
    assert_eq!(entries(&target), Vec::<String>::new());
}

#[tokio::test]
async fn the_host_never_sees_a_tasks_volume() {
    let fixture = Fixture::new();
    if !volumes_work(&fixture, "the_host_never_sees_a_tasks_volume").await {
        return;
    }
    let source = source_dir(&fixture, "pvc", &[("in.txt", "secret contents\n")]);
    let base = mount_base();
    let target = base.path().join("data");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("host-file"), "the host's own\n").unwrap();
    let script = format!("ls {t}; touch {t}/started; sleep 100", t = target.display());
    let mut task = fixture
        .start(task_with(
            &fixture,
            "hidden",
            &script,
            vec![mount(&source, &target, false)],
        ))
        .await;
    let pid = task.pid().unwrap().to_string();
    assert!(
        eventually(Duration::from_secs(5), || source.join("started").exists()).await,
        "the task did not start: {}",
        fixture.log("hidden")
    );
    // While it runs: the host sees its own file, not the volume; the task is in another
    // mount namespace, whose mount table has the volume and ours has not.
    assert_eq!(entries(&target), ["host-file"]);
    assert_ne!(mount_namespace(&pid), mount_namespace("self"));
    let target_text = target.display().to_string();
    let task_mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(task_mounts.contains(&target_text), "{task_mounts}");
    let our_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!our_mounts.contains(&target_text), "{our_mounts}");

    task.canceler().cancel();
    assert_eq!(task.wait().await, ExitOutcome::Killed);
    assert_eq!(fixture.log("hidden"), "in.txt\n", "the task saw the volume");
    assert_eq!(entries(&target), ["host-file"]);
    assert_eq!(entries(&source), ["in.txt", "started"]);
}

#[tokio::test]
async fn a_read_only_volume_refuses_writes() {
    let fixture = Fixture::new();
    if !volumes_work(&fixture, "a_read_only_volume_refuses_writes").await {
        return;
    }
    let config = source_dir(&fixture, "config", &[("in.txt", "settings\n")]);
    let scratch = source_dir(&fixture, "scratch", &[]);
    let base = mount_base();
    let (ro, rw) = (base.path().join("config"), base.path().join("scratch"));
    // Exit 42: reading the read-only volume and writing the other one worked, writing the
    // read-only one failed.
    let script = format!(
        "cat {ro}/in.txt || exit 41; touch {rw}/ok || exit 43; touch {ro}/new && exit 0; exit 42",
        ro = ro.display(),
        rw = rw.display()
    );
    let mut task = fixture
        .start(task_with(
            &fixture,
            "ro",
            &script,
            vec![mount(&config, &ro, true), mount(&scratch, &rw, false)],
        ))
        .await;
    assert_eq!(
        task.wait().await,
        ExitOutcome::Exited(42),
        "{}",
        fixture.log("ro")
    );
    let log = fixture.log("ro");
    assert!(log.starts_with("settings\n"), "{log}");
    assert!(log.contains("Read-only file system"), "{log}");
    assert_eq!(entries(&config), ["in.txt"]);
    assert_eq!(entries(&scratch), ["ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tasks_at_the_same_mount_path_see_their_own_volume() {
    let fixture = std::sync::Arc::new(Fixture::new());
    if !volumes_work(
        &fixture,
        "concurrent_tasks_at_the_same_mount_path_see_their_own_volume",
    )
    .await
    {
        return;
    }
    let base = mount_base();
    let target = base.path().join("data");
    // A meeting point outside the volumes: each task waits there until all have started, so
    // that they really run at the same time.
    let meeting = fixture.dir.path().join("meeting");
    std::fs::create_dir_all(&meeting).unwrap();
    let names = ["alpha", "beta", "gamma"];
    let mut handles = Vec::new();
    for name in names {
        let fixture = fixture.clone();
        let source = source_dir(&fixture, name, &[("name", name)]);
        let script = format!(
            "touch {m}/{name}; i=0; while [ $(ls {m} | wc -l) -lt {n} ]; do i=$((i+1)); [ $i -gt 500 ] && exit 9; sleep 0.01; done; cat {t}/name",
            m = meeting.display(),
            n = names.len(),
            t = target.display()
        );
        let task = task_with(
            &fixture,
            name,
            &script,
            vec![mount(&source, &target, false)],
        );
        handles.push(tokio::spawn(async move {
            let mut running = fixture.start(task).await;
            running.wait().await
        }));
    }
    for (name, handle) in names.iter().zip(handles) {
        assert_eq!(
            handle.await.unwrap(),
            ExitOutcome::Exited(0),
            "{}",
            fixture.log(name)
        );
        assert_eq!(fixture.log(name), format!("{name}\n"));
    }
    assert_eq!(entries(&target), Vec::<String>::new());
}

#[tokio::test]
async fn a_file_volume_is_mounted_at_a_file_path() {
    let fixture = Fixture::new();
    if !volumes_work(&fixture, "a_file_volume_is_mounted_at_a_file_path").await {
        return;
    }
    let secrets = source_dir(&fixture, "secret", &[("token", "s3cr3t")]);
    let base = mount_base();
    let target = base.path().join("mnt/secret/token");
    let mut task = fixture
        .start(task_with(
            &fixture,
            "file",
            &format!("cat {}", target.display()),
            vec![mount(&secrets.join("token"), &target, true)],
        ))
        .await;
    assert_eq!(
        task.wait().await,
        ExitOutcome::Exited(0),
        "{}",
        fixture.log("file")
    );
    assert_eq!(fixture.log("file"), "s3cr3t\n");
    // The mount point is an empty file on the host.
    assert!(target.is_file());
    assert_eq!(std::fs::read(&target).unwrap(), b"");
}

#[tokio::test]
async fn a_volume_inside_another_is_mounted_after_it() {
    let fixture = Fixture::new();
    if !volumes_work(&fixture, "a_volume_inside_another_is_mounted_after_it").await {
        return;
    }
    let outer = source_dir(&fixture, "outer", &[("a", "outer\n")]);
    let inner = source_dir(&fixture, "inner", &[("b", "inner\n")]);
    let base = mount_base();
    let data = base.path().join("data");
    let nested = data.join("nested/sub");
    let script = format!("cat {d}/a {n}/b", d = data.display(), n = nested.display());
    // Listed inner first: Coracle orders them.
    let mut task = fixture
        .start(task_with(
            &fixture,
            "nested",
            &script,
            vec![mount(&inner, &nested, true), mount(&outer, &data, false)],
        ))
        .await;
    assert_eq!(
        task.wait().await,
        ExitOutcome::Exited(0),
        "{}",
        fixture.log("nested")
    );
    assert_eq!(fixture.log("nested"), "outer\ninner\n");
    // The inner mount point was made inside the outer volume, as a container engine does.
    assert!(outer.join("nested/sub").is_dir());
    assert!(
        !nested.exists(),
        "nothing made under the host's own mount path"
    );
}

#[tokio::test]
async fn a_working_directory_inside_a_volume_is_the_volumes() {
    let fixture = Fixture::new();
    if !volumes_work(
        &fixture,
        "a_working_directory_inside_a_volume_is_the_volumes",
    )
    .await
    {
        return;
    }
    let workspace = source_dir(&fixture, "workspace", &[("checkout.txt", "code\n")]);
    let base = mount_base();
    let target = base.path().join("kfp-workspace");
    let mut launch = task_with(
        &fixture,
        "cwd",
        "cat checkout.txt && pwd",
        vec![mount(&workspace, &target, false)],
    );
    launch.work_dir = target.clone();
    let mut task = fixture.start(launch).await;
    assert_eq!(
        task.wait().await,
        ExitOutcome::Exited(0),
        "{}",
        fixture.log("cwd")
    );
    assert_eq!(fixture.log("cwd"), format!("code\n{}\n", target.display()));
}

#[tokio::test]
async fn volume_failures_name_the_volume() {
    let fixture = Fixture::new();
    if !volumes_work(&fixture, "volume_failures_name_the_volume").await {
        return;
    }
    let source = source_dir(&fixture, "pvc", &[]);
    let base = mount_base();
    let a_file = base.path().join("a-file");
    std::fs::write(&a_file, "").unwrap();
    let missing = fixture.dir.path().join("no-such-source");
    let data = base.path().join("data");
    let cases: Vec<(&str, Vec<Mount>, String)> = vec![
        (
            "missing-source",
            vec![mount(&missing, &data, false)],
            format!(
                "bind-mount {} at {}: the source does not exist",
                missing.display(),
                data.display()
            ),
        ),
        (
            // The mount point exists but is a file: the kernel refuses, in the child.
            "dir-on-file",
            vec![mount(&source, &a_file, false)],
            format!(
                "bind-mount {} at {}: Not a directory",
                source.display(),
                a_file.display()
            ),
        ),
        (
            "uncreatable",
            vec![mount(&source, &a_file.join("data"), false)],
            format!(
                "bind-mount {} at {}: cannot create the mount point {}: Not a directory",
                source.display(),
                a_file.join("data").display(),
                a_file.join("data").display()
            ),
        ),
        (
            "relative",
            vec![mount(&source, Path::new("data"), false)],
            format!(
                "bind-mount {} at data: the mount path must be an absolute path other than / and without ..",
                source.display()
            ),
        ),
        (
            "twice",
            vec![
                mount(&source, &data, false),
                mount(&missing, &data.join("."), true),
            ],
            format!(
                "bind-mount {} at {}: {} is already mounted there",
                missing.display(),
                data.display(),
                source.display()
            ),
        ),
    ];
    for (key, mounts, reason) in cases {
        let error = fixture
            .executor
            .launch(task_with(&fixture, key, "true", mounts))
            .await
            .expect_err(key);
        assert_eq!(error.to_string(), format!("start task {key}: {reason}"));
        assert!(
            fixture.log(key).contains(&reason),
            "{key}: the log says why: {}",
            fixture.log(key)
        );
    }
    assert!(!data.exists(), "nothing mounted, nothing created");
}

#[tokio::test]
async fn tasks_without_volumes_stay_in_the_hosts_mount_namespace() {
    let fixture = Fixture::new();
    let mut task = fixture
        .start(fixture.task("plain", &["sleep", "100"]))
        .await;
    let pid = task.pid().unwrap().to_string();
    assert_eq!(mount_namespace(&pid), mount_namespace("self"));
    task.canceler().cancel();
    assert_eq!(task.wait().await, ExitOutcome::Killed);
}

#[tokio::test]
async fn python_component_with_a_volume_runs_in_its_own_interpreter() {
    if !python_tests_enabled("python_component_with_a_volume_runs_in_its_own_interpreter") {
        return;
    }
    let fixture = python_fixture();
    if !volumes_work(
        &fixture,
        "python_component_with_a_volume_runs_in_its_own_interpreter",
    )
    .await
    {
        return;
    }
    let source = source_dir(&fixture, "pvc", &[("value.txt", "40")]);
    let base = mount_base();
    let target = base.path().join("data");
    let component = "def read_volume(path: str, a: int) -> int:\n    with open(path + '/value.txt') as f:\n        value = int(f.read())\n    with open(path + '/written.txt', 'w') as f:\n        f.write('by the component')\n    return value + a\n";
    let (mut task, outputs) = python_task(
        &fixture,
        "volume",
        &component_argv(component, "read_volume"),
        json!({"path": target.display().to_string(), "a": 2}),
    );
    task.mounts = vec![mount(&source, &target, false)];
    let mut running = fixture.start(task).await;
    assert_eq!(
        running.wait().await,
        ExitOutcome::Exited(0),
        "{}",
        fixture.log("volume")
    );
    assert_eq!(output_of(&outputs)["parameterValues"]["Output"], 42);
    assert_eq!(
        std::fs::read_to_string(source.join("written.txt")).unwrap(),
        "by the component"
    );
    assert!(
        fixture.executor.python_worker_pids().is_empty(),
        "a task with volumes never runs in the shared worker"
    );
    assert_eq!(entries(&target), Vec::<String>::new());
}

/// Not a test of behaviour: prints what a task with one volume costs next to a plain one.
/// Run with `cargo test -p coracle-exec --release --test it -- --ignored --nocapture timing`.
#[tokio::test]
#[ignore]
async fn timing_volume_true() {
    const N: u32 = 300;
    let fixture = Fixture::new();
    if !volumes_work(&fixture, "timing_volume_true").await {
        return;
    }
    let source = source_dir(&fixture, "pvc", &[]);
    let base = mount_base();
    let with_volume = || {
        let mut task = fixture.task("volume", &["true"]);
        task.mounts = vec![mount(&source, &base.path().join("data"), true)];
        task
    };
    for _ in 0..20 {
        fixture
            .start(fixture.task("warmup", &["true"]))
            .await
            .wait()
            .await;
        fixture.start(with_volume()).await.wait().await;
    }
    let started = std::time::Instant::now();
    for _ in 0..N {
        let mut task = fixture.start(fixture.task("plain", &["true"])).await;
        assert_eq!(task.wait().await, ExitOutcome::Exited(0));
    }
    let plain = started.elapsed() / N;
    let started = std::time::Instant::now();
    for _ in 0..N {
        let mut task = fixture.start(with_volume()).await;
        assert_eq!(task.wait().await, ExitOutcome::Exited(0));
    }
    let volume = started.elapsed() / N;
    eprintln!(
        "`true` per task: {plain:?} plain (posix_spawn), {volume:?} with one read-only volume (fork, unshare, mounts)"
    );
}
