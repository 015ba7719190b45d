//! The team's control-flow pipelines (tests/pipelines, README there): conditions, OneOf,
//! loops, nested pipelines, exit handlers, retries, caching and importers, with the outputs
//! and task states listed for each.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::*;

/// Task path → state of its latest attempt.
fn states(run: &Value) -> BTreeMap<String, String> {
    let mut latest: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for t in run["tasks"].as_array().unwrap() {
        let path = t["task_id"].as_str().unwrap().to_string();
        let attempt = t["attempt"].as_i64().unwrap();
        let state = t["state"].as_str().unwrap().to_string();
        if latest.get(&path).is_none_or(|(a, _)| *a <= attempt) {
            latest.insert(path, (attempt, state));
        }
    }
    latest.into_iter().map(|(k, (_, s))| (k, s)).collect()
}

/// Every attempt of the task at `path`, oldest first.
fn attempts<'a>(run: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut all: Vec<&Value> = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["task_id"] == path)
        .collect();
    all.sort_by_key(|t| t["attempt"].as_i64());
    all
}

/// An output parameter of the latest attempt of the task at `path`.
fn output<'a>(run: &'a Value, path: &str, name: &str) -> &'a Value {
    let last = attempts(run, path)
        .pop()
        .unwrap_or_else(|| panic!("no task {path}"));
    &last["outputs"]["parameters"][name]
}

/// `args` with `--no-cache`: tests of control flow want every task to really run.
fn no_cache<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.push("--no-cache");
    all
}

/// Runs a pipeline that must succeed and returns (result, `runs get`).
fn succeed(home: &Home, file: &str, args: &[&str]) -> (Value, Value) {
    let (code, result, stderr) = home.run(file, args);
    assert_eq!(code, 0, "{file} {args:?}: {stderr}");
    assert_eq!(result["state"], "SUCCEEDED", "{result}");
    let run = home.get(result["run_id"].as_str().unwrap());
    (result, run)
}

/// The single artifact of a pipeline output: its file's text and its metadata.
fn artifact(result: &Value, name: &str) -> (String, String, Value) {
    let list = result["outputs"]["artifacts"][name].as_array().unwrap();
    assert_eq!(list.len(), 1, "{result}");
    let uri = list[0]["uri"].as_str().unwrap().to_string();
    let text = std::fs::read_to_string(&uri).unwrap();
    (uri, text, list[0]["metadata"].clone())
}

#[test]
fn conditions_take_one_branch_and_record_the_others_as_skipped() {
    if !python_enabled("conditions") {
        return;
    }
    const S: &str = "SUCCEEDED";
    const K: &str = "SKIPPED";
    let invocations: [&[&str]; 4] = [
        &[],
        &["-p", "n=4", "-p", "m=4", "-p", "word=tails"],
        &["-p", "n=2", "-p", "m=7", "-p", "word=coin"],
        &["-p", "n=-1", "-p", "m=-3", "-p", "word=edge"],
    ];
    // Task path, state per invocation, and its Output per invocation where it succeeded.
    let table: &[(&str, [&str; 4], [Value; 4])] = &[
        (
            "pick-word",
            [S, S, S, S],
            [json!("heads"), json!("tails"), json!("coin"), json!("edge")],
        ),
        (
            "number",
            [S, S, S, S],
            [json!(5), json!(4), json!(2), json!(-1)],
        ),
        (
            "number-2",
            [S, S, S, S],
            [json!(2), json!(4), json!(7), json!(-3)],
        ),
        ("condition-branches-1", [S, S, S, S], Default::default()),
        (
            "condition-branches-1/condition-3",
            [S, S, K, K],
            Default::default(),
        ),
        (
            "condition-branches-1/condition-3/say",
            [S, S, K, K],
            [json!("n>3"), json!("n>3"), json!(null), json!(null)],
        ),
        (
            "condition-branches-1/condition-3/condition-2",
            [S, K, K, K],
            Default::default(),
        ),
        (
            "condition-branches-1/condition-3/condition-2/say-2",
            [S, K, K, K],
            [
                json!("n>3 and heads"),
                json!(null),
                json!(null),
                json!(null),
            ],
        ),
        (
            "condition-branches-1/condition-4",
            [K, K, S, K],
            Default::default(),
        ),
        (
            "condition-branches-1/condition-4/say-3",
            [K, K, S, K],
            [json!(null), json!(null), json!("0<n<=3"), json!(null)],
        ),
        (
            "condition-branches-1/condition-5",
            [K, K, K, S],
            Default::default(),
        ),
        (
            "condition-branches-1/condition-5/say-4",
            [K, K, K, S],
            [json!(null), json!(null), json!(null), json!("n<=0")],
        ),
        ("condition-branches-6", [S, S, S, S], Default::default()),
        (
            "condition-branches-6/condition-7",
            [S, K, K, K],
            Default::default(),
        ),
        (
            "condition-branches-6/condition-7/say-5",
            [S, K, K, K],
            [json!("heads"), json!(null), json!(null), json!(null)],
        ),
        (
            "condition-branches-6/condition-8",
            [K, S, K, K],
            Default::default(),
        ),
        (
            "condition-branches-6/condition-8/say-6",
            [K, S, K, K],
            [json!(null), json!("tails"), json!(null), json!(null)],
        ),
        (
            "condition-branches-6/condition-9",
            [K, K, S, S],
            Default::default(),
        ),
        (
            "condition-branches-6/condition-9/say-7",
            [K, K, S, S],
            [json!(null), json!(null), json!("neither"), json!("neither")],
        ),
        ("condition-branches-10", [S, S, S, S], Default::default()),
        (
            "condition-branches-10/condition-11",
            [S, K, K, S],
            Default::default(),
        ),
        (
            "condition-branches-10/condition-11/say-8",
            [S, K, K, S],
            [json!("n>m"), json!(null), json!(null), json!("n>m")],
        ),
        (
            "condition-branches-10/condition-12",
            [K, S, S, K],
            Default::default(),
        ),
        (
            "condition-branches-10/condition-12/say-9",
            [K, S, S, K],
            [json!(null), json!("n<=m"), json!("n<=m"), json!(null)],
        ),
        ("condition-13", [K, S, K, K], Default::default()),
        (
            "condition-13/say-10",
            [K, S, K, K],
            [
                json!(null),
                json!("condition: tails"),
                json!(null),
                json!(null),
            ],
        ),
        (
            "finish",
            [S, S, S, S],
            [
                json!("finished"),
                json!("finished"),
                json!("finished"),
                json!("finished"),
            ],
        ),
    ];
    let home = Home::new();
    for (i, args) in invocations.iter().enumerate() {
        let (result, run) = succeed(&home, "conditions.yaml", &no_cache(args));
        assert_eq!(result["outputs"]["parameters"]["Output"], "finished");
        let got = states(&run);
        assert_eq!(got.len(), table.len(), "{args:?}: {got:?}");
        for (path, expected, outputs) in table {
            assert_eq!(got[*path], expected[i], "{path} with {args:?}");
            if expected[i] == S && !outputs[i].is_null() {
                assert_eq!(
                    output(&run, path, "Output"),
                    &outputs[i],
                    "{path} with {args:?}"
                );
            }
        }
    }
    let (code, _, stderr) = home.run("conditions.yaml", &["-p", "n=abc"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn oneof_picks_the_branch_that_ran_for_parameters_and_artifacts() {
    if !python_enabled("oneof") {
        return;
    }
    let home = Home::new();
    let cases: [(&[&str], &str, &str, &str); 3] = [
        (&[], "big", "big|format=csv|csv", "csv"),
        (
            &["-p", "n=3", "-p", "use_csv=false"],
            "medium",
            "medium|format=tsv|tsv",
            "tsv",
        ),
        (&["-p", "n=0"], "small", "small|format=csv|csv", "csv"),
    ];
    for (args, size, shown, format) in cases {
        let (result, run) = succeed(&home, "oneof.yaml", &no_cache(args));
        assert_eq!(result["outputs"]["parameters"]["size"], size, "{args:?}");
        assert_eq!(result["outputs"]["parameters"]["shown"], shown, "{args:?}");
        let (uri, text, metadata) = artifact(&result, "data");
        assert_eq!(text, format!("format={format}\n"));
        assert_eq!(metadata, json!({"format": format}));
        // The very artifact the branch's task wrote.
        let producer = if format == "csv" {
            "condition-branches-5/condition-6/make-data"
        } else {
            "condition-branches-5/condition-7/make-data-2"
        };
        assert_eq!(
            task(&run, producer)["outputs"]["artifacts"]["data"][0]["uri"],
            json!(uri)
        );
        let st = states(&run);
        let taken = |p: &str| st[p] == "SUCCEEDED";
        assert_eq!(
            taken("condition-branches-1/condition-2/label"),
            size == "big"
        );
        assert_eq!(
            taken("condition-branches-1/condition-3/label-2"),
            size == "medium"
        );
        assert_eq!(
            taken("condition-branches-1/condition-4/label-3"),
            size == "small"
        );
        assert_eq!(
            taken("condition-branches-5/condition-7/make-data-2"),
            format == "tsv"
        );
        assert_eq!(st["show"], "SUCCEEDED");
        assert_eq!(st.values().filter(|s| *s == "SKIPPED").count(), 6, "{st:?}");
    }
    let (code, _, _) = home.run("oneof.yaml", &["-p", "use_csv=maybe"]);
    assert_eq!(code, 2);
}

#[test]
fn loops_run_every_item_and_collect_in_iteration_order() {
    if !python_enabled("loops") {
        return;
    }
    let home = Home::new();
    let (result, run) = succeed(&home, "loops.yaml", &["--no-cache"]);
    assert_eq!(
        result["outputs"]["parameters"],
        json!({
            "squares": [1, 4, 9],
            "sum_squares": "[1, 4, 9]=14",
            "joined": "hi x,hi y,hi z",
            "concatenated": "item-0,item-10,item-20|0,10,20",
            "after": "after",
        })
    );
    let st = states(&run);
    assert!(st.values().all(|s| s == "SUCCEEDED"), "{st:?}");
    for (i, v) in [1, 4, 9].iter().enumerate() {
        assert_eq!(
            output(&run, &format!("for-loop-2/{i}/square"), "Output"),
            &json!(v)
        );
    }
    for (i, v) in ["hi x", "hi y", "hi z"].iter().enumerate() {
        assert_eq!(
            output(&run, &format!("for-loop-3/{i}/greet"), "Output"),
            &json!(v)
        );
    }
    for (i, v) in [0, 10, 20].iter().enumerate() {
        let item =
            &task(&run, &format!("for-loop-4/{i}/write-item"))["outputs"]["artifacts"]["item"][0];
        assert_eq!(item["metadata"]["value"], json!(v));
        assert_eq!(
            std::fs::read_to_string(item["uri"].as_str().unwrap()).unwrap(),
            format!("item-{v}\n")
        );
    }
    assert_eq!(output(&run, "for-loop-6/0/use-fields", "Output"), "1+2=3");
    assert_eq!(output(&run, "for-loop-6/1/use-fields", "Output"), "3+4=7");
    for (outer, o) in [(0, "1"), (1, "2")] {
        for (inner, i) in [(0, "u"), (1, "v")] {
            let path = format!("for-loop-8/{outer}/for-loop-10/{inner}/pair");
            assert_eq!(output(&run, &path, "Output"), &json!(format!("{o}{i}")));
        }
    }
    // parallelismLimit 2: no instant lies inside all three greet intervals.
    let greets: Vec<&Value> = (0..3)
        .map(|i| task(&run, &format!("for-loop-3/{i}/greet")))
        .collect();
    assert!(
        !(overlap(greets[0], greets[1])
            && overlap(greets[1], greets[2])
            && overlap(greets[0], greets[2]))
    );
    let after_start = interval(task(&run, "after-loops")).0;
    assert!(greets.iter().all(|g| interval(g).1 <= after_start));
    // Each loop counts itself, its iterations and their tasks: for-loop-2, -3 and -4 have 7,
    // for-loop-6 has 5, for-loop-8 has 1 + 2 × (1 + 5); five tasks lie outside the loops.
    assert_eq!(st.len(), 3 * 7 + 5 + 13 + 5, "{st:?}");

    let (result, run) = succeed(&home, "loops.yaml", &["-p", r#"names=["a"]"#, "-p", "n=1"]);
    assert_eq!(result["outputs"]["parameters"]["joined"], "hi a");
    assert_eq!(result["outputs"]["parameters"]["concatenated"], "item-0|0");
    assert_eq!(result["outputs"]["parameters"]["squares"], json!([1, 4, 9]));
    let st = states(&run);
    assert!(st.contains_key("for-loop-3/0/greet") && !st.contains_key("for-loop-3/1/greet"));
    assert!(
        st.contains_key("for-loop-4/0/write-item") && !st.contains_key("for-loop-4/1/write-item")
    );
    for bad in ["names=notjson", r#"names={"a": 1}"#] {
        assert_eq!(home.run("loops.yaml", &["-p", bad]).0, 2, "{bad}");
    }
}

#[test]
fn loops_iterate_over_artifacts_and_order_tasks_inside_an_iteration() {
    if !python_enabled("artifact loop") {
        return;
    }
    let home = Home::new();
    let (result, run) = succeed(&home, "artifact_loop.yaml", &["--no-cache"]);
    assert_eq!(
        result["outputs"]["parameters"]["Output"],
        "data-0/0,data-1/1,data-2/2|stamped-0,stamped-1,stamped-2"
    );
    for i in 0..3 {
        let make = task(&run, &format!("for-loop-2/{i}/make"));
        let stamp = task(&run, &format!("for-loop-2/{i}/stamp"));
        assert!(interval(make).1 <= interval(stamp).0, "iteration {i}");
        assert_eq!(
            output(&run, &format!("inner/for-loop-1/{i}/read"), "Output"),
            &json!(format!("data-{i}/{i}"))
        );
    }
    assert!(states(&run).values().all(|s| s == "SUCCEEDED"));
}

#[test]
fn nested_pipelines_pass_inputs_defaults_and_outputs_at_every_level() {
    if !python_enabled("nested") {
        return;
    }
    let home = Home::new();
    let custom = "inner=110;note=none / custom=115;note=given";
    for (args, total, text, outer) in [
        (
            &[][..],
            16,
            "inner=11;note=none / middle=16;note=given",
            "outer=16;note=none",
        ),
        (
            &["-p", "x=5"][..],
            20,
            "inner=15;note=none / middle=20;note=given",
            "outer=20;note=none",
        ),
    ] {
        let (result, run) = succeed(&home, "nested.yaml", &no_cache(args));
        assert_eq!(
            result["outputs"]["parameters"],
            json!({"total": total, "text": text, "custom_text": custom, "outer": outer}),
            "{args:?}"
        );
        let st = states(&run);
        assert_eq!(st.len(), 17, "{st:?}");
        assert!(st.values().all(|s| s == "SUCCEEDED"), "{st:?}");
        assert_eq!(output(&run, "middle-2/inner/add", "Output"), 110);
        assert_eq!(
            output(&run, "middle-2/inner-2/describe", "Output"),
            "custom=115;note=given"
        );
        assert_eq!(output(&run, "middle", "total"), total);
        assert_eq!(output(&run, "middle-2", "text"), custom);
    }
}

#[test]
fn exit_handlers_see_how_their_group_ended() {
    if !python_enabled("exit handlers") {
        return;
    }
    let home = Home::new();
    let (result, run) = succeed(&home, "exit_handler.yaml", &[]);
    assert_eq!(
        result["outputs"]["parameters"],
        json!({"state": "COMPLETE", "task_name": "exit-handler-1"})
    );
    assert_eq!(output(&run, "report-status", "error"), "None:None");
    assert!(interval(task(&run, "exit-handler-1")).1 <= interval(task(&run, "report-status")).0);
    let logs = home.coracle(&["logs", result["run_id"].as_str().unwrap(), "report-status"]);
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(
        logs.contains("state=COMPLETE") && logs.contains("task=exit-handler-1"),
        "{logs}"
    );
    assert!(
        logs.contains(&format!("job={}", result["run_name"].as_str().unwrap())),
        "{logs}"
    );

    let (code, result, stderr) = home.run("exit_handler_fail.yaml", &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(result["state"], "FAILED");
    assert!(
        result["error"].as_str().unwrap().contains("fail-step"),
        "{result}"
    );
    assert_eq!(result["outputs"]["parameters"], json!({}));
    let run_id = result["run_id"].as_str().unwrap();
    let run = home.get(run_id);
    let st = states(&run);
    assert_eq!(st["exit-handler-1"], "FAILED");
    assert_eq!(st["exit-handler-1/fail-step"], "FAILED");
    assert_eq!(st["exit-handler-1/cleanup"], "SUCCEEDED");
    assert_eq!(st["report-status"], "SUCCEEDED");
    assert_eq!(output(&run, "exit-handler-1/cleanup", "Output"), "cleaned");
    assert_eq!(output(&run, "report-status", "state"), "FAILED");
    assert_eq!(output(&run, "report-status", "task_name"), "exit-handler-1");
    let log = |task: &str| {
        String::from_utf8_lossy(&home.coracle(&["logs", run_id, task]).stdout).into_owned()
    };
    let fail_log = log("exit-handler-1/fail-step");
    assert!(
        fail_log.contains("fail-step-marker") && fail_log.contains("RuntimeError: body failure"),
        "{fail_log}"
    );
    assert!(log("exit-handler-1/cleanup").contains("cleanup-marker"));
}

#[test]
fn retries_keep_every_attempt_and_wait_their_back_off() {
    if !python_enabled("retry") {
        return;
    }
    let home = Home::new();
    let state = tempfile::tempdir().unwrap();
    let state_arg = format!("state_dir={}", state.path().display());
    let (code, result, stderr) = home.run("retry.yaml", &["-p", &state_arg]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        result["error"].as_str().unwrap().contains("flaky-3"),
        "{result}"
    );
    let run_id = result["run_id"].as_str().unwrap();
    let run = home.get(run_id);
    for (path, last) in [
        ("flaky", "SUCCEEDED"),
        ("flaky-2", "SUCCEEDED"),
        ("flaky-3", "FAILED"),
    ] {
        let all = attempts(&run, path);
        let got: Vec<(i64, &str)> = all
            .iter()
            .map(|t| (t["attempt"].as_i64().unwrap(), t["state"].as_str().unwrap()))
            .collect();
        assert_eq!(got, vec![(0, "FAILED"), (1, "FAILED"), (2, last)], "{path}");
    }
    assert_eq!(output(&run, "flaky", "Output"), 3);
    assert_eq!(output(&run, "flaky-2", "Output"), 3);
    for name in ["flaky", "backoff", "always"] {
        let lines = std::fs::read_to_string(state.path().join(format!("{name}.attempts"))).unwrap();
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines.len(), 3, "{name}: {lines:?}");
        for (k, line) in lines.iter().enumerate() {
            assert!(
                line.starts_with(&format!("attempt {} ", k + 1)),
                "{name}: {line}"
            );
        }
    }
    // Back-off 1 s, factor 2: the second retry waits at least 2 s.
    let backoff = attempts(&run, "flaky-2");
    let gap = |a: &Value, b: &Value| (interval(b).0 - interval(a).1).num_milliseconds();
    assert!(
        gap(backoff[0], backoff[1]) >= 1000,
        "{}",
        gap(backoff[0], backoff[1])
    );
    assert!(
        gap(backoff[1], backoff[2]) >= 2000,
        "{}",
        gap(backoff[1], backoff[2])
    );
    // flaky-3 started only after the others succeeded.
    let first_of_3 = interval(attempts(&run, "flaky-3")[0]).0;
    assert!(interval(attempts(&run, "flaky")[2]).1 <= first_of_3);
    assert!(interval(backoff[2]).1 <= first_of_3);
    // Each attempt has its own log.
    let logs =
        String::from_utf8_lossy(&home.coracle(&["logs", run_id, "flaky-3"]).stdout).into_owned();
    for k in 1..=3 {
        assert!(logs.contains(&format!("always: attempt {k}")), "{logs}");
    }
    assert_eq!(home.run("retry.yaml", &[]).0, 2);
}

#[test]
fn caching_reuses_results_keyed_on_inputs_and_artifact_content() {
    if !python_enabled("caching") {
        return;
    }
    let home = Home::new();
    let state = tempfile::tempdir().unwrap();
    let state_arg = format!("state_dir={}", state.path().display());
    const S: &str = "SUCCEEDED";
    const C: &str = "CACHED";
    let tasks = [
        "record",
        "record-2",
        "record-sh",
        "make-data",
        "read-data",
        "make-data-2",
        "read-data-2",
    ];
    let logs = [
        "record",
        "record-nocache",
        "container",
        "make-data",
        "read-data",
        "make-data-nocache",
        "read-data-fixed",
    ];
    // Extra parameter, task states, `text` output, and log lines after the run.
    type Case = (
        Option<&'static str>,
        [&'static str; 7],
        &'static str,
        [usize; 7],
    );
    let runs: [Case; 4] = [
        (None, [S, S, S, S, S, S, S], "alpha", [1, 1, 1, 1, 1, 1, 1]),
        (None, [C, S, C, C, C, S, C], "alpha", [1, 2, 1, 1, 1, 2, 1]),
        (
            Some("content=beta"),
            [C, S, C, S, S, S, C],
            "beta",
            [1, 3, 1, 2, 2, 3, 1],
        ),
        (
            Some("content=alpha"),
            [C, S, C, C, C, S, C],
            "alpha",
            [1, 4, 1, 2, 2, 4, 1],
        ),
    ];
    for (i, (content, expected, text, lines)) in runs.iter().enumerate() {
        let mut args = vec!["-p", state_arg.as_str()];
        if let Some(c) = content {
            args.extend(["-p", c]);
        }
        let (result, run) = succeed(&home, "caching.yaml", &args);
        assert_eq!(
            result["outputs"]["parameters"],
            json!({"recorded": "recorded", "text": text, "fixed_text": "fixed", "container": "container-done"}),
            "run {}",
            i + 1
        );
        let st = states(&run);
        for (task, state) in tasks.iter().zip(expected) {
            assert_eq!(st[*task], *state, "run {}: {task}", i + 1);
        }
        for (log, count) in logs.iter().zip(lines) {
            let text = std::fs::read_to_string(state.path().join(format!("{log}.log"))).unwrap();
            assert_eq!(text.lines().count(), *count, "run {}: {log}.log", i + 1);
        }
    }
    // With --no-cache everything runs, and the results still refresh the cache.
    let (_, run) = succeed(&home, "caching.yaml", &["-p", &state_arg, "--no-cache"]);
    assert!(states(&run).values().all(|s| s == S));
    // A hit whose artifact files are gone is a miss.
    let (_, run) = succeed(&home, "caching.yaml", &["-p", &state_arg]);
    let uri = task(&run, "make-data")["outputs"]["artifacts"]["data"][0]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(&uri).unwrap();
    let (result, run) = succeed(&home, "caching.yaml", &["-p", &state_arg]);
    assert_eq!(states(&run)["make-data"], S);
    assert_eq!(result["outputs"]["parameters"]["text"], "alpha");
    // Entries older than the maximum staleness are not used.
    let (_, run) = succeed(
        &home,
        "caching.yaml",
        &["-p", &state_arg, "--cache-max-staleness", "0s"],
    );
    assert_eq!(states(&run)["record"], S);
}

#[test]
fn importers_pass_the_given_uri_with_its_metadata() {
    if !python_enabled("importer") {
        return;
    }
    let home = Home::new();
    let data = home.dir.path().join("data.txt");
    std::fs::write(&data, "line-1\nline-2\n").unwrap();
    let data_arg = format!("data_path={}", data.display());
    for (extra, owner) in [(None, "tests"), (Some("owner=alice"), "alice")] {
        let mut args = vec!["-p", data_arg.as_str()];
        if let Some(e) = extra {
            args.extend(["-p", e]);
        }
        let (result, run) = succeed(&home, "importer.yaml", &args);
        assert_eq!(
            result["outputs"]["parameters"],
            json!({"imported": format!("2|line-1|parameter|{owner}"), "constant": "0|constant"})
        );
        let (uri, text, metadata) = artifact(&result, "dataset");
        assert_eq!(uri, data.display().to_string());
        assert_eq!(text, "line-1\nline-2\n");
        assert_eq!(metadata, json!({"source": "parameter", "owner": owner}));
        // The second run changes only the imported artifact's metadata: its reader runs again
        // (the metadata is part of the cache key), the other reader comes from the cache.
        let second = extra.is_some();
        let expected = json!({
            "importer": "SUCCEEDED",
            "importer-2": "SUCCEEDED",
            "read-imported": "SUCCEEDED",
            "read-constant": if second { "CACHED" } else { "SUCCEEDED" },
        });
        assert_eq!(json!(states(&run)), expected);
    }
    assert_eq!(home.run("importer.yaml", &[]).0, 2);
}

#[test]
fn a_fully_cached_rerun_starts_no_process() {
    let home = Home::new();
    let (_, run) = succeed(&home, "fanout_100.yaml", &[]);
    let st = states(&run);
    assert_eq!(st.len(), 100);
    assert!(st.values().all(|s| s == "SUCCEEDED"));
    let (result, run) = succeed(&home, "fanout_100.yaml", &[]);
    let st = states(&run);
    assert_eq!(st.len(), 100);
    assert!(st.values().all(|s| s == "CACHED"), "{st:?}");
    // No task of the second run has a directory of its own: nothing was started.
    let tasks_dir = home
        .dir
        .path()
        .join("runs")
        .join(result["run_id"].as_str().unwrap())
        .join("tasks");
    let started = std::fs::read_dir(&tasks_dir)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(started, 0, "{}", tasks_dir.display());
}
