//! The run state machine driven by scripted events, checked as snapshots of the commands it
//! gives. No processes run here.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Arc;

use coracle_engine::{
    Command, Engine, Event, Io, Launch, NodeId, Resources, RunConfig, TaskResult,
};
use serde_json::{Value, json};

fn config(parallelism: usize) -> RunConfig {
    RunConfig {
        run_id: "run-1".into(),
        run_name: "demo-run".into(),
        pipeline_root: "/data/artifacts".into(),
        run_dir: "/data/runs/run-1".into(),
        create_time: "2026-01-02T03:04:05Z".into(),
        parallelism,
        capacity: Resources {
            cpu_millis: 2000,
            memory_bytes: 4 << 30,
            gpus: 0,
        },
        cache_enabled: true,
        resume: Default::default(),
    }
}

fn load(yaml: &str) -> Arc<coracle_spec::PipelineSpec> {
    Arc::new(
        coracle_spec::load_bytes("test.yaml", yaml.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"))
            .spec,
    )
}

/// Runs the engine, answering each launch with `answer`, and returns the trace.
struct Sim {
    engine: Engine,
    trace: String,
    launched: VecDeque<Box<Launch>>,
    /// Cache look-ups and retry back-offs asked for, answered by `run`.
    asked: VecDeque<Event>,
    /// Cache contents for `CheckCache`: material → outputs.
    cache: Vec<(Value, Io)>,
    paths: BTreeMap<NodeId, String>,
}

impl Sim {
    fn start(yaml: &str, args: Value, parallelism: usize) -> Sim {
        let spec = load(yaml);
        let args: BTreeMap<String, Value> = serde_json::from_value(args).unwrap();
        let args = coracle_spec::resolve_arguments(&spec, &args).unwrap_or_else(|e| panic!("{e}"));
        let (engine, commands) =
            Engine::start(spec, args, config(parallelism)).unwrap_or_else(|e| panic!("{e}"));
        let mut sim = Sim {
            engine,
            trace: String::new(),
            launched: VecDeque::new(),
            asked: VecDeque::new(),
            cache: Vec::new(),
            paths: BTreeMap::new(),
        };
        sim.record(commands);
        sim
    }

    fn record(&mut self, commands: Vec<Command>) {
        for c in commands {
            match c {
                Command::Update(u) => {
                    self.paths.insert(u.node, u.task_path.clone());
                    let _ = write!(self.trace, "update {} {:?}", u.task_path, u.state);
                    if let Some(e) = &u.error {
                        let _ = write!(self.trace, " error={e:?}");
                    }
                    if let Some(o) = &u.outputs {
                        let _ = write!(self.trace, " outputs={}", io_text(o));
                    }
                    self.trace.push('\n');
                }
                Command::Launch(l) => {
                    let _ = writeln!(self.trace, "launch {} argv={:?}", l.task_path, l.argv);
                    self.launched.push_back(l);
                }
                Command::Cancel { node } => {
                    let _ = writeln!(self.trace, "cancel {}", self.paths[&node]);
                }
                Command::CheckCache {
                    node,
                    material,
                    max_staleness_s,
                } => {
                    let _ = write!(self.trace, "check-cache {}", self.paths[&node]);
                    if let Some(s) = max_staleness_s {
                        let _ = write!(self.trace, " max-staleness={s}s");
                    }
                    self.trace.push('\n');
                    let hit = self
                        .cache
                        .iter()
                        .find(|(m, _)| *m == material)
                        .map(|(_, io)| io.clone());
                    self.asked.push_back(Event::CacheChecked { node, hit });
                }
                Command::RetryAfter { node, delay_ms } => {
                    let _ = writeln!(self.trace, "retry-after {} {delay_ms}ms", self.paths[&node]);
                    self.asked.push_back(Event::RetryDue { node });
                }
                Command::Finish(f) => {
                    let _ = writeln!(
                        self.trace,
                        "finish {:?} error={:?} outputs={}",
                        f.state,
                        f.error,
                        io_text(&f.outputs)
                    );
                }
            }
        }
    }

    fn send(&mut self, event: Event) {
        let _ = writeln!(
            self.trace,
            "> {}",
            match &event {
                Event::TaskFinished { node, result } => format!(
                    "{} {}",
                    self.paths[node],
                    match result {
                        TaskResult::Succeeded(_) => "succeeded".to_string(),
                        TaskResult::Failed(e) => format!("failed: {e}"),
                        TaskResult::Canceled => "canceled".to_string(),
                    }
                ),
                Event::CancelRequested => "cancel requested".to_string(),
                Event::CacheChecked { node, hit } => format!(
                    "{} cache {}",
                    self.paths[node],
                    if hit.is_some() { "hit" } else { "miss" }
                ),
                Event::RetryDue { node } => format!("{} retry due", self.paths[node]),
            }
        );
        let commands = self.engine.handle(event);
        self.record(commands);
    }

    /// Answers cache look-ups and back-offs first, then launched tasks in launch order,
    /// until nothing is left.
    fn run(&mut self, mut answer: impl FnMut(&Launch) -> TaskResult) -> &str {
        loop {
            if let Some(event) = self.asked.pop_front() {
                self.send(event);
            } else if let Some(l) = self.launched.pop_front() {
                let result = answer(&l);
                self.send(Event::TaskFinished {
                    node: l.node,
                    result,
                });
            } else {
                break;
            }
        }
        &self.trace
    }
}

fn io_text(io: &Io) -> String {
    let mut parts: Vec<String> = io
        .parameters
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    parts.extend(
        io.artifacts
            .iter()
            .map(|(k, v)| format!("{k}=<{}>", v[0].uri)),
    );
    format!("{{{}}}", parts.join(", "))
}

/// A component's outputs as an executor would report them: every output parameter set from
/// `values`, every artifact as planned.
fn outputs_of(l: &Launch, values: Value) -> TaskResult {
    let executor_output = json!({"parameterValues": values}).to_string();
    let files = BTreeMap::new();
    TaskResult::Succeeded(
        coracle_engine::collect_outputs(&l.outputs, Some(&executor_output), &files).unwrap(),
    )
}

const ADD_CHAIN: &str = r#"
pipelineInfo: {name: add-chain}
root:
  inputDefinitions: {parameters: {a: {parameterType: NUMBER_INTEGER}, b: {parameterType: NUMBER_INTEGER, defaultValue: 2}}}
  outputDefinitions: {parameters: {Output: {parameterType: NUMBER_INTEGER}}}
  dag:
    outputs: {parameters: {Output: {valueFromParameter: {producerSubtask: double, outputParameterKey: Output}}}}
    tasks:
      add:
        taskInfo: {name: add}
        componentRef: {name: comp-add}
        inputs: {parameters: {x: {componentInputParameter: a}, y: {componentInputParameter: b}}}
      double:
        taskInfo: {name: double}
        componentRef: {name: comp-double}
        inputs: {parameters: {x: {taskOutputParameter: {producerTask: add, outputParameterKey: Output}}}}
components:
  comp-add:
    executorLabel: exec-add
    inputDefinitions: {parameters: {x: {parameterType: NUMBER_INTEGER}, y: {parameterType: NUMBER_INTEGER}}}
    outputDefinitions: {parameters: {Output: {parameterType: NUMBER_INTEGER}}}
  comp-double:
    executorLabel: exec-double
    inputDefinitions: {parameters: {x: {parameterType: NUMBER_INTEGER}}}
    outputDefinitions: {parameters: {Output: {parameterType: NUMBER_INTEGER}}}
deploymentSpec:
  executors:
    exec-add:
      container: {image: "python:3.11", command: [add], args: ["{{$.inputs.parameters['x']}}", "{{$.inputs.parameters['y']}}"]}
    exec-double:
      container: {image: "python:3.11", command: [double], args: ["--executor_input", "{{$}}"]}
"#;

fn add_chain_answer(l: &Launch) -> TaskResult {
    let inputs = &l.executor_input["inputs"]["parameterValues"];
    let sum = match l.task_path.as_str() {
        "add" => inputs["x"].as_i64().unwrap() + inputs["y"].as_i64().unwrap(),
        _ => inputs["x"].as_i64().unwrap() * 2,
    };
    outputs_of(l, json!({"Output": sum}))
}

#[test]
fn data_dependencies_order_tasks_and_give_pipeline_outputs() {
    let mut sim = Sim::start(ADD_CHAIN, json!({"a": 5}), 4);
    let trace = sim.run(add_chain_answer).to_string();
    insta::assert_snapshot!(trace);
}

#[test]
fn executor_input_follows_the_kfp_contract() {
    let sim = Sim::start(ADD_CHAIN, json!({"a": "7", "b": 1}), 4);
    let launch = &sim.launched[0];
    insta::assert_snapshot!(serde_json::to_string_pretty(&launch.executor_input).unwrap());
    assert_eq!(launch.task_dir, "/data/runs/run-1/tasks/add");
    assert_eq!(
        launch.dirs_to_create,
        vec!["/data/runs/run-1/tasks/add/outputs".to_string()]
    );
}

#[test]
fn same_events_give_same_commands() {
    let a = Sim::start(ADD_CHAIN, json!({"a": 1}), 1)
        .run(add_chain_answer)
        .to_string();
    let b = Sim::start(ADD_CHAIN, json!({"a": 1}), 1)
        .run(add_chain_answer)
        .to_string();
    assert_eq!(a, b);
}

const FAN: &str = r#"
pipelineInfo: {name: fan}
root:
  dag:
    tasks:
      one: {taskInfo: {name: one}, componentRef: {name: comp-sleep}}
      two: {taskInfo: {name: two}, componentRef: {name: comp-sleep}}
      three: {taskInfo: {name: three}, componentRef: {name: comp-big}}
      join: {taskInfo: {name: join}, componentRef: {name: comp-sleep}, dependentTasks: [one, two, three]}
components:
  comp-sleep: {executorLabel: exec-sleep}
  comp-big: {executorLabel: exec-big}
deploymentSpec:
  executors:
    exec-sleep: {container: {image: alpine, command: [sleep, "1"]}}
    exec-big: {container: {image: alpine, command: [big], resources: {resourceCpuRequest: "1500m", resourceMemoryRequest: 1Gi}}}
"#;

#[test]
fn parallelism_limit_and_resources_bound_what_runs() {
    // Parallelism 3, but "three" asks for 1.5 of the 2 CPUs: it runs beside the others (they
    // ask for nothing), and join waits for all three.
    let mut sim = Sim::start(FAN, json!({}), 3);
    assert_eq!(sim.engine.running_count(), 3);
    let trace = sim
        .run(|_| TaskResult::Succeeded(Io::default()))
        .to_string();
    insta::assert_snapshot!("parallelism_3", trace);
    // Parallelism 1: one at a time.
    let mut sim = Sim::start(FAN, json!({}), 1);
    assert_eq!(sim.engine.running_count(), 1);
    sim.run(|_| TaskResult::Succeeded(Io::default()));
}

#[test]
fn a_task_asking_more_than_the_machine_fails_the_run() {
    let yaml = FAN.replace("resourceCpuRequest: \"1500m\"", "resourceCpuRequest: \"8\"");
    let mut sim = Sim::start(&yaml, json!({}), 3);
    let trace = sim
        .run(|_| TaskResult::Succeeded(Io::default()))
        .to_string();
    insta::assert_snapshot!(trace);
}

#[test]
fn a_failure_stops_running_siblings_and_fails_the_run() {
    let mut sim = Sim::start(FAN, json!({}), 2);
    // "one" fails while "three" runs; "two" is queued.
    let one = sim
        .launched
        .iter()
        .position(|l| l.task_path == "one")
        .unwrap();
    let l = sim.launched.remove(one).unwrap();
    sim.send(Event::TaskFinished {
        node: l.node,
        result: TaskResult::Failed("exit code 1".into()),
    });
    let trace = sim.run(|_| TaskResult::Canceled).to_string();
    insta::assert_snapshot!(trace);
}

#[test]
fn cancel_stops_everything_and_ends_canceled() {
    let mut sim = Sim::start(FAN, json!({}), 2);
    sim.send(Event::CancelRequested);
    let trace = sim.run(|_| TaskResult::Canceled).to_string();
    insta::assert_snapshot!(trace);
}

const PLACEHOLDERS: &str = r#"
pipelineInfo: {name: placeholders}
root:
  inputDefinitions:
    parameters:
      name: {parameterType: STRING, defaultValue: world}
      maybe: {parameterType: STRING, isOptional: true}
      ratio: {parameterType: NUMBER_DOUBLE, defaultValue: 1.0}
      flags: {parameterType: LIST, defaultValue: [a, 1]}
  dag:
    tasks:
      produce:
        taskInfo: {name: produce}
        componentRef: {name: comp-produce}
        inputs:
          parameters:
            pipelinechannel--name: {componentInputParameter: name}
            greeting: {runtimeValue: {constant: "hello {{$.inputs.parameters['pipelinechannel--name']}}!"}}
            job: {runtimeValue: {constant: "{{$.pipeline_job_uuid}}/{{$.pipeline_task_name}}"}}
            maybe: {componentInputParameter: maybe}
            ratio: {componentInputParameter: ratio}
            flags: {componentInputParameter: flags}
      consume:
        taskInfo: {name: consume}
        componentRef: {name: comp-consume}
        inputs: {artifacts: {data: {taskOutputArtifact: {producerTask: produce, outputArtifactKey: data}}}}
components:
  comp-produce:
    executorLabel: exec-produce
    inputDefinitions:
      parameters:
        pipelinechannel--name: {parameterType: STRING}
        greeting: {parameterType: STRING}
        job: {parameterType: STRING}
        maybe: {parameterType: STRING, isOptional: true}
        ratio: {parameterType: NUMBER_DOUBLE}
        flags: {parameterType: LIST}
        count: {parameterType: NUMBER_INTEGER, defaultValue: 3}
    outputDefinitions:
      artifacts: {data: {artifactType: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}}}
      parameters: {n: {parameterType: NUMBER_INTEGER}}
  comp-consume:
    executorLabel: exec-consume
    inputDefinitions: {artifacts: {data: {artifactType: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}}}}
deploymentSpec:
  executors:
    exec-produce:
      container:
        image: alpine
        command: [sh, -c]
        args:
          - "{{$.inputs.parameters['greeting']}}"
          - '{"Concat": ["--ratio=", "{{$.inputs.parameters[''ratio'']}}", ",count=", "{{$.inputs.parameters[''count'']}}"]}'
          - '{"IfPresent": {"InputName": "maybe", "Then": ["--maybe", "{{$.inputs.parameters[''maybe'']}}"], "Else": ["--no-maybe"]}}'
          - '{"IfPresent": {"InputName": "greeting", "Then": "--has-greeting"}}'
          - "{{$.inputs.parameters['flags']}}"
          - "{{$.outputs.artifacts['data'].path}}"
          - "{{$.outputs.parameters['n'].output_file}}"
          - "{{$.pipeline_job_name}}/{{$.pipeline_task_name}}/{{$.pipeline_job_uuid}}/{{$.pipeline_root}}"
        env: [{name: GREETING, value: "{{$.inputs.parameters['greeting']}}"}]
    exec-consume:
      container: {image: alpine, command: [cat, "{{$.inputs.artifacts['data'].path}}", "{{$.inputs.artifacts['data'].uri}}"]}
"#;

#[test]
fn placeholders_resolve_in_argv_and_env() {
    let mut sim = Sim::start(PLACEHOLDERS, json!({}), 2);
    let produce = sim.launched[0].clone();
    assert_eq!(
        produce.env,
        vec![("GREETING".to_string(), "hello world!".to_string())]
    );
    assert_eq!(
        produce.executor_input["inputs"]["parameterValues"]["count"],
        json!(3)
    );
    // System placeholders in a constant input (`dsl.PIPELINE_JOB_ID_PLACEHOLDER` as an argument).
    assert_eq!(
        produce.executor_input["inputs"]["parameterValues"]["job"],
        json!("run-1/produce")
    );
    let trace = sim
        .run(|l| {
            if l.task_path == "produce" {
                let files = BTreeMap::from([("n".to_string(), "4".to_string())]);
                TaskResult::Succeeded(
                    coracle_engine::collect_outputs(&l.outputs, None, &files).unwrap(),
                )
            } else {
                TaskResult::Succeeded(Io::default())
            }
        })
        .to_string();
    insta::assert_snapshot!(trace);
    // With the optional input given, IfPresent takes its Then branch.
    let sim = Sim::start(PLACEHOLDERS, json!({"maybe": "yes", "ratio": 0.5}), 2);
    let argv = &sim.launched[0].argv;
    assert_eq!(argv[3..6], ["--ratio=0.5,count=3", "--maybe", "yes"]);
}

const NESTED: &str = r#"
pipelineInfo: {name: nested}
root:
  inputDefinitions: {parameters: {x: {parameterType: NUMBER_INTEGER}}}
  outputDefinitions: {parameters: {Output: {parameterType: NUMBER_INTEGER}}}
  dag:
    outputs: {parameters: {Output: {valueFromParameter: {producerSubtask: after, outputParameterKey: Output}}}}
    tasks:
      inner-pipeline:
        taskInfo: {name: inner-pipeline}
        componentRef: {name: comp-inner-pipeline}
        inputs: {parameters: {v: {componentInputParameter: x}}}
      after:
        taskInfo: {name: after}
        componentRef: {name: comp-add}
        inputs: {parameters: {x: {taskOutputParameter: {producerTask: inner-pipeline, outputParameterKey: Output}}, y: {runtimeValue: {constant: 100}}}}
components:
  comp-inner-pipeline:
    inputDefinitions: {parameters: {v: {parameterType: NUMBER_INTEGER}}}
    outputDefinitions: {parameters: {Output: {parameterType: NUMBER_INTEGER}}}
    dag:
      outputs: {parameters: {Output: {valueFromParameter: {producerSubtask: add, outputParameterKey: Output}}}}
      tasks:
        add:
          taskInfo: {name: add}
          componentRef: {name: comp-add}
          inputs: {parameters: {x: {componentInputParameter: v}, y: {runtimeValue: {constant: 10}}}}
  comp-add:
    executorLabel: exec-add
    inputDefinitions: {parameters: {x: {parameterType: NUMBER_INTEGER}, y: {parameterType: NUMBER_INTEGER}}}
    outputDefinitions: {parameters: {Output: {parameterType: NUMBER_INTEGER}}}
deploymentSpec:
  executors:
    exec-add: {container: {image: alpine, command: [add]}}
"#;

#[test]
fn nested_pipelines_pass_inputs_and_outputs() {
    let mut sim = Sim::start(NESTED, json!({"x": 1}), 2);
    let trace = sim
        .run(|l| {
            let p = &l.executor_input["inputs"]["parameterValues"];
            outputs_of(
                l,
                json!({"Output": p["x"].as_i64().unwrap() + p["y"].as_i64().unwrap()}),
            )
        })
        .to_string();
    insta::assert_snapshot!(trace);
}

#[test]
fn unsupported_features_are_refused_with_their_path() {
    let yaml = ADD_CHAIN.replace(
        "exec-double:\n      container: {image: \"python:3.11\"",
        "exec-double:\n      container: {image: \"argostub/createsnapshot\"",
    );
    assert!(yaml.contains("argostub/createsnapshot"));
    let spec = load(&yaml);
    let args = BTreeMap::from([("a".to_string(), json!(1)), ("b".to_string(), json!(1))]);
    let err = Engine::start(spec, args, config(1))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "deploymentSpec.executors.exec-double.container.image: Kubernetes stand-in executors other than CreatePVC/DeletePVC (argostub/createsnapshot) are not supported by this version of Coracle yet"
    );
}

fn team_pipeline(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/pipelines")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn secret_and_config_map_names_resolve_from_parameters_outputs_and_constants() {
    let mut sim = Sim::start(
        &team_pipeline("secrets.yaml"),
        json!({"secret_name": "team-creds"}),
        1,
    );
    let mut platform = None;
    sim.run(|l| {
        if l.task_path == "pick-secret" {
            outputs_of(l, json!({"Output": "token-of-the-day"}))
        } else {
            platform = Some(l.platform.clone());
            outputs_of(l, json!({"Output": "done"}))
        }
    });
    let platform = platform.expect("use-secrets was launched");
    let env: Vec<(&str, &str, &str)> = platform
        .secret_env
        .iter()
        .map(|e| (e.name.as_str(), e.key.as_str(), e.env_var.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("team-creds", "username", "DB_USER"),
            ("team-creds", "password", "DB_PASSWORD"),
            ("token-of-the-day", "token", "API_TOKEN"),
        ]
    );
    assert_eq!(platform.secret_volumes[0].name, "team-creds");
    assert_eq!(platform.secret_volumes[0].mount_path, "/mnt/creds");
    assert_eq!(platform.config_map_env[0].name, "app-config");
    assert_eq!(platform.config_map_volumes[0].mount_path, "/etc/app");
    assert!(platform.not_applied.is_empty());
}

#[test]
fn create_pvc_is_a_builtin_whose_name_reaches_the_mounts() {
    let mut sim = Sim::start(&team_pipeline("volumes.yaml"), json!({}), 1);
    let mut seen = Vec::new();
    sim.run(|l| {
        seen.push((
            l.task_path.clone(),
            l.builtin.clone(),
            l.argv.is_empty(),
            l.platform
                .pvc_mounts
                .iter()
                .map(|m| format!("{}@{}", m.name, m.mount_path))
                .collect::<Vec<_>>(),
        ));
        match l.task_path.as_str() {
            "createpvc" => outputs_of(l, json!({"name": "demo-run-run-1-data"})),
            "read-message" => outputs_of(l, json!({"content": "hi"})),
            _ => outputs_of(l, json!({})),
        }
    });
    assert_eq!(seen.len(), 4, "{seen:?}");
    let (path, builtin, no_argv, _) = &seen[0];
    assert_eq!(path, "createpvc");
    assert!(no_argv);
    match builtin {
        Some(coracle_engine::Builtin::CreateVolume {
            name,
            size,
            access_modes,
            ..
        }) => {
            assert_eq!(name, "demo-run-run-1-data");
            assert_eq!(size.as_deref(), Some("1Gi"));
            assert_eq!(access_modes, &["ReadWriteOnce"]);
        }
        other => panic!("{other:?}"),
    }
    for (path, _, _, mounts) in &seen[1..3] {
        assert_eq!(mounts, &["demo-run-run-1-data@/data"], "{path}");
    }
    assert_eq!(seen[3].0, "deletepvc");
    assert_eq!(
        seen[3].1,
        Some(coracle_engine::Builtin::DeleteVolume {
            name: "demo-run-run-1-data".into()
        })
    );
}

const CONTROL_FLOW: &str = r#"
pipelineInfo: {name: control-flow}
root:
  inputDefinitions: {parameters: {n: {parameterType: NUMBER_INTEGER, defaultValue: 3}}}
  outputDefinitions: {parameters: {Output: {parameterType: LIST}}}
  dag:
    outputs: {parameters: {Output: {valueFromParameter: {producerSubtask: for-loop-1, outputParameterKey: pipelinechannel--square-Output}}}}
    tasks:
      condition-2:
        taskInfo: {name: condition-2}
        componentRef: {name: comp-condition-2}
        inputs: {parameters: {pipelinechannel--n: {componentInputParameter: n}}}
        triggerPolicy: {condition: "int(inputs.parameter_values['pipelinechannel--n']) > 5"}
      for-loop-1:
        taskInfo: {name: for-loop-1}
        componentRef: {name: comp-for-loop-1}
        dependentTasks: [condition-2]
        parameterIterator: {itemInput: pipelinechannel--loop-item, items: {raw: '[{"a": 1}, {"a": 2}, {"a": 3}]'}}
        iteratorPolicy: {parallelismLimit: 2}
components:
  comp-condition-2:
    inputDefinitions: {parameters: {pipelinechannel--n: {parameterType: NUMBER_INTEGER}}}
    dag:
      tasks:
        big:
          taskInfo: {name: big}
          componentRef: {name: comp-square}
          inputs: {parameters: {x: {componentInputParameter: pipelinechannel--n}}}
  comp-for-loop-1:
    inputDefinitions: {parameters: {pipelinechannel--loop-item: {parameterType: STRUCT}}}
    outputDefinitions: {parameters: {pipelinechannel--square-Output: {parameterType: LIST}}}
    dag:
      outputs: {parameters: {pipelinechannel--square-Output: {valueFromParameter: {producerSubtask: square, outputParameterKey: Output}}}}
      tasks:
        square:
          taskInfo: {name: square}
          componentRef: {name: comp-square}
          inputs:
            parameters:
              x:
                componentInputParameter: pipelinechannel--loop-item
                parameterExpressionSelector: parseJson(string_value)["a"]
          retryPolicy: {maxRetryCount: 1, backoffDuration: 2s, backoffFactor: 2.0, backoffMaxDuration: 3600s}
          cachingOptions: {enableCache: true}
  comp-square:
    executorLabel: exec-square
    inputDefinitions: {parameters: {x: {parameterType: NUMBER_INTEGER}}}
    outputDefinitions: {parameters: {Output: {parameterType: NUMBER_INTEGER}}}
deploymentSpec:
  executors:
    exec-square: {container: {image: alpine, command: [square, "{{$.inputs.parameters['x']}}"]}}
"#;

fn square(l: &Launch) -> TaskResult {
    let x = l.executor_input["inputs"]["parameterValues"]["x"]
        .as_i64()
        .unwrap();
    outputs_of(l, json!({"Output": x * x}))
}

#[test]
fn a_false_condition_skips_its_group_and_loops_collect_in_order() {
    // n = 3: the condition is false, its group is skipped, and the loop after it still runs,
    // two iterations at a time, gathering each iteration's output in iteration order.
    let mut sim = Sim::start(CONTROL_FLOW, json!({}), 4);
    let trace = sim.run(square).to_string();
    insta::assert_snapshot!(trace);
}

#[test]
fn a_failed_attempt_retries_after_its_back_off() {
    let mut sim = Sim::start(CONTROL_FLOW, json!({"n": 1}), 1);
    let mut failed_once = false;
    let trace = sim
        .run(|l| {
            if l.task_path == "for-loop-1/1/square" && !failed_once {
                failed_once = true;
                return TaskResult::Failed("exit code 1".into());
            }
            square(l)
        })
        .to_string();
    assert!(
        trace.contains("retry-after for-loop-1/1/square 2000ms"),
        "{trace}"
    );
    assert!(
        trace.contains("finish Succeeded error=None outputs={Output=[1,4,9]}"),
        "{trace}"
    );
    insta::assert_snapshot!(trace);
}

#[test]
fn a_cache_hit_reuses_outputs_without_a_launch() {
    let mut sim = Sim::start(CONTROL_FLOW, json!({}), 4);
    // Record what the first look-up asked for, then answer it with a hit.
    let Some(Event::CacheChecked { node, .. }) = sim.asked.pop_front() else {
        panic!("no cache look-up")
    };
    let mut outputs = Io::default();
    outputs.parameters.insert("Output".into(), json!(100));
    sim.send(Event::CacheChecked {
        node,
        hit: Some(outputs),
    });
    let trace = sim.run(square).to_string();
    assert!(
        trace.contains("update for-loop-1/0/square Cached outputs={Output=100}"),
        "{trace}"
    );
    assert!(!trace.contains("launch for-loop-1/0/square"), "{trace}");
    assert!(trace.contains("outputs={Output=[100,4,9]}"), "{trace}");
}

const EXIT_HANDLER: &str = r#"
pipelineInfo: {name: exit-handler}
root:
  dag:
    tasks:
      exit-handler-1:
        taskInfo: {name: exit-handler-1}
        componentRef: {name: comp-exit-handler-1}
      cleanup:
        taskInfo: {name: cleanup}
        componentRef: {name: comp-cleanup}
        dependentTasks: [exit-handler-1]
        inputs: {parameters: {status: {taskFinalStatus: {producerTask: exit-handler-1}}}}
        triggerPolicy: {strategy: ALL_UPSTREAM_TASKS_COMPLETED}
components:
  comp-exit-handler-1:
    dag:
      tasks:
        work: {taskInfo: {name: work}, componentRef: {name: comp-work}}
        slow: {taskInfo: {name: slow}, componentRef: {name: comp-work}}
        after-work: {taskInfo: {name: after-work}, componentRef: {name: comp-work}, dependentTasks: [work]}
  comp-work: {executorLabel: exec-work}
  comp-cleanup:
    executorLabel: exec-cleanup
    inputDefinitions: {parameters: {status: {parameterType: TASK_FINAL_STATUS}}}
deploymentSpec:
  executors:
    exec-work: {container: {image: alpine, command: [work]}}
    exec-cleanup: {container: {image: alpine, command: [cleanup, "{{$.inputs.parameters['status']}}"]}}
"#;

#[test]
fn an_exit_handler_runs_after_a_failure_and_sees_it() {
    let mut sim = Sim::start(EXIT_HANDLER, json!({}), 4);
    let trace = sim
        .run(|l| match l.task_path.as_str() {
            "exit-handler-1/work" => TaskResult::Failed("exit code 3".into()),
            "exit-handler-1/slow" => TaskResult::Canceled,
            _ => TaskResult::Succeeded(Io::default()),
        })
        .to_string();
    insta::assert_snapshot!(trace);
}

#[test]
fn a_retried_run_reuses_what_succeeded_and_reruns_the_rest() {
    let mut config = config(4);
    // The first attempt: iteration 0 succeeded, iteration 1 failed twice (attempts 0 and 1).
    let mut done = Io::default();
    done.parameters.insert("Output".into(), json!(1));
    config
        .resume
        .reuse
        .insert("for-loop-1/0/square".into(), done);
    config
        .resume
        .next_attempt
        .insert("for-loop-1/1/square".into(), 2);
    config
        .resume
        .next_attempt
        .insert("for-loop-1/2/square".into(), 1);
    let spec = load(CONTROL_FLOW);
    let args = coracle_spec::resolve_arguments(&spec, &BTreeMap::new()).unwrap();
    let (engine, commands) = Engine::start(spec, args, config).unwrap();
    let mut sim = Sim {
        engine,
        trace: String::new(),
        launched: VecDeque::new(),
        asked: VecDeque::new(),
        cache: Vec::new(),
        paths: BTreeMap::new(),
    };
    sim.record(commands);
    let mut attempts = BTreeMap::new();
    let trace = sim
        .run(|l| {
            attempts.insert(l.task_path.clone(), (l.attempt, l.task_dir.clone()));
            square(l)
        })
        .to_string();
    assert!(
        !attempts.contains_key("for-loop-1/0/square"),
        "a reused task ran again: {trace}"
    );
    assert_eq!(
        attempts["for-loop-1/1/square"],
        (
            2,
            "/data/runs/run-1/tasks/for-loop-1/1/square.retry-2".to_string()
        )
    );
    assert_eq!(attempts["for-loop-1/2/square"].0, 1);
    assert!(
        trace.contains("finish Succeeded error=None outputs={Output=[1,4,9]}"),
        "{trace}"
    );
}

const LOOP_OVER_PARAMETER: &str = r#"
pipelineInfo: {name: loop-over-parameter}
root:
  inputDefinitions: {parameters: {xs: {parameterType: LIST}}}
  dag:
    tasks:
      item-only:
        taskInfo: {name: item-only}
        componentRef: {name: comp-item-only}
        inputs: {parameters: {pipelinechannel--xs: {componentInputParameter: xs}}}
        parameterIterator: {itemInput: pipelinechannel--xs-loop-item, items: {inputParameter: pipelinechannel--xs}}
      with-list:
        taskInfo: {name: with-list}
        componentRef: {name: comp-with-list}
        inputs: {parameters: {pipelinechannel--xs: {componentInputParameter: xs}}}
        parameterIterator: {itemInput: pipelinechannel--xs-loop-item, items: {inputParameter: pipelinechannel--xs}}
components:
  comp-item-only:
    inputDefinitions: {parameters: {pipelinechannel--xs: {parameterType: LIST}, pipelinechannel--xs-loop-item: {parameterType: NUMBER_INTEGER}}}
    dag:
      tasks:
        square:
          taskInfo: {name: square}
          componentRef: {name: comp-square}
          inputs: {parameters: {x: {componentInputParameter: pipelinechannel--xs-loop-item}}}
  comp-with-list:
    inputDefinitions: {parameters: {pipelinechannel--xs: {parameterType: LIST}, pipelinechannel--xs-loop-item: {parameterType: NUMBER_INTEGER}}}
    dag:
      tasks:
        count:
          taskInfo: {name: count}
          componentRef: {name: comp-count}
          inputs: {parameters: {x: {componentInputParameter: pipelinechannel--xs-loop-item}, all: {componentInputParameter: pipelinechannel--xs}}}
  comp-square:
    executorLabel: exec-square
    inputDefinitions: {parameters: {x: {parameterType: NUMBER_INTEGER}}}
    outputDefinitions: {parameters: {Output: {parameterType: NUMBER_INTEGER}}}
  comp-count:
    executorLabel: exec-count
    inputDefinitions: {parameters: {x: {parameterType: NUMBER_INTEGER}, all: {parameterType: LIST}}}
deploymentSpec:
  executors:
    exec-square: {container: {image: alpine, command: [square, "{{$.inputs.parameters['x']}}"]}}
    exec-count: {container: {image: alpine, command: [count, "{{$.inputs.parameters['all']}}"]}}
"#;

#[test]
fn loop_iterations_hold_only_the_inputs_their_tasks_read() {
    // Iterations of a loop over a list parameter must not each hold the whole list (10,000
    // iterations would hold 10,000 copies), unless a task of the body reads it.
    let spec = load(LOOP_OVER_PARAMETER);
    let args: BTreeMap<String, Value> = serde_json::from_value(json!({"xs": [1, 2, 3]})).unwrap();
    let args = coracle_spec::resolve_arguments(&spec, &args).unwrap();
    let (_engine, commands) = Engine::start(spec, args, config(8)).unwrap();
    let mut iterations = BTreeMap::new();
    for c in commands {
        if let Command::Update(u) = c
            && let Some(inputs) = u.inputs
        {
            iterations.insert(u.task_path, inputs);
        }
    }
    for i in 0..3 {
        let only = &iterations[&format!("item-only/{i}")];
        let names: Vec<&str> = only.parameters.keys().map(String::as_str).collect();
        assert_eq!(names, ["pipelinechannel--xs-loop-item"], "item-only/{i}");
        assert_eq!(
            only.parameters["pipelinechannel--xs-loop-item"],
            json!(i + 1)
        );
        let with = &iterations[&format!("with-list/{i}")];
        assert_eq!(
            with.parameters["pipelinechannel--xs"],
            json!([1, 2, 3]),
            "with-list/{i}"
        );
        assert_eq!(
            with.parameters["pipelinechannel--xs-loop-item"],
            json!(i + 1)
        );
    }
    let launched_count = iterations.keys().filter(|p| p.ends_with("/count")).count();
    assert_eq!(
        launched_count,
        3,
        "{:?}",
        iterations.keys().collect::<Vec<_>>()
    );
}
