//! No process outlives Coracle, even when Coracle is killed with SIGKILL: this test runs a
//! helper copy of the test binary as "Coracle", kills it, and checks its tasks' processes
//! (direct children and their background children) are gone.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Fixture, group_members};

const HELPER_ENV: &str = "CORACLE_EXEC_ORPHAN_HELPER";

fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

#[test]
fn tasks_die_when_coracle_is_killed() {
    let exe = std::env::current_exe().expect("test binary");
    let mut helper = Command::new(exe)
        .args([
            "--exact",
            "orphans::orphan_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start helper");
    let stdout = helper.stdout.take().unwrap();
    let mut pgids = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("helper output");
        if let Some((_, rest)) = line.split_once("PGIDS ") {
            pgids = rest.split(' ').map(|p| p.parse::<u32>().unwrap()).collect();
            break;
        }
    }
    assert_eq!(pgids.len(), 2, "the helper should report two task groups");
    for &pgid in &pgids {
        assert!(
            wait_until(Duration::from_secs(5), || group_members(pgid).len() >= 3),
            "task group {pgid} should have sh and two sleeps: {:?}",
            group_members(pgid)
        );
    }
    helper.kill().expect("SIGKILL the helper");
    helper.wait().expect("reap helper");
    for &pgid in &pgids {
        assert!(
            wait_until(Duration::from_secs(5), || group_members(pgid).is_empty()),
            "processes of task group {pgid} outlived coracle: {:?}",
            group_members(pgid)
        );
    }
}

/// Plays Coracle for [`tasks_die_when_coracle_is_killed`]; does nothing when run by itself.
#[tokio::test]
#[ignore]
async fn orphan_helper() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let fixture = Fixture::new();
    let first = fixture
        .start(fixture.task("orphan-1", &["sh", "-c", "sleep 100 & sleep 100"]))
        .await;
    let second = fixture
        .start(fixture.task("orphan-2", &["sh", "-c", "sleep 100 & sleep 100 & wait"]))
        .await;
    println!("PGIDS {} {}", first.pid().unwrap(), second.pid().unwrap());
    tokio::time::sleep(Duration::from_secs(100)).await;
    drop((first, second));
}
