//! Pipelines with lightweight Python components, asserted against tests/pipelines/README.md.

use serde_json::json;

use crate::*;

#[test]
fn python_add_chain() {
    if !python_enabled("python_add_chain") {
        return;
    }
    let home = Home::new();
    for (a, b, expected) in [("2", "3", 10), ("-7", "3", -8)] {
        let (code, result, stderr) = home.run(
            "add_chain.yaml",
            &["-p", &format!("a={a}"), "-p", &format!("b={b}")],
        );
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(result["outputs"]["parameters"]["Output"], json!(expected));
    }
}

#[test]
fn python_parameter_types() {
    if !python_enabled("python_parameter_types") {
        return;
    }
    let home = Home::new();
    let args = [
        "-p",
        "i=3",
        "-p",
        "f=1.5",
        "-p",
        "s=abc",
        "-p",
        "b=true",
        "-p",
        r#"l=["x","y"]"#,
        "-p",
        r#"d={"k":"v"}"#,
    ];
    let (code, result, stderr) = home.run("parameter_types.yaml", &args);
    assert_eq!(code, 0, "{stderr}");
    let p = &result["outputs"]["parameters"];
    assert_eq!(p["out_int"], json!(10));
    assert_eq!(p["out_float"], json!(5.5));
    assert_eq!(p["out_str"], json!("abc|hello|none"));
    assert_eq!(p["out_bool"], json!(true));
    assert_eq!(p["out_list"], json!(["x", "y", 1, 2, 3]));
    assert_eq!(p["out_dict"], json!({"k": "v", "one": 1, "opt": "none"}));
    let combined =
        r#"10;5.5;abc|hello|none;True;["x", "y", 1, 2, 3];{"k": "v", "one": 1, "opt": "none"}"#;
    assert_eq!(p["combined"], json!(combined));
    let run = home.get(result["run_id"].as_str().unwrap());
    let second = &task(&run, "all-types-2")["outputs"]["parameters"];
    assert_eq!(second["out_int"], json!(96));
    assert_eq!(second["out_str"], json!("const|bye|given"));
    assert_eq!(
        second["out_dict"],
        json!({"nested": {"x": [1, 2]}, "two": 2, "opt": "given"})
    );
    let logs = home.coracle(&["logs", result["run_id"].as_str().unwrap(), "combine"]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains(&format!("combined={combined}")));
    for bad in ["i=1.5", "b=maybe", "l=notjson", "d=[1]"] {
        let mut args = args.to_vec();
        args.extend(["-p", bad]);
        let (code, _, stderr) = home.run("parameter_types.yaml", &args);
        assert_eq!(code, 2, "{bad}: {stderr}");
    }
}

#[test]
fn python_artifacts_pass_by_path_with_metadata() {
    if !python_enabled("python_artifacts_pass_by_path_with_metadata") {
        return;
    }
    let home = Home::new();
    let (code, result, stderr) = home.run("artifacts.yaml", &[]);
    assert_eq!(code, 0, "{stderr}");
    let outputs = &result["outputs"];
    assert_eq!(outputs["parameters"]["line_count"], json!(4));
    assert_eq!(
        outputs["parameters"]["summary"],
        json!("rows=3;lines=4;framework=plain-text;version=3")
    );
    let dataset = &outputs["artifacts"]["dataset"][0];
    assert_eq!(dataset["type"], "system.Dataset");
    assert_eq!(dataset["metadata"], json!({"rows": 3, "format": "csv"}));
    let uri = dataset["uri"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(uri).unwrap(),
        "x,y\n0,0\n1,1\n2,4\n"
    );
    assert_eq!(
        outputs["artifacts"]["metrics"][0]["metadata"],
        json!({"accuracy": 0.9, "loss": 0.25, "rows": 3})
    );
    // The pipeline output is the producer's own artifact: same URI, no copy.
    let run = home.get(result["run_id"].as_str().unwrap());
    assert_eq!(
        task(&run, "produce")["outputs"]["artifacts"]["dataset"][0]["uri"],
        json!(uri)
    );
    let (code, result, _) = home.run("artifacts.yaml", &["-p", "rows=5"]);
    assert_eq!(code, 0);
    assert_eq!(result["outputs"]["parameters"]["line_count"], json!(6));
}

#[test]
fn python_container_placeholders() {
    if !python_enabled("python_container_placeholders") {
        return;
    }
    let home = Home::new();
    let (code, result, stderr) = home.run("container_placeholders.yaml", &[]);
    assert_eq!(code, 0, "{stderr}");
    let p = &result["outputs"]["parameters"];
    assert_eq!(
        p["greet_message"],
        json!("hello-world|--suffix|sfx|tail=sfx")
    );
    assert_eq!(
        p["greet2_message"],
        json!("hello-kfp|--no-suffix|tail=none")
    );
    assert_eq!(p["line_count"], json!(4));
    let job_name = p["job_name"].as_str().unwrap();
    assert!(
        !job_name.is_empty() && !job_name.contains("{{"),
        "{job_name}"
    );
    assert_eq!(
        p["combined"],
        json!(
            "hello-world|--suffix|sfx|tail=sfx#hello-world,--suffix,sfx,tail=sfx#4#sys-info#hi-env#reader"
        )
    );
    let run = home.get(result["run_id"].as_str().unwrap());
    let transcript = task(&run, "greet-2")["outputs"]["artifacts"]["transcript"][0]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        std::fs::read_to_string(transcript).unwrap(),
        "hello-kfp\n--no-suffix\ntail=none\n"
    );
    assert!(interval(task(&run, "sys-info")).1 <= interval(task(&run, "greet-2")).0);
    let (code, result, _) = home.run("container_placeholders.yaml", &["-p", "suffix="]);
    assert_eq!(code, 0);
    assert_eq!(
        result["outputs"]["parameters"]["greet_message"],
        json!("hello-world|--suffix||tail=")
    );
}

#[test]
fn python_fstrings() {
    if !python_enabled("python_fstrings") {
        return;
    }
    let home = Home::new();
    let (code, result, stderr) = home.run("fstring.yaml", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(result["outputs"]["parameters"]["message"], json!("run-ABC"));
    assert_eq!(result["outputs"]["parameters"]["numbered"], json!("run:7"));
    let (_, result, _) = home.run("fstring.yaml", &["-p", "p=x", "-p", "seed=q", "-p", "n=42"]);
    assert_eq!(result["outputs"]["parameters"]["message"], json!("x-Q"));
    assert_eq!(result["outputs"]["parameters"]["numbered"], json!("x:42"));
}

#[test]
fn python_a_failing_task_fails_the_run_and_stops_its_siblings() {
    if !python_enabled("python_a_failing_task_fails_the_run_and_stops_its_siblings") {
        return;
    }
    let home = Home::new();
    let (code, result, stderr) = home.run("failing.yaml", &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(result["state"], "FAILED");
    assert!(
        result["error"].as_str().unwrap().contains("explode"),
        "{result}"
    );
    // The exact argv `sleep 30` (arguments end with a space in `processes_matching`), not the
    // `sleep 300` of some other test suite running on the machine.
    assert_eq!(processes_matching("sleep 30 "), Vec::<String>::new());
    let run_id = result["run_id"].as_str().unwrap();
    let run = home.get(run_id);
    assert_eq!(task(&run, "explode")["state"], "FAILED");
    assert_eq!(task(&run, "explode")["exit_code"], json!(1));
    assert_eq!(task(&run, "sleeper")["state"], "CANCELED");
    let never = task(&run, "never-runs")["state"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(never == "SKIPPED" || never == "CANCELED", "{never}");
    let logs = String::from_utf8_lossy(&home.coracle(&["logs", run_id]).stdout).into_owned();
    assert!(
        logs.contains("boom-marker") && logs.contains("RuntimeError: intentional failure: kaboom"),
        "{logs}"
    );
    assert!(!logs.contains("never-runs-marker"));
    // The text view shows the failed task's log tail.
    let out = home.coracle(&[
        "run",
        pipeline("failing.yaml").to_str().unwrap(),
        "--no-logs",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("log lines of explode") && text.contains("kaboom"),
        "{text}"
    );
}

#[test]
fn python_resource_requests_keep_big_tasks_apart() {
    if !python_enabled("python_resource_requests_keep_big_tasks_apart") {
        return;
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let home = Home::new();
    let (code, result, stderr) = home.run("resources.yaml", &["--parallelism", "4"]);
    if cores < 2 {
        // A request of 2 CPUs can never be met: the run fails with a clear message.
        assert_eq!(code, 1, "{stderr}");
        assert!(
            result["error"].as_str().unwrap().contains("requests 2 CPU"),
            "{result}"
        );
        return;
    }
    assert_eq!(code, 0, "{stderr}");
    let p = &result["outputs"]["parameters"];
    assert_eq!(p["heavy"], json!("heavy-done"));
    assert_eq!(p["heavy2"], json!("heavy-done"));
    assert_eq!(p["limited"], json!("limited-done"));
    assert_eq!(p["sized"], json!("sized-done"));
    if cores < 4 {
        let run = home.get(result["run_id"].as_str().unwrap());
        assert!(
            !overlap(task(&run, "heavy"), task(&run, "heavy-2")),
            "the two 2-CPU tasks overlapped on {cores} cores"
        );
    }
}

#[test]
fn python_an_image_version_without_its_interpreter_runs_on_python3_and_says_so() {
    if !python_enabled(
        "python_an_image_version_without_its_interpreter_runs_on_python3_and_says_so",
    ) {
        return;
    }
    // No machine has python3.99: the tasks run on python3, and their logs say so.
    let home = Home::new();
    let text = std::fs::read_to_string(pipeline("add_chain.yaml"))
        .unwrap()
        .replace("image: python:3.11", "image: python:3.99");
    let file = home.dir.path().join("add_chain_py399.yaml");
    std::fs::write(&file, text).unwrap();
    let (code, result, stderr) = home.run(file.to_str().unwrap(), &["-p", "a=2", "-p", "b=3"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(result["outputs"]["parameters"]["Output"], json!(10));
    assert!(
        stderr.contains("no python3.99 on PATH for image python:3.99; using python3"),
        "{stderr}"
    );
}
