//! Loading and validation, checked against the shared KFP corpus (when present beside the
//! repository) and against hand-made mistakes.

mod argo;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use coracle_spec::{Error, load_bytes, load_path, resolve_arguments};
use serde_json::json;

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kfp-corpus");
    dir.is_dir().then_some(dir)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    out.sort();
    out
}

#[test]
fn corpus_valid_files_load() {
    let Some(corpus) = corpus() else {
        eprintln!("../shared/kfp-corpus not present: corpus_valid_files_load checked nothing");
        return;
    };
    let mut failures = Vec::new();
    let mut count = 0;
    for group in ["critical", "essential", "failing"] {
        for file in files(&corpus.join(group)) {
            count += 1;
            if let Err(e) = load_path(&file) {
                failures.push(format!("{}: {e}", file.display()));
            }
        }
    }
    assert!(
        count > 50,
        "expected the corpus to hold more than 50 files, found {count}"
    );
    assert!(
        failures.is_empty(),
        "valid corpus files rejected:\n{}",
        failures.join("\n")
    );
}

#[test]
fn corpus_invalid_files_are_rejected_with_a_message() {
    let Some(corpus) = corpus() else {
        eprintln!(
            "../shared/kfp-corpus not present: corpus_invalid_files_are_rejected_with_a_message checked nothing"
        );
        return;
    };
    let mut seen = BTreeMap::new();
    for file in files(&corpus.join("invalid")) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let err = load_path(&file).expect_err(&name);
        let text = err.to_string();
        assert!(
            text.starts_with(&file.display().to_string()),
            "{name}: message does not name the file: {text}"
        );
        seen.insert(name, text.split_once(": ").unwrap().1.to_string());
    }
    let expected = [
        ("empty_file.yaml", "the file is empty"),
        ("empty_zip.zip", "the file is empty"),
        (
            "invalid-zip.zip",
            "component \"comp-echo\" not found in components",
        ),
        (
            "invalid_yaml.yaml",
            "component \"comp-echo\" not found in components",
        ),
        (
            "no_name.yaml",
            "pipelineInfo.name: the pipeline has no name",
        ),
        ("wrong_format.png", "unsupported file type"),
    ];
    for (file, fragment) in expected {
        let got = seen
            .get(file)
            .unwrap_or_else(|| panic!("{file} missing from corpus/invalid"));
        assert!(
            got.contains(fragment),
            "{file}: expected a message containing {fragment:?}, got {got:?}"
        );
    }
}

const BASE: &str = r#"
pipelineInfo: {name: p}
root:
  inputDefinitions:
    parameters:
      n: {parameterType: NUMBER_INTEGER}
      s: {parameterType: STRING, defaultValue: "x"}
      o: {parameterType: STRING, isOptional: true}
  dag:
    tasks:
      a:
        taskInfo: {name: a}
        componentRef: {name: comp-a}
        inputs: {parameters: {v: {componentInputParameter: n}}}
      b:
        taskInfo: {name: b}
        componentRef: {name: comp-a}
        inputs: {parameters: {v: {taskOutputParameter: {producerTask: a, outputParameterKey: out}}}}
components:
  comp-a:
    executorLabel: exec-a
    inputDefinitions: {parameters: {v: {parameterType: NUMBER_INTEGER}}}
    outputDefinitions: {parameters: {out: {parameterType: NUMBER_INTEGER}}}
deploymentSpec:
  executors:
    exec-a:
      container:
        image: alpine
        command: [sh, -c, "echo {{$.inputs.parameters['v']}} > {{$.outputs.parameters['out'].output_file}}"]
"#;

/// Applies `edit` to the base spec (a text replacement) and returns the error text.
fn check_invalid(from: &str, to: &str, expected: &str) {
    assert!(
        BASE.contains(from),
        "edit target {from:?} not in the base spec"
    );
    let text = BASE.replacen(from, to, 1);
    match load_bytes("p.yaml", text.as_bytes()) {
        Ok(_) => panic!("expected an error after replacing {from:?} with {to:?}"),
        Err(e) => assert_eq!(e.to_string(), expected),
    }
}

#[test]
fn base_spec_is_valid() {
    load_bytes("p.yaml", BASE.as_bytes()).unwrap();
    // The same spec as JSON, and with a platforms document, load too.
    let as_json =
        serde_json::to_string(&load_bytes("p.yaml", BASE.as_bytes()).unwrap().spec).unwrap();
    load_bytes("p.json", as_json.as_bytes()).unwrap();
    let two = format!("{BASE}\n---\nplatforms:\n  kubernetes: {{pipelineConfig: {{}}}}\n");
    let loaded = load_bytes("p.yaml", two.as_bytes()).unwrap();
    assert_eq!(
        loaded.platforms,
        Some(json!({"kubernetes": {"pipelineConfig": {}}}))
    );
}

#[test]
fn structural_mistakes_name_the_path() {
    check_invalid(
        "componentRef: {name: comp-a}\n        inputs: {parameters: {v: {taskOutput",
        "componentRef: {name: comp-zz}\n        inputs: {parameters: {v: {taskOutput",
        "p.yaml: invalid pipeline:\nroot.dag.tasks.b.componentRef.name: component \"comp-zz\" not found in components",
    );
    check_invalid(
        "executorLabel: exec-a",
        "executorLabel: exec-zz",
        "p.yaml: invalid pipeline:\ncomponents.comp-a.executorLabel: executor \"exec-zz\" not found in deploymentSpec.executors",
    );
    check_invalid(
        "producerTask: a,",
        "producerTask: zz,",
        "p.yaml: invalid pipeline:\nroot.dag.tasks.b.inputs.parameters.v.taskOutputParameter: producer task \"zz\" not found in this DAG",
    );
    check_invalid(
        "outputParameterKey: out",
        "outputParameterKey: nope",
        "p.yaml: invalid pipeline:\nroot.dag.tasks.b.inputs.parameters.v.taskOutputParameter: task \"a\" has no output parameter \"nope\"",
    );
    check_invalid(
        "inputs: {parameters: {v: {componentInputParameter: n}}}",
        "dependentTasks: [b]\n        inputs: {parameters: {v: {componentInputParameter: n}}}",
        "p.yaml: invalid pipeline:\nroot.dag.tasks: dependency cycle: a -> b -> a",
    );
    check_invalid(
        "{{$.inputs.parameters['v']}}",
        "{{$.inputs.parameters['w']}}",
        "p.yaml: invalid pipeline:\ndeploymentSpec.executors.exec-a.container.command[2]: placeholder names input parameter \"w\", which the component does not declare",
    );
    check_invalid(
        "{{$.inputs.parameters['v']}}",
        "{{$.inputs.parameterz['v']}}",
        "p.yaml: invalid pipeline:\ndeploymentSpec.executors.exec-a.container.command[2]: unknown placeholder \"{{$.inputs.parameterz['v']}}\"",
    );
    check_invalid(
        "componentInputParameter: n",
        "componentInputParameter: zz",
        "p.yaml: invalid pipeline:\nroot.dag.tasks.a.inputs.parameters.v.componentInputParameter: \"zz\" is not an input parameter of the enclosing DAG",
    );
    check_invalid(
        "parameterType: NUMBER_INTEGER}\n      s:",
        "parameterType: NUMBER_INTEGR}\n      s:",
        "p.yaml: invalid pipeline:\nroot.inputDefinitions.parameters.n.parameterType: unknown variant `NUMBER_INTEGR`, expected one of `NUMBER_DOUBLE`, `NUMBER_INTEGER`, `STRING`, `BOOLEAN`, `LIST`, `STRUCT`, `TASK_FINAL_STATUS`, `PARAMETER_TYPE_ENUM_UNSPECIFIED`",
    );
    check_invalid(
        "defaultValue: \"x\"",
        "defaultValue: [1]",
        "p.yaml: invalid pipeline:\nroot.inputDefinitions.parameters.s.defaultValue: expected STRING, got a list ([1])",
    );
    check_invalid(
        "inputs: {parameters: {v: {componentInputParameter: n}}}",
        "inputs: {parameters: {}}",
        "p.yaml: invalid pipeline:\nroot.dag.tasks.a.inputs.parameters: required input parameter \"v\" of component \"comp-a\" is not given",
    );
}

#[test]
fn arguments_are_checked_against_the_root_inputs() {
    let pipeline = load_bytes("p.yaml", BASE.as_bytes()).unwrap();
    let spec = &pipeline.spec;
    let args = |pairs: &[(&str, serde_json::Value)]| -> BTreeMap<String, serde_json::Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    let ok = resolve_arguments(spec, &args(&[("n", json!("5"))])).unwrap();
    assert_eq!(
        serde_json::to_value(&ok).unwrap(),
        json!({"n": 5, "s": "x"})
    );
    let err = resolve_arguments(spec, &BTreeMap::new())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "root.inputDefinitions.parameters.n: required parameter \"n\" (NUMBER_INTEGER) has no value"
    );
    let err = resolve_arguments(spec, &args(&[("n", json!("five"))]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "root.inputDefinitions.parameters.n: expected NUMBER_INTEGER, got a string (\"five\")"
    );
    let err = resolve_arguments(spec, &args(&[("n", json!(1)), ("zz", json!(1))]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "root.inputDefinitions.parameters: unknown parameter \"zz\" (the pipeline's parameters: n, o, s)"
    );
}

#[test]
fn archives_are_read() {
    // A zip holding pipeline.yaml beside another file.
    let mut zip_bytes = Vec::new();
    {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut zip_bytes));
        let opts = zip::write::SimpleFileOptions::default();
        w.start_file("README.txt", opts).unwrap();
        std::io::Write::write_all(&mut w, b"hi").unwrap();
        w.start_file("pipeline.yaml", opts).unwrap();
        std::io::Write::write_all(&mut w, BASE.as_bytes()).unwrap();
        w.finish().unwrap();
    }
    assert_eq!(
        load_bytes("p.zip", &zip_bytes)
            .unwrap()
            .spec
            .pipeline_info
            .name,
        "p"
    );

    let mut tar_gz = Vec::new();
    {
        let enc = flate2::write::GzEncoder::new(&mut tar_gz, flate2::Compression::fast());
        let mut b = tar::Builder::new(enc);
        let mut header = tar::Header::new_gnu();
        header.set_size(BASE.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        b.append_data(&mut header, "dir/my.yaml", BASE.as_bytes())
            .unwrap();
        b.into_inner().unwrap().finish().unwrap();
    }
    assert_eq!(
        load_bytes("p.tar.gz", &tar_gz)
            .unwrap()
            .spec
            .pipeline_info
            .name,
        "p"
    );
    let err = load_bytes("p.tar.gz", &tar_gz[..tar_gz.len() / 2]).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
}

#[test]
fn a_component_that_contains_itself_is_refused() {
    let yaml = r#"
pipelineInfo: {name: p}
root:
  dag:
    tasks:
      outer: {taskInfo: {name: outer}, componentRef: {name: comp-loop}}
components:
  comp-loop:
    dag:
      tasks:
        inner: {taskInfo: {name: inner}, componentRef: {name: comp-loop}}
"#;
    let err = load_bytes("p.yaml", yaml.as_bytes())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "p.yaml: invalid pipeline:\ncomponents: component nesting cycle: comp-loop -> comp-loop"
    );
}
