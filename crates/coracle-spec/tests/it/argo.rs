//! The KFP v1 front end: Argo Workflows (as kfp 1.8.22 compiles them, tests/pipelines_v1) and
//! v1 component.yaml files, translated into the IR on load; bad v1 input refused with the
//! template and field named.

use std::path::{Path, PathBuf};

use coracle_spec::{Pipeline, load_bytes, load_path};
use serde_json::{Value, json};

fn v1(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/pipelines_v1")
        .join(name)
}

fn load_v1(name: &str) -> Pipeline {
    load_path(&v1(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The translated spec as JSON, for pointer lookups.
fn spec_json(pipeline: &Pipeline) -> Value {
    serde_json::to_value(&pipeline.spec).unwrap()
}

fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in {value:#}"))
}

#[test]
fn every_team_v1_pipeline_loads() {
    let mut count = 0;
    for entry in std::fs::read_dir(v1("")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            load_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            count += 1;
        }
    }
    assert!(
        count >= 9,
        "expected the team's v1 pipelines, found {count}"
    );
    load_v1("components/echo.yaml");
}

#[test]
fn add_chain_becomes_two_tasks_passing_a_parameter() {
    let pipeline = load_v1("add_chain.yaml");
    let spec = spec_json(&pipeline);
    assert_eq!(spec["pipelineInfo"]["name"], "add-chain");
    assert_eq!(spec["sdkVersion"], "kfp-1.8.22");
    // Pipeline parameters are text, required (no default in the workflow).
    assert_eq!(
        at(&spec, "/root/inputDefinitions/parameters/a"),
        &json!({"parameterType": "STRING", "isOptional": false})
    );
    let tasks = at(&spec, "/root/dag/tasks");
    assert_eq!(
        tasks["add"]["inputs"]["parameters"]["a"],
        json!({"componentInputParameter": "a"})
    );
    // `{{tasks.add.outputs.parameters.add-Output}}` is the output `Output` of task add.
    assert_eq!(
        tasks["double"]["inputs"]["parameters"]["add-Output"],
        json!({"taskOutputParameter": {"producerTask": "add", "outputParameterKey": "Output"}})
    );
    assert_eq!(tasks["double"]["dependentTasks"], json!(["add"]));
    assert_eq!(tasks["add"]["cachingOptions"], json!({"enableCache": true}));
    // The fixed output path became the artifact's path; the parameter shares its key.
    let exec = at(&spec, "/deploymentSpec/executors/exec-add/container");
    assert_eq!(
        exec["args"],
        json!([
            "--a",
            "{{$.inputs.parameters['a']}}",
            "--b",
            "{{$.inputs.parameters['b']}}",
            "----output-paths",
            "{{$.outputs.artifacts['Output'].path}}"
        ])
    );
    assert_eq!(exec["image"], "python:3.11");
    assert_eq!(
        at(
            &spec,
            "/components/comp-add/outputDefinitions/parameters/Output"
        ),
        &json!({"parameterType": "STRING", "isOptional": false})
    );
    assert_eq!(
        at(
            &spec,
            "/components/comp-add/outputDefinitions/artifacts/Output/artifactType/schemaTitle"
        ),
        "system.Artifact"
    );
    assert!(pipeline.platforms.is_none());
}

#[test]
fn files_are_passed_by_rewriting_their_paths() {
    let spec = spec_json(&load_v1("file_passing.yaml"));
    // InputPath: the consumer's fixed input path is the input artifact's path.
    assert_eq!(
        at(
            &spec,
            "/deploymentSpec/executors/exec-measure/container/args/1"
        ),
        "{{$.inputs.artifacts['write-text-out'].path}}"
    );
    // A ContainerOp's file output written in its shell script.
    assert_eq!(
        at(
            &spec,
            "/deploymentSpec/executors/exec-shout/container/command/2"
        ),
        "mkdir -p /tmp/shout && printf \"%s!\" \"$0\" > {{$.outputs.artifacts['shout'].path}}"
    );
    // set_display_name names the task.
    assert_eq!(
        at(&spec, "/root/dag/tasks/measure/taskInfo/name"),
        "measure text"
    );
    // A constant passed to an InputPath is written by a task before its consumer.
    let tasks = at(&spec, "/root/dag/tasks");
    assert_eq!(
        tasks["measure-2-raw-data"]["inputs"]["parameters"]["data"],
        json!({"runtimeValue": {"constant": "constant data"}})
    );
    assert_eq!(
        tasks["measure-2"]["inputs"]["artifacts"]["data"],
        json!({"taskOutputArtifact": {"producerTask": "measure-2-raw-data", "outputArtifactKey": "data"}})
    );
    // `.after()` with a parameter from a ContainerOp file output.
    assert_eq!(
        tasks["report"]["dependentTasks"],
        json!(["count-chars", "shout"])
    );
    assert_eq!(
        tasks["report"]["inputs"]["parameters"]["count-chars-count"],
        json!({"taskOutputParameter": {"producerTask": "count-chars", "outputParameterKey": "count"}})
    );
}

#[test]
fn control_flow_becomes_conditions_loops_and_an_exit_task() {
    let spec = spec_json(&load_v1("control_flow.yaml"));
    let root = at(&spec, "/root/dag/tasks");
    // The exit handler waits for the body whatever happened and reads its final status.
    assert_eq!(
        root["final"]["triggerPolicy"],
        json!({"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"})
    );
    assert_eq!(root["final"]["dependentTasks"], json!(["exit-handler-1"]));
    assert_eq!(
        root["final"]["inputs"]["parameters"]["workflow.status"]["taskFinalStatus"],
        json!({"producerTask": "exit-handler-1"})
    );
    let body = at(&spec, "/components/comp-exit-handler-1/dag/tasks");
    // String condition on an upstream output.
    assert_eq!(
        body["condition-2"]["triggerPolicy"]["condition"],
        "string(inputs.parameter_values['pipelinechannel--condition-0']) == 'heads'"
    );
    assert_eq!(
        body["condition-2"]["inputs"]["parameters"]["pipelinechannel--condition-0"],
        json!({"taskOutputParameter": {"producerTask": "echo", "outputParameterKey": "Output"}})
    );
    // Static items with a parallelism limit; a key of each item.
    let pairs = &body["for-loop-6"];
    assert_eq!(
        pairs["parameterIterator"]["itemInput"],
        "pipelinechannel--for-loop-6-loop-item"
    );
    assert_eq!(
        serde_json::from_str::<Value>(pairs["parameterIterator"]["items"]["raw"].as_str().unwrap())
            .unwrap(),
        json!([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    );
    assert_eq!(pairs["iteratorPolicy"], json!({"parallelismLimit": 1}));
    let pair_task = at(
        &spec,
        &format!(
            "/components/{}/dag/tasks/pair",
            pairs["componentRef"]["name"].as_str().unwrap()
        ),
    );
    assert_eq!(
        pair_task["inputs"]["parameters"]["loop-item-param-5-subvar-a"],
        json!({
            "componentInputParameter": "pipelinechannel--for-loop-6-loop-item",
            "parameterExpressionSelector": "parseJson(string_value)[\"a\"]"
        })
    );
    // Items from an upstream output.
    assert_eq!(
        body["for-loop-7"]["parameterIterator"]["items"],
        json!({"inputParameter": "pipelinechannel--loop-items"})
    );
    assert_eq!(
        body["for-loop-7"]["inputs"]["parameters"]["pipelinechannel--loop-items"],
        json!({"taskOutputParameter": {"producerTask": "make-list", "outputParameterKey": "Output"}})
    );
}

#[test]
fn pod_settings_become_platform_settings() {
    let pipeline = load_v1("pod_settings.yaml");
    let spec = spec_json(&pipeline);
    assert_eq!(
        at(
            &spec,
            "/deploymentSpec/executors/exec-inspect/container/resources"
        ),
        &json!({"resourceCpuLimit": "1", "resourceMemoryLimit": "512M"})
    );
    assert_eq!(
        at(
            &spec,
            "/deploymentSpec/executors/exec-inspect/container/env"
        ),
        &json!([{"name": "GREETING", "value": "hi"}])
    );
    let platforms = pipeline.platforms.expect("platform settings");
    let k8s = &platforms["kubernetes"]["deploymentSpec"]["executors"]["exec-inspect"];
    assert_eq!(
        k8s["secretAsEnv"],
        json!([{"secretNameParameter": {"runtimeValue": {"constant": "db-creds"}},
                "keyToEnv": [{"secretKey": "password", "envVar": "DB_PASSWORD"}]}])
    );
    assert_eq!(
        k8s["configMapAsEnv"][0]["keyToEnv"],
        json!([{"configMapKey": "mode", "envVar": "APP_MODE"}])
    );
    assert_eq!(
        k8s["fieldPathAsEnv"],
        json!([{"name": "POD_NAME", "fieldPath": "metadata.name"}])
    );
    assert_eq!(k8s["secretAsVolume"][0]["mountPath"], "/mnt/creds");
    assert_eq!(k8s["configMapAsVolume"][0]["mountPath"], "/etc/app");
    assert_eq!(
        k8s["emptyDirMounts"],
        json!([{"volumeName": "scratch", "mountPath": "/scratch"}])
    );
    assert_eq!(
        k8s["podMetadata"],
        json!({"labels": {"team": "ml"}, "annotations": {"owner": "v1-team"}})
    );
    assert_eq!(k8s["activeDeadlineSeconds"], "120");
    assert_eq!(k8s["nodeSelector"], json!({"labels": {"disktype": "ssd"}}));
    // max_cache_staleness P0D turns caching off.
    assert_eq!(
        at(&spec, "/root/dag/tasks/inspect/cachingOptions"),
        &json!({"enableCache": false})
    );
    let gpu = spec_json(&load_v1("gpu.yaml"));
    assert_eq!(
        at(
            &gpu,
            "/deploymentSpec/executors/exec-gpu/container/resources/accelerator"
        ),
        &json!({"resourceType": "nvidia.com/gpu", "resourceCount": "1"})
    );
}

#[test]
fn volume_ops_become_create_and_delete_builtins() {
    let pipeline = load_v1("volumes.yaml");
    let spec = spec_json(&pipeline);
    assert_eq!(
        at(
            &spec,
            "/deploymentSpec/executors/exec-make-volume/container/image"
        ),
        "argostub/createpvc"
    );
    let tasks = at(&spec, "/root/dag/tasks");
    assert_eq!(
        tasks["make-volume"]["inputs"]["parameters"],
        json!({
            "pvc_name_suffix": {"runtimeValue": {"constant": "-data"}},
            "size": {"runtimeValue": {"constant": "1Gi"}},
            "access_modes": {"runtimeValue": {"constant": ["ReadWriteOnce"]}}
        })
    );
    assert_eq!(
        at(
            &spec,
            "/deploymentSpec/executors/exec-kubernetes-resource-delete/container/image"
        ),
        "argostub/deletepvc"
    );
    assert_eq!(
        tasks["kubernetes-resource-delete"]["inputs"]["parameters"]["pvc_name"],
        json!({"taskOutputParameter": {"producerTask": "make-volume", "outputParameterKey": "name"}})
    );
    let platforms = pipeline.platforms.unwrap();
    let executors = &platforms["kubernetes"]["deploymentSpec"]["executors"];
    // pvolumes: the volume's name from the VolumeOp task (a sibling).
    assert_eq!(
        executors["exec-write"]["pvcMount"],
        json!([{"mountPath": "/data", "pvcNameParameter":
            {"taskOutputParameter": {"producerTask": "make-volume", "outputParameterKey": "name"}}}])
    );
    // onprem.mount_pvc with a pipeline parameter.
    assert_eq!(
        executors["exec-append"]["pvcMount"],
        json!([{"mountPath": "/shared", "pvcNameParameter": {"componentInputParameter": "shared"}}])
    );
}

#[test]
fn retries_caching_and_metrics() {
    let spec = spec_json(&load_v1("retry.yaml"));
    assert_eq!(
        at(&spec, "/root/dag/tasks/flaky-2/retryPolicy"),
        &json!({"maxRetryCount": 2, "backoffDuration": "1s", "backoffFactor": 2.0})
    );
    assert_eq!(
        at(&spec, "/root/dag/tasks/flaky/retryPolicy"),
        &json!({"maxRetryCount": 3})
    );
    let caching = spec_json(&load_v1("caching.yaml"));
    for (task, on) in [("token", true), ("token-2", false), ("token-3", false)] {
        assert_eq!(
            at(
                &caching,
                &format!("/root/dag/tasks/{task}/cachingOptions/enableCache")
            ),
            &json!(on),
            "{task}"
        );
    }
    // Another staleness than zero is kept as the task's limit on a reused result's age.
    assert_eq!(
        at(&caching, "/root/dag/tasks/fresh-token/cachingOptions"),
        &json!({"enableCache": true, "maxCacheStalenessSeconds": 15})
    );
    let metrics = spec_json(&load_v1("metrics.yaml"));
    let outputs = at(
        &metrics,
        "/components/comp-evaluate/outputDefinitions/artifacts",
    );
    assert_eq!(
        outputs["mlpipeline-metrics"]["artifactType"]["schemaTitle"],
        "system.Metrics"
    );
    assert_eq!(
        outputs["mlpipeline-ui-metadata"]["artifactType"]["schemaTitle"],
        coracle_spec::UI_METADATA_SCHEMA
    );
}

#[test]
fn a_v1_component_file_is_a_one_task_pipeline() {
    let spec = spec_json(&load_v1("components/echo.yaml"));
    assert_eq!(spec["pipelineInfo"]["name"], "echo");
    assert_eq!(
        at(&spec, "/root/inputDefinitions/parameters/prefix"),
        &json!({"parameterType": "STRING", "isOptional": true})
    );
    assert_eq!(
        at(&spec, "/root/inputDefinitions/parameters/times"),
        &json!({"parameterType": "STRING", "defaultValue": "1", "isOptional": false})
    );
    let args = at(&spec, "/deploymentSpec/executors/exec-echo/container/args");
    assert_eq!(
        args[0],
        r#"{"Concat":["--text=","{{$.inputs.parameters['text']}}"]}"#
    );
    assert_eq!(args[2], "{{$.inputs.artifacts['data'].path}}");
    assert_eq!(
        serde_json::from_str::<Value>(args[3].as_str().unwrap()).unwrap(),
        json!({"IfPresent": {"InputName": "prefix",
            "Then": ["--prefix", "{{$.inputs.parameters['prefix']}}"], "Else": ["--no-prefix"]}})
    );
    // The file input is written from the parameter first.
    assert_eq!(
        at(&spec, "/root/dag/tasks/echo/inputs/artifacts/data"),
        &json!({"taskOutputArtifact": {"producerTask": "echo-data-data", "outputArtifactKey": "data"}})
    );
    assert_eq!(
        at(&spec, "/root/dag/outputs/parameters/result"),
        &json!({"valueFromParameter": {"producerSubtask": "echo", "outputParameterKey": "result"}})
    );
}

// ---- bad v1 input ---------------------------------------------------------------------------

const WORKFLOW: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: hand-written-}
spec:
  entrypoint: main
  arguments:
    parameters:
    - {name: msg, value: hi}
  templates:
  - name: main
    dag:
      tasks:
      - name: produce
        template: produce
        arguments:
          parameters:
          - {name: msg, value: '{{workflow.parameters.msg}}'}
      - name: train
        template: train
        dependencies: [produce]
        arguments:
          parameters:
          - {name: text, value: '{{tasks.produce.outputs.parameters.out}}'}
  - name: produce
    inputs:
      parameters:
      - {name: msg}
    container:
      image: alpine
      command: [sh, -c, 'echo "{{inputs.parameters.msg}}" > /tmp/out.txt']
    outputs:
      parameters:
      - name: out
        valueFrom: {path: /tmp/out.txt}
  - name: train
    inputs:
      parameters:
      - {name: text}
    container:
      image: alpine
      command: [sh, -c, 'echo "{{inputs.parameters.text}}" > /data/x']
      volumeMounts:
      - {name: data, mountPath: /data}
    volumes:
    - name: data
      persistentVolumeClaim: {claimName: my-data}
"#;

/// Loads the hand-written workflow with `from` replaced by `to`; the error text.
fn refused(from: &str, to: &str) -> String {
    assert!(
        WORKFLOW.contains(from),
        "edit target {from:?} not in the workflow"
    );
    let text = WORKFLOW.replacen(from, to, 1);
    match load_bytes("wf.yaml", text.as_bytes()) {
        Ok(_) => panic!("expected an error after replacing {from:?} with {to:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_hand_written_workflow_translates() {
    let pipeline = load_bytes("wf.yaml", WORKFLOW.as_bytes()).unwrap();
    let spec = spec_json(&pipeline);
    assert_eq!(spec["pipelineInfo"]["name"], "hand-written");
    assert_eq!(
        at(
            &spec,
            "/deploymentSpec/executors/exec-produce/container/command/2"
        ),
        "echo \"{{$.inputs.parameters['msg']}}\" > {{$.outputs.artifacts['out'].path}}"
    );
    // No kfp caching label: not cached, as the KFP v1 backend decides.
    assert_eq!(
        at(&spec, "/root/dag/tasks/produce/cachingOptions"),
        &json!({"enableCache": false})
    );
    assert_eq!(
        pipeline.platforms.unwrap()["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]["pvcMount"],
        json!([{"mountPath": "/data", "pvcNameParameter": {"runtimeValue": {"constant": "my-data"}}}])
    );
}

#[test]
fn unsupported_v1_input_is_refused_naming_template_and_field() {
    let cases = [
        (
            "      - {name: data, mountPath: /data}",
            "      - {name: other, mountPath: /data}",
            "spec.templates[train].container.volumeMounts[0]: volume \"other\" is not declared",
        ),
        (
            "  - name: produce\n    inputs:\n      parameters:\n      - {name: msg}\n    container:",
            "  - name: produce\n    inputs:\n      parameters:\n      - {name: msg}\n    script:\n      source: x\n    container:",
            "spec.templates[produce].script: script templates are not supported",
        ),
        (
            "  - name: main\n    dag:",
            "  - name: main\n    steps: []\n    dag:",
            "spec.templates[main].steps: steps templates are not supported",
        ),
        (
            "echo \"{{inputs.parameters.msg}}\"",
            "echo \"{{inputs.parameters.nope}}\"",
            "spec.templates[produce].container.command[2]: {{inputs.parameters.nope}}: the template declares no input parameter \"nope\"",
        ),
        (
            "echo \"{{inputs.parameters.msg}}\"",
            "echo \"{{steps.x.outputs.result}}\"",
            "spec.templates[produce].container.command[2]: unknown Argo variable \"{{steps.x.outputs.result}}\"",
        ),
        (
            "template: train\n",
            "template: trainer\n",
            "spec.templates[main].dag.tasks[train].template: template \"trainer\" is not defined in spec.templates",
        ),
        (
            "dependencies: [produce]",
            "dependencies: [prod]",
            "spec.templates[main].dag.tasks[train].dependencies: task \"prod\" is not in this DAG",
        ),
        (
            "{{tasks.produce.outputs.parameters.out}}",
            "{{tasks.produce.outputs.parameters.missing}}",
            "spec.templates[main].dag.tasks[train].arguments.parameters[0]: task \"produce\" (template \"produce\") has no output parameter \"missing\"",
        ),
        (
            "> /tmp/out.txt",
            "> /tmp/elsewhere.txt",
            "spec.templates[produce].outputs.parameters[0].path: \"/tmp/out.txt\" appears nowhere in the container's command, args or env; Coracle passes a v1 output file by rewriting its path there",
        ),
        (
            "persistentVolumeClaim: {claimName: my-data}",
            "hostPath: {path: /srv}",
            "spec.templates[train].volumes[0]: hostPath volumes are not supported (only persistentVolumeClaim, secret, configMap and emptyDir)",
        ),
        (
            "dependencies: [produce]",
            "dependencies: [produce]\n        when: '\"{{tasks.produce.outputs.parameters.out}}\" =~ \"h.*\"'",
            "spec.templates[main].dag.tasks[train].when: \"\\\"{{tasks.produce.outputs.parameters.out}}\\\" =~ \\\"h.*\\\"\": regular expression operators (=~, !~) are not supported",
        ),
        (
            "{{workflow.parameters.msg}}",
            "{{workflow.parameters.nothing}}",
            "spec.templates[main].dag.tasks[produce].arguments.parameters[0]: {{workflow.parameters.nothing}}: spec.arguments.parameters has no parameter \"nothing\"",
        ),
        (
            "      image: alpine\n      command: [sh, -c, 'echo \"{{inputs.parameters.text}}\"",
            "      image: alpine\n      workingDir: /w\n      command: [sh, -c, 'echo \"{{inputs.parameters.text}}\"",
            "spec.templates[train].container.workingDir: a working directory is not supported (tasks run in their own directory)",
        ),
        (
            "        dependencies: [produce]",
            "        dependencies: [produce]\n        continueOn: {failed: true}",
            "spec.templates[main].dag.tasks[train].continueOn: continueOn is not supported",
        ),
    ];
    for (from, to, expected) in cases {
        let text = refused(from, to);
        assert!(
            text.starts_with("wf.yaml: invalid pipeline:\n"),
            "{to}: {text}"
        );
        assert!(
            text.lines().any(|line| line == expected),
            "replacing {from:?} with {to:?}: expected the line\n{expected}\nin\n{text}"
        );
    }
}

#[test]
fn other_resources_and_recursion_are_refused() {
    let job = WORKFLOW.replacen(
        "  - name: train\n    inputs:",
        "  - name: job\n    resource:\n      action: create\n      manifest: |\n        apiVersion: batch/v1\n        kind: Job\n  - name: train\n    inputs:",
        1,
    )
    .replacen(
        "      - name: train\n        template: train\n",
        "      - name: job\n        template: job\n      - name: train\n        template: train\n",
        1,
    );
    let text = load_bytes("wf.yaml", job.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("spec.templates[job].resource: only creating or deleting a PersistentVolumeClaim (dsl.VolumeOp) is supported, not action \"create\" of kind \"Job\""),
        "{text}"
    );
    let recursive = WORKFLOW.replacen(
        "      - name: produce\n        template: produce\n",
        "      - name: again\n        template: main\n        when: '1 > 2'\n      - name: produce\n        template: produce\n",
        1,
    );
    let text = load_bytes("wf.yaml", recursive.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("spec.templates[main].dag.tasks[again].template: template \"main\" calls itself; recursive pipelines are not supported"),
        "{text}"
    );
    let other_api = "apiVersion: v1\nkind: Workflow\nspec: {}\n";
    let text = load_bytes("wf.yaml", other_api.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(text.contains("is not an Argo Workflow"), "{text}");
    let two = format!("{WORKFLOW}\n---\nplatforms: {{}}\n");
    let text = load_bytes("wf.yaml", two.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(text.contains("must be the file's only document"), "{text}");
}

#[test]
fn bad_component_files_are_refused() {
    let component = r#"
name: Bad
inputs:
- {name: a}
outputs:
- {name: o}
implementation:
  container:
    image: alpine
    command: [sh, -c, echo, {inputValue: b}, {outputPath: o}, {if: {cond: {inputValue: a}, then: [x]}}, {weird: a}]
"#;
    let text = load_bytes("c.yaml", component.as_bytes())
        .unwrap_err()
        .to_string();
    for expected in [
        "implementation.container.command[3]: input \"b\" is not declared",
        "implementation.container.command[5].if.cond: only isPresent (or a constant true/false) conditions are supported",
        "implementation.container.command[6]: unknown placeholder \"weird\" (expected inputValue, inputPath, inputUri, outputPath, outputUri, concat or if)",
    ] {
        assert!(
            text.lines().any(|l| l == expected),
            "expected {expected}\nin\n{text}"
        );
    }
}

#[test]
fn a_bad_cache_staleness_is_refused() {
    let text = std::fs::read_to_string(v1("caching.yaml")).unwrap();
    let from = "pipelines.kubeflow.org/max_cache_staleness: PT15S";
    assert!(text.contains(from));
    let text = text.replacen(
        from,
        "pipelines.kubeflow.org/max_cache_staleness: 4 seconds",
        1,
    );
    let error = load_bytes("caching.yaml", text.as_bytes())
        .expect_err("a staleness that is no duration must be refused")
        .to_string();
    let expected = "spec.templates[fresh-token].metadata.annotations.pipelines.kubeflow.org/max_cache_staleness: \"4 seconds\": not an ISO 8601 duration (e.g. P30D, PT12H, P0D)";
    assert!(
        error.lines().any(|line| line == expected),
        "expected the line\n{expected}\nin\n{error}"
    );
}
