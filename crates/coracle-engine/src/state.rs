//! The run state machine itself.
//!
//! Node kinds: an executor task (a container), an importer (resolved without a process), a
//! DAG (the root, a nested pipeline, a condition group, one loop iteration) and a loop (a
//! task with an iterator, whose children are its iterations).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use coracle_spec::{
    ArtifactSource, ComponentSpec, Implementation, ParameterInputSpec, ParameterSource,
    PipelineSpec, TaskSpec, TriggerStrategy, value,
};
use serde_json::{Map, Value, json};

use crate::resolve::{self, TaskContext};
use crate::{
    ArtifactValue, Command, Error, Event, Io, Launch, NodeId, Resources, RunConfig, RunFinished,
    RunState, TaskPlatform, TaskResult, TaskState, TaskUpdate, condition, platform,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Executor,
    Importer,
    Dag,
    Loop,
}

/// What a loop iterates over, once its inputs are known.
#[derive(Debug, Default)]
struct LoopState {
    /// The item input name of each iteration (`itemInput`).
    item_input: String,
    items: Vec<LoopItem>,
    /// Iterations started so far (they start in order).
    started: usize,
    /// At most this many iterations at once; 0 = no limit.
    limit: usize,
    /// The loop's inputs that the tasks of an iteration read, given to every iteration
    /// (without the item list itself unless a task reads it, so that N iterations do not
    /// hold N copies of the list).
    shared: Io,
}

#[derive(Debug, Clone)]
enum LoopItem {
    Parameter(Value),
    Artifact(ArtifactValue),
}

#[derive(Debug)]
struct Node {
    path: String,
    name: String,
    /// Key of the task in its parent DAG (`None` for the root and loop iterations).
    task_key: Option<String>,
    parent: Option<NodeId>,
    component: String,
    kind: Kind,
    state: TaskState,
    attempt: u32,
    inputs: Io,
    outputs: Io,
    error: Option<String>,
    /// DAG and loop nodes: task key (or iteration index) → child, in order.
    children: BTreeMap<String, NodeId>,
    /// Children not yet in a terminal state.
    open_children: usize,
    /// Siblings this node waits for.
    upstream: Vec<NodeId>,
    /// Siblings waiting for this node.
    downstream: Vec<NodeId>,
    /// Upstream siblings not yet finished.
    waiting: usize,
    resources: Resources,
    looping: Option<LoopState>,
    /// Outputs taken over from an earlier attempt of the run.
    reused: bool,
}

/// The state of one run. See the crate documentation.
pub struct Engine {
    spec: Arc<PipelineSpec>,
    config: RunConfig,
    nodes: Vec<Node>,
    /// Executor tasks whose inputs are resolved, waiting for a slot, in readiness order.
    queue: VecDeque<Box<Launch>>,
    running: BTreeSet<NodeId>,
    /// Tasks waiting out a retry back-off.
    backing_off: BTreeSet<NodeId>,
    /// Launches waiting for the answer of a cache look-up.
    cache_pending: BTreeMap<NodeId, Box<Launch>>,
    in_use: Resources,
    /// Why the run is failing (the first failure), once a task failed.
    failure: Option<String>,
    canceling: bool,
    result: Option<RunState>,
}

impl Engine {
    /// Plans the run and returns the first commands. `arguments` are the root's input
    /// parameters, already checked by `coracle_spec::resolve_arguments`.
    pub fn start(
        spec: Arc<PipelineSpec>,
        arguments: BTreeMap<String, Value>,
        mut config: RunConfig,
    ) -> Result<(Engine, Vec<Command>), Error> {
        check_supported(&spec)?;
        config.parallelism = config.parallelism.max(1);
        let mut engine = Engine {
            spec,
            config,
            nodes: Vec::new(),
            queue: VecDeque::new(),
            running: BTreeSet::new(),
            backing_off: BTreeSet::new(),
            cache_pending: BTreeMap::new(),
            in_use: Resources::default(),
            failure: None,
            canceling: false,
            result: None,
        };
        let root = engine.add_node(
            None,
            None,
            "root".into(),
            String::new(),
            "root".into(),
            Kind::Dag,
        );
        engine.nodes[root].inputs.parameters = arguments;
        engine.nodes[root].state = TaskState::Running;
        let mut out = Vec::new();
        let mut finished = VecDeque::new();
        engine.expand(root, &mut out, &mut finished);
        engine.settle(finished, &mut out);
        engine.after_event(&mut out);
        Ok((engine, out))
    }

    /// Advances the run by one event.
    pub fn handle(&mut self, event: Event) -> Vec<Command> {
        let mut out = Vec::new();
        if self.result.is_some() {
            return out;
        }
        match event {
            Event::TaskFinished { node, result } => self.task_finished(node, result, &mut out),
            Event::RetryDue { node } => self.retry_due(node, &mut out),
            Event::CacheChecked { node, hit } => self.cache_checked(node, hit, &mut out),
            Event::CancelRequested => self.cancel_run(&mut out),
        }
        self.after_event(&mut out);
        out
    }

    /// The run's state: `Running` until a `Finish` command was given.
    pub fn run_state(&self) -> RunState {
        self.result.unwrap_or(RunState::Running)
    }

    /// How many executor tasks are running now.
    pub fn running_count(&self) -> usize {
        self.running.len()
    }

    fn add_node(
        &mut self,
        parent: Option<NodeId>,
        task_key: Option<String>,
        name: String,
        path: String,
        component: String,
        kind: Kind,
    ) -> NodeId {
        let id = self.nodes.len();
        self.nodes.push(Node {
            path,
            name,
            task_key,
            parent,
            component,
            kind,
            state: TaskState::Pending,
            attempt: 0,
            inputs: Io::default(),
            outputs: Io::default(),
            error: None,
            children: BTreeMap::new(),
            open_children: 0,
            upstream: Vec::new(),
            downstream: Vec::new(),
            waiting: 0,
            resources: Resources::default(),
            looping: None,
            reused: false,
        });
        if let Some(parent) = parent {
            self.nodes[parent].open_children += 1;
        }
        let path = &self.nodes[id].path;
        // A leaf that succeeded in an earlier attempt of the run keeps that record;
        // none of its updates in this attempt are to be written over it.
        if matches!(kind, Kind::Executor | Kind::Importer)
            && self.config.resume.reuse.contains_key(path)
        {
            self.nodes[id].reused = true;
        }
        let path = &self.nodes[id].path;
        if let Some(attempt) = self.config.resume.next_attempt.get(path) {
            self.nodes[id].attempt = *attempt;
        }
        id
    }

    fn component_of(&self, node: NodeId) -> &ComponentSpec {
        let n = &self.nodes[node];
        if n.parent.is_none() {
            &self.spec.root
        } else {
            &self.spec.components[&n.component]
        }
    }

    fn task_spec(&self, node: NodeId) -> Option<&TaskSpec> {
        let n = &self.nodes[node];
        let parent = n.parent?;
        let dag = self.component_of(parent).dag.as_ref()?;
        dag.tasks.get(n.task_key.as_ref()?)
    }

    fn strategy_completed(&self, node: NodeId) -> bool {
        self.task_spec(node)
            .and_then(|t| t.trigger_policy.as_ref())
            .and_then(|p| p.strategy)
            == Some(TriggerStrategy::AllUpstreamTasksCompleted)
    }

    fn update(&self, node: NodeId, with_inputs: bool, with_outputs: bool) -> Command {
        let n = &self.nodes[node];
        Command::Update(TaskUpdate {
            node,
            task_path: n.path.clone(),
            name: n.name.clone(),
            component: n.component.clone(),
            parent_path: n
                .parent
                .map(|p| self.nodes[p].path.clone())
                .filter(|p| !p.is_empty()),
            is_dag: matches!(n.kind, Kind::Dag | Kind::Loop),
            attempt: n.attempt,
            state: n.state,
            inputs: with_inputs.then(|| n.inputs.clone()),
            outputs: with_outputs.then(|| n.outputs.clone()),
            error: n.error.clone(),
            reused: n.reused,
        })
    }

    /// Creates the nodes of a DAG node's tasks and starts those with nothing to wait for.
    fn expand(
        &mut self,
        dag_node: NodeId,
        out: &mut Vec<Command>,
        finished: &mut VecDeque<NodeId>,
    ) {
        let spec = Arc::clone(&self.spec);
        let component = if self.nodes[dag_node].parent.is_none() {
            &spec.root
        } else {
            &spec.components[&self.nodes[dag_node].component]
        };
        let Some(dag) = component.dag.as_ref() else {
            return;
        };
        let prefix = self.nodes[dag_node].path.clone();
        for (key, task) in &dag.tasks {
            let child = self.add_child(dag_node, &prefix, key, task);
            out.push(self.update(child, false, false));
        }
        let children: Vec<(String, NodeId)> = self.nodes[dag_node]
            .children
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (key, child) in &children {
            let upstream: Vec<NodeId> = dag.tasks[key]
                .upstream_tasks()
                .into_iter()
                .filter_map(|k| self.nodes[dag_node].children.get(k).copied())
                .collect();
            for up in &upstream {
                self.nodes[*up].downstream.push(*child);
            }
            self.nodes[*child].waiting = upstream.len();
            self.nodes[*child].upstream = upstream;
        }
        for (_, child) in children {
            if self.nodes[child].waiting == 0 {
                self.make_ready(child, out, finished);
            }
        }
        if self.nodes[dag_node].open_children == 0 && !self.nodes[dag_node].state.is_terminal() {
            self.finish_group(dag_node, out, finished);
        }
    }

    /// Creates the node of `task` (key `key`) in the DAG node `dag_node` whose path is `prefix`.
    fn add_child(&mut self, dag_node: NodeId, prefix: &str, key: &str, task: &TaskSpec) -> NodeId {
        let kind = if task.parameter_iterator.is_some() || task.artifact_iterator.is_some() {
            Kind::Loop
        } else {
            match self.spec.components[&task.component_ref.name].implementation() {
                Some(Implementation::Dag(_)) => Kind::Dag,
                Some(Implementation::Executor(label))
                    if self
                        .spec
                        .deployment_spec
                        .executors
                        .get(label)
                        .is_some_and(|e| e.importer.is_some()) =>
                {
                    Kind::Importer
                }
                _ => Kind::Executor,
            }
        };
        let path = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}/{key}")
        };
        let name = if task.task_info.name.is_empty() {
            key.to_string()
        } else {
            task.task_info.name.clone()
        };
        let child = self.add_node(
            Some(dag_node),
            Some(key.to_string()),
            name,
            path,
            task.component_ref.name.clone(),
            kind,
        );
        self.nodes[dag_node].children.insert(key.to_string(), child);
        child
    }

    /// A DAG that will not run (its condition was not met, or it was skipped): records each
    /// task inside it, at any depth, as SKIPPED, so the run shows the branch not taken. Loop
    /// bodies are not entered: which iterations there would have been is not known.
    fn skip_inside(&mut self, dag_node: NodeId, reason: &str, out: &mut Vec<Command>) {
        let spec = Arc::clone(&self.spec);
        let Some(dag) = spec.components[&self.nodes[dag_node].component]
            .dag
            .as_ref()
        else {
            return;
        };
        let prefix = self.nodes[dag_node].path.clone();
        for (key, task) in &dag.tasks {
            let child = self.add_child(dag_node, &prefix, key, task);
            // Never started, so nothing waits for it to end.
            self.nodes[dag_node].open_children -= 1;
            self.nodes[child].state = TaskState::Skipped;
            self.nodes[child].error = Some(reason.to_string());
            out.push(self.update(child, false, false));
            if self.nodes[child].kind == Kind::Dag {
                self.skip_inside(child, reason, out);
            }
        }
    }

    /// All upstream tasks are done: start the node, or skip it.
    fn make_ready(
        &mut self,
        node: NodeId,
        out: &mut Vec<Command>,
        finished: &mut VecDeque<NodeId>,
    ) {
        if self.canceling {
            let reason = "the run was canceled before this task started".to_string();
            self.end_node(node, TaskState::Canceled, Some(reason), out, finished);
            return;
        }
        // Exit handlers and `ignore_upstream_failure()` run once upstream tasks ended, however
        // they ended; other tasks need them to have succeeded (or been skipped).
        let completed_is_enough = self.strategy_completed(node);
        if !completed_is_enough {
            let blocked = self.nodes[node]
                .upstream
                .iter()
                .find(|u| {
                    matches!(
                        self.nodes[**u].state,
                        TaskState::Failed | TaskState::Canceled
                    )
                })
                .copied();
            if let Some(up) = blocked {
                let reason = format!(
                    "not run: upstream task \"{}\" did not succeed",
                    self.nodes[up].name
                );
                self.end_node(node, TaskState::Skipped, Some(reason), out, finished);
                return;
            }
            if self.failure.is_some() {
                self.end_node(
                    node,
                    TaskState::Skipped,
                    Some("not run: the run is failing".into()),
                    out,
                    finished,
                );
                return;
            }
        }
        let inputs = match self.resolve_inputs(node) {
            Ok(inputs) => inputs,
            Err(e) => {
                self.fail_node(
                    node,
                    format!("failed to resolve inputs: {e}"),
                    out,
                    finished,
                );
                return;
            }
        };
        self.nodes[node].inputs = inputs;
        if let Some(condition) = self
            .task_spec(node)
            .and_then(|t| t.trigger_policy.as_ref())
            .and_then(|p| p.condition.clone())
            && !condition.is_empty()
        {
            match condition::evaluate_condition(&condition, &self.nodes[node].inputs.parameters) {
                Ok(true) => {}
                Ok(false) => {
                    let reason = format!("condition not met: {condition}");
                    self.end_node(node, TaskState::Skipped, Some(reason), out, finished);
                    return;
                }
                Err(e) => {
                    self.fail_node(node, e, out, finished);
                    return;
                }
            }
        }
        let leaf = matches!(self.nodes[node].kind, Kind::Executor | Kind::Importer);
        if let Some(outputs) = self
            .config
            .resume
            .reuse
            .get(&self.nodes[node].path)
            .filter(|_| leaf)
        {
            self.nodes[node].outputs = outputs.clone();
            self.nodes[node].reused = true;
            self.end_node(node, TaskState::Succeeded, None, out, finished);
            return;
        }
        match self.nodes[node].kind {
            Kind::Dag => {
                self.nodes[node].state = TaskState::Running;
                out.push(self.update(node, true, false));
                self.expand(node, out, finished);
            }
            Kind::Loop => match self.loop_items(node) {
                Ok(state) => {
                    self.nodes[node].state = TaskState::Running;
                    self.nodes[node].looping = Some(state);
                    out.push(self.update(node, true, false));
                    self.start_iterations(node, out, finished);
                }
                Err(e) => self.fail_node(node, e, out, finished),
            },
            Kind::Importer => match self.import(node) {
                Ok(outputs) => {
                    self.nodes[node].outputs = outputs;
                    self.end_node(node, TaskState::Succeeded, None, out, finished);
                }
                Err(e) => self.fail_node(node, e, out, finished),
            },
            Kind::Executor => self.enqueue(node, out, finished),
        }
    }

    fn enqueue(&mut self, node: NodeId, out: &mut Vec<Command>, finished: &mut VecDeque<NodeId>) {
        match self.build_launch(node) {
            Ok(launch) => {
                self.nodes[node].resources = launch.resources;
                match self.cache_material(node, &launch) {
                    // A first attempt of a cacheable task asks the cache before it queues.
                    Some(material) if self.nodes[node].attempt == 0 => {
                        self.cache_pending.insert(node, Box::new(launch));
                        let max_staleness_s = self
                            .task_spec(node)
                            .and_then(|t| t.caching_options.as_ref())
                            .and_then(|c| c.max_cache_staleness_seconds);
                        out.push(Command::CheckCache {
                            node,
                            material,
                            max_staleness_s,
                        });
                    }
                    _ => self.queue.push_back(Box::new(launch)),
                }
            }
            Err(e) => self.fail_node(node, e, out, finished),
        }
    }

    /// What determines a task's outputs, when its result may come from the cache: the
    /// executor (image, command, args, env), the resolved inputs (artifacts by URI: the
    /// edge replaces each with a digest of its content), the declared outputs and any
    /// `cacheKey`. `None` when caching is off for the task or the run.
    fn cache_material(&self, node: NodeId, launch: &Launch) -> Option<Value> {
        if !self.config.cache_enabled {
            return None;
        }
        let options = self.task_spec(node)?.caching_options.as_ref()?;
        // Creating or deleting a volume is a side effect, never a cached result.
        if !options.enable_cache || launch.builtin.is_some() {
            return None;
        }
        let n = &self.nodes[node];
        let component = &self.spec.components[&n.component];
        let label = component.executor_label.as_deref().unwrap_or_default();
        let container = self.spec.deployment_spec.executors[label]
            .container
            .as_ref()?;
        let artifacts: Map<String, Value> = n
            .inputs
            .artifacts
            .iter()
            .map(|(k, list)| {
                (
                    k.clone(),
                    Value::Array(
                        list.iter()
                            // The task reads the metadata too: a change in it is a new input.
                            .map(|a| {
                                json!({"uri": a.uri, "type": a.schema_title, "metadata": a.metadata})
                            })
                            .collect(),
                    ),
                )
            })
            .collect();
        let outputs: Map<String, Value> = component
            .output_parameters()
            .map(|(k, p)| (k.clone(), json!(p.parameter_type.as_str())))
            .chain(
                component
                    .output_artifacts()
                    .map(|(k, a)| (k.clone(), json!(a.artifact_type.schema_title))),
            )
            .collect();
        let platform = &launch.platform;
        let volumes = |list: &[crate::VolumeFrom]| -> Vec<Value> {
            list.iter().map(|v| json!([v.name, v.mount_path])).collect()
        };
        let env_from = |list: &[crate::EnvFrom]| -> Vec<Value> {
            list.iter()
                .map(|e| json!([e.name, e.key, e.env_var]))
                .collect()
        };
        let mut material = json!({
            "image": container.image,
            "command": container.command,
            "args": container.args,
            "env": container.env.iter().map(|e| json!([e.name, e.value])).collect::<Vec<_>>(),
            "parameters": n.inputs.parameters,
            "artifacts": artifacts,
            "outputs": outputs,
            "cacheKey": options.cache_key,
        });
        // What the task is given by name (volumes, secrets, config maps) is part of what it
        // reads; pipelines without such settings keep the keys they had.
        if *platform != TaskPlatform::default() {
            material["platform"] = json!({
                "pvcs": volumes(&platform.pvc_mounts),
                "secretVolumes": volumes(&platform.secret_volumes),
                "configMapVolumes": volumes(&platform.config_map_volumes),
                "secretEnv": env_from(&platform.secret_env),
                "configMapEnv": env_from(&platform.config_map_env),
                "fieldPathEnv": platform.field_path_env,
                "labels": platform.labels,
                "annotations": platform.annotations,
            });
        }
        Some(material)
    }

    fn cache_checked(&mut self, node: NodeId, hit: Option<Io>, out: &mut Vec<Command>) {
        let Some(launch) = self.cache_pending.remove(&node) else {
            return;
        };
        let mut finished = VecDeque::new();
        if self.canceling {
            let reason = "the run was canceled before this task started".to_string();
            self.end_node(node, TaskState::Canceled, Some(reason), out, &mut finished);
        } else if self.failure.is_some() && !self.strategy_completed(node) {
            self.end_node(
                node,
                TaskState::Skipped,
                Some("not run: the run is failing".into()),
                out,
                &mut finished,
            );
        } else if let Some(outputs) = hit {
            self.nodes[node].outputs = outputs;
            self.end_node(node, TaskState::Cached, None, out, &mut finished);
        } else {
            self.queue.push_back(launch);
        }
        self.settle(finished, out);
    }

    fn resolve_inputs(&self, node: NodeId) -> Result<Io, String> {
        let task = self.task_spec(node).expect("task nodes have a task spec");
        let parent = &self.nodes[self.nodes[node].parent.expect("task nodes have a parent")];
        let sibling = |key: &str| -> Result<&Node, String> {
            let id = parent
                .children
                .get(key)
                .ok_or_else(|| format!("producer task \"{key}\" not found"))?;
            Ok(&self.nodes[*id])
        };
        let mut io = Io::default();
        let mut constants = Vec::new();
        for (key, input) in &task.inputs.parameters {
            let value = match input.source() {
                Ok(ParameterSource::ComponentInput(name)) => {
                    parent.inputs.parameters.get(name).cloned()
                }
                Ok(ParameterSource::TaskOutput {
                    producer_task,
                    output_key,
                }) => {
                    let producer = sibling(producer_task)?;
                    match producer.outputs.parameters.get(output_key) {
                        Some(v) => Some(v.clone()),
                        // A skipped producer (a branch not taken) leaves the input unset.
                        None if producer.state == TaskState::Skipped => None,
                        None => {
                            return Err(format!(
                                "input \"{key}\": task \"{}\" has no output parameter \"{output_key}\"",
                                producer.name
                            ));
                        }
                    }
                }
                Ok(ParameterSource::TaskFinalStatus { producer_task }) => {
                    Some(self.final_status(sibling(producer_task)?))
                }
                Ok(ParameterSource::Constant(v)) => {
                    constants.push((key, v));
                    continue;
                }
                Err(_) => return Err(format!("input \"{key}\": no value source")),
            };
            let value = match (value, &input.parameter_expression_selector) {
                (Some(v), Some(selector)) if !selector.is_empty() => Some(
                    condition::select(selector, &v).map_err(|e| format!("input \"{key}\": {e}"))?,
                ),
                (v, _) => v,
            };
            if let Some(v) = value {
                io.parameters.insert(key.clone(), v);
            }
        }
        let this = &self.nodes[node];
        let task_uuid = resolve::task_uuid(&self.config.run_id, &this.path);
        let system = |p| resolve::system_value(&self.config, &this.name, &task_uuid, p);
        for (key, constant) in constants {
            let v = match constant {
                Value::String(s) if s.contains("{{$") => Value::String(
                    resolve::interpolate_constant(s, &io.parameters, &system)
                        .map_err(|e| format!("input \"{key}\": {e}"))?,
                ),
                other => other.clone(),
            };
            io.parameters.insert(key.clone(), v);
        }
        for (key, input) in &task.inputs.artifacts {
            let list = match input.source() {
                Ok(ArtifactSource::ComponentInput(name)) => {
                    parent.inputs.artifacts.get(name).cloned()
                }
                Ok(ArtifactSource::TaskOutput {
                    producer_task,
                    output_key,
                }) => {
                    let producer = sibling(producer_task)?;
                    match producer.outputs.artifacts.get(output_key) {
                        Some(list) => Some(list.clone()),
                        None if producer.state == TaskState::Skipped => None,
                        None => {
                            return Err(format!(
                                "input \"{key}\": task \"{}\" has no output artifact \"{output_key}\"",
                                producer.name
                            ));
                        }
                    }
                }
                Err(_) => return Err(format!("input \"{key}\": no artifact source")),
            };
            if let Some(list) = list {
                io.artifacts.insert(key.clone(), list);
            }
        }
        // Declared types and defaults of the component.
        let component = &self.spec.components[&task.component_ref.name];
        for (name, param) in component.input_parameters() {
            match io.parameters.get(name) {
                Some(Value::Null) if param.is_optional => {}
                Some(v) => {
                    let v = value::coerce(param.parameter_type, v)
                        .map_err(|e| format!("input \"{name}\": {e}"))?;
                    io.parameters.insert(name.clone(), v);
                }
                None => match &param.default_value {
                    Some(default) => {
                        let v = value::coerce(param.parameter_type, default)
                            .map_err(|e| format!("input \"{name}\" default: {e}"))?;
                        io.parameters.insert(name.clone(), v);
                    }
                    None if param.is_optional => {}
                    // A loop's item input is set per iteration, not here.
                    None if self.nodes[node].kind == Kind::Loop => {}
                    None => return Err(format!("required input \"{name}\" has no value")),
                },
            }
        }
        if self.nodes[node].kind != Kind::Loop {
            for (name, artifact) in component.input_artifacts() {
                if !io.artifacts.contains_key(name) && !artifact.is_optional {
                    return Err(format!("required input artifact \"{name}\" has no value"));
                }
            }
        }
        Ok(io)
    }

    /// The value a `PipelineTaskFinalStatus` input receives, as the KFP backend gives it.
    fn final_status(&self, producer: &Node) -> Value {
        let state = match producer.state {
            TaskState::Succeeded | TaskState::Cached => "COMPLETE",
            TaskState::Failed => "FAILED",
            TaskState::Canceled => "CANCELED",
            TaskState::Skipped => "SKIPPED",
            TaskState::Pending | TaskState::Running => "RUNNING",
        };
        let error = match (&producer.error, producer.state) {
            (Some(message), TaskState::Failed) => json!({"code": 1, "message": message}),
            _ => json!({}),
        };
        json!({
            "state": state,
            "pipelineJobResourceName": self.config.run_name,
            "pipelineTaskName": producer.name,
            "error": error,
        })
    }

    /// What a loop node iterates over.
    fn loop_items(&self, node: NodeId) -> Result<LoopState, String> {
        let task = self.task_spec(node).expect("loop nodes have a task spec");
        let inputs = &self.nodes[node].inputs;
        let limit = task
            .iterator_policy
            .as_ref()
            .and_then(|p| p.get("parallelismLimit"))
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        if let Some(iterator) = &task.parameter_iterator {
            let item_input = iterator
                .get("itemInput")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let items = iterator
                .get("items")
                .ok_or("the parameter iterator has no items")?;
            let list = if let Some(raw) = items.get("raw") {
                match raw {
                    Value::String(text) => serde_json::from_str::<Value>(text)
                        .map_err(|e| format!("the loop's raw items are not a JSON list: {e}"))?,
                    other => other.clone(),
                }
            } else if let Some(name) = items.get("inputParameter").and_then(Value::as_str) {
                match inputs.parameters.get(name) {
                    Some(Value::String(text)) => serde_json::from_str::<Value>(text)
                        .map_err(|e| format!("loop input \"{name}\" is not a JSON list: {e}"))?,
                    Some(other) => other.clone(),
                    None => return Err(format!("loop input \"{name}\" has no value")),
                }
            } else {
                return Err(
                    "the parameter iterator names neither raw items nor an input parameter".into(),
                );
            };
            let Value::Array(list) = value::canonical(list) else {
                return Err("the loop's items are not a list".into());
            };
            return Ok(LoopState {
                item_input,
                items: list.into_iter().map(LoopItem::Parameter).collect(),
                started: 0,
                limit,
                shared: self.iteration_inputs(node),
            });
        }
        let iterator = task
            .artifact_iterator
            .as_ref()
            .expect("loop nodes have an iterator");
        let item_input = iterator
            .get("itemInput")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let name = iterator
            .pointer("/items/inputArtifact")
            .and_then(Value::as_str)
            .ok_or("the artifact iterator names no input artifact")?;
        let list = inputs.artifacts.get(name).cloned().unwrap_or_default();
        Ok(LoopState {
            item_input,
            items: list.into_iter().map(LoopItem::Artifact).collect(),
            started: 0,
            limit,
            shared: self.iteration_inputs(node),
        })
    }

    /// The inputs of loop `node` that the tasks of its body read.
    fn iteration_inputs(&self, node: NodeId) -> Io {
        let n = &self.nodes[node];
        let mut shared = Io::default();
        let Some(dag) = self.spec.components[&n.component].dag.as_ref() else {
            return shared;
        };
        for task in dag.tasks.values() {
            for input in task.inputs.parameters.values() {
                if let Ok(ParameterSource::ComponentInput(name)) = input.source()
                    && let Some(v) = n.inputs.parameters.get(name)
                {
                    shared.parameters.insert(name.to_string(), v.clone());
                }
            }
            for input in task.inputs.artifacts.values() {
                if let Ok(ArtifactSource::ComponentInput(name)) = input.source()
                    && let Some(list) = n.inputs.artifacts.get(name)
                {
                    shared.artifacts.insert(name.to_string(), list.clone());
                }
            }
        }
        shared
    }

    /// Starts loop iterations while the loop's parallelism limit allows.
    fn start_iterations(
        &mut self,
        node: NodeId,
        out: &mut Vec<Command>,
        finished: &mut VecDeque<NodeId>,
    ) {
        loop {
            let Some(state) = &self.nodes[node].looping else {
                return;
            };
            // Only started iterations are children, so the open ones are those running.
            let running = self.nodes[node].open_children;
            if state.started >= state.items.len() || (state.limit > 0 && running >= state.limit) {
                break;
            }
            if self.failure.is_some() || self.canceling {
                break;
            }
            let index = state.started;
            let item = state.items[index].clone();
            let item_input = state.item_input.clone();
            let mut inputs = state.shared.clone();
            if let Some(state) = &mut self.nodes[node].looping {
                state.started += 1;
            }
            match item {
                LoopItem::Parameter(v) => {
                    inputs.parameters.insert(item_input, v);
                }
                LoopItem::Artifact(a) => {
                    inputs.artifacts.insert(item_input, vec![a]);
                }
            }
            let path = format!("{}/{index}", self.nodes[node].path);
            let name = format!("{}-{index}", self.nodes[node].name);
            let component = self.nodes[node].component.clone();
            let child = self.add_node(Some(node), None, name, path, component, Kind::Dag);
            self.nodes[node]
                .children
                .insert(format!("{index:08}"), child);
            self.nodes[child].inputs = inputs;
            self.nodes[child].state = TaskState::Running;
            out.push(self.update(child, true, false));
            self.expand(child, out, finished);
        }
        let state = self.nodes[node].looping.as_ref().expect("loop state");
        let all_started = state.started >= state.items.len();
        if self.nodes[node].open_children == 0
            && (all_started || self.failure.is_some() || self.canceling)
        {
            self.finish_group(node, out, finished);
        }
    }

    /// An importer's output: the artifact at the URI it names, with its metadata.
    fn import(&self, node: NodeId) -> Result<Io, String> {
        let n = &self.nodes[node];
        let component = &self.spec.components[&n.component];
        let label = component.executor_label.as_deref().unwrap_or_default();
        let importer = self.spec.deployment_spec.executors[label]
            .importer
            .as_ref()
            .expect("importer nodes have an importer");
        let uri = match importer.get("artifactUri") {
            Some(source) => {
                if let Some(constant) = source.get("constant") {
                    constant
                        .as_str()
                        .map(str::to_string)
                        .ok_or("the importer's constant URI is not a string")?
                } else if let Some(name) = source.get("runtimeParameter").and_then(Value::as_str) {
                    match n.inputs.parameters.get(name) {
                        Some(Value::String(s)) => s.clone(),
                        _ => {
                            return Err(format!(
                                "the importer's URI input \"{name}\" has no string value"
                            ));
                        }
                    }
                } else {
                    return Err(
                        "the importer's artifactUri has neither constant nor runtimeParameter"
                            .into(),
                    );
                }
            }
            None => return Err("the importer has no artifactUri".into()),
        };
        // A local file URI becomes its path, so the KFP executor's `Artifact.path` works.
        let uri = uri
            .strip_prefix("file://")
            .map(str::to_string)
            .unwrap_or(uri);
        let schema = importer.get("typeSchema");
        let metadata = match importer.get("metadata") {
            Some(Value::Object(map)) => {
                let task_uuid = resolve::task_uuid(&self.config.run_id, &n.path);
                let system = |p| resolve::system_value(&self.config, &n.name, &task_uuid, p);
                let mut resolved = Map::new();
                for (k, v) in map {
                    let v = match v {
                        Value::String(s) if s.contains("{{$") => Value::String(
                            resolve::interpolate_constant(s, &n.inputs.parameters, &system)?,
                        ),
                        other => other.clone(),
                    };
                    resolved.insert(k.clone(), v);
                }
                resolved
            }
            _ => Map::new(),
        };
        let artifact = ArtifactValue {
            name: "artifact".into(),
            uri,
            schema_title: schema
                .and_then(|s| s.get("schemaTitle"))
                .and_then(Value::as_str)
                .unwrap_or("system.Artifact")
                .to_string(),
            schema_version: schema
                .and_then(|s| s.get("schemaVersion"))
                .and_then(Value::as_str)
                .unwrap_or("0.0.1")
                .to_string(),
            metadata,
        };
        let mut io = Io::default();
        io.artifacts.insert("artifact".into(), vec![artifact]);
        Ok(io)
    }

    fn build_launch(&self, node: NodeId) -> Result<Launch, String> {
        let n = &self.nodes[node];
        let component = &self.spec.components[&n.component];
        let label = component.executor_label.as_deref().unwrap_or_default();
        let executor = &self.spec.deployment_spec.executors[label];
        let container = executor
            .container
            .as_ref()
            .ok_or_else(|| format!("executor \"{label}\" is not a container"))?;
        // Each attempt has its own directory (and so its own log).
        let suffix = if n.attempt == 0 {
            String::new()
        } else {
            format!(".retry-{}", n.attempt)
        };
        let task_dir = format!(
            "{}/tasks/{}{suffix}",
            self.config.run_dir.trim_end_matches('/'),
            n.path
        );
        let outputs = resolve::plan_outputs(component, &self.config, &n.path, &task_dir);
        let executor_input = resolve::executor_input(&n.inputs, &outputs);
        let ctx = TaskContext {
            config: &self.config,
            task_name: &n.name,
            task_uuid: resolve::task_uuid(&self.config.run_id, &n.path),
            inputs: &n.inputs,
            outputs: &outputs,
            executor_input,
        };
        let builtin = platform::builtin(
            &container.image,
            &n.inputs.parameters,
            &format!(
                "{}-{}",
                self.config.run_name,
                self.config.run_id.get(..8).unwrap_or(&self.config.run_id)
            ),
        )
        .transpose()?;
        let (argv, env) = if builtin.is_some() {
            (Vec::new(), Vec::new())
        } else {
            ctx.command_line(container)?
        };
        if argv.is_empty() && builtin.is_none() {
            return Err(format!("executor \"{label}\" has an empty command"));
        }
        let (resources, limits) = ctx.resources(container)?;
        let capacity = self.config.capacity;
        if resources.cpu_millis > capacity.cpu_millis {
            return Err(format!(
                "the task requests {} CPU but this machine has {}",
                resources.cpu_millis as f64 / 1000.0,
                capacity.cpu_millis as f64 / 1000.0
            ));
        }
        if resources.memory_bytes > capacity.memory_bytes {
            return Err(format!(
                "the task requests {} MiB of memory but this machine has {} MiB",
                resources.memory_bytes >> 20,
                capacity.memory_bytes >> 20
            ));
        }
        if resources.gpus > capacity.gpus {
            return Err(format!(
                "the task requests {} GPU(s) but this machine has {}",
                resources.gpus, capacity.gpus
            ));
        }
        let platform = match self.spec.kubernetes_executor(label) {
            None => TaskPlatform::default(),
            Some(config) => platform::resolve(config, &|source| self.platform_value(node, source))
                .map_err(|e| {
                    format!("platforms.kubernetes.deploymentSpec.executors.{label}: {e}")
                })?,
        };
        // The task's own directory, and where container components write output parameters.
        let mut dirs_to_create = if outputs.parameters.is_empty() {
            vec![task_dir.clone()]
        } else {
            vec![format!("{task_dir}/outputs")]
        };
        if !outputs.artifacts.is_empty() {
            dirs_to_create.push(format!(
                "{}/{}/{}",
                self.config.pipeline_root.trim_end_matches('/'),
                self.config.run_id,
                n.path
            ));
        }
        let executor_input = ctx.executor_input;
        Ok(Launch {
            node,
            task_path: n.path.clone(),
            attempt: n.attempt,
            image: container.image.clone(),
            argv,
            env,
            task_dir,
            executor_input,
            outputs,
            dirs_to_create,
            resources,
            limits,
            platform,
            builtin,
        })
    }

    /// The value of a Kubernetes setting's name parameter for task `node`: an input of the
    /// enclosing DAG (also under its `pipelinechannel--` name), an output of a sibling task,
    /// or a constant.
    fn platform_value(
        &self,
        node: NodeId,
        source: &ParameterInputSpec,
    ) -> Result<Option<Value>, String> {
        let parent = &self.nodes[self.nodes[node].parent.expect("task nodes have a parent")];
        match source.source() {
            Ok(ParameterSource::ComponentInput(name)) => Ok(parent
                .inputs
                .parameters
                .get(name)
                .or_else(|| {
                    parent
                        .inputs
                        .parameters
                        .get(&format!("pipelinechannel--{name}"))
                })
                .cloned()),
            Ok(ParameterSource::TaskOutput {
                producer_task,
                output_key,
            }) => {
                let id = parent
                    .children
                    .get(producer_task)
                    .ok_or_else(|| format!("producer task \"{producer_task}\" not found"))?;
                let producer = &self.nodes[*id];
                match producer.outputs.parameters.get(output_key) {
                    Some(v) => Ok(Some(v.clone())),
                    None if producer.state == TaskState::Skipped => Ok(None),
                    None => Err(format!(
                        "task \"{producer_task}\" has no output parameter \"{output_key}\""
                    )),
                }
            }
            Ok(ParameterSource::Constant(v)) => Ok(Some(v.clone())),
            Ok(ParameterSource::TaskFinalStatus { .. }) => {
                Err("a task's final status cannot name a resource".into())
            }
            Err(_) => Err("a name parameter has no value source".into()),
        }
    }

    /// Launches queued tasks while slots and resources allow; a task that does not fit now
    /// lets smaller ones behind it go first.
    fn schedule(&mut self, out: &mut Vec<Command>) {
        let mut index = 0;
        while index < self.queue.len() && self.running.len() < self.config.parallelism {
            let free = self.config.capacity.minus(&self.in_use);
            if !self.queue[index].resources.fits_within(&free) {
                index += 1;
                continue;
            }
            let launch = self.queue.remove(index).expect("index is in range");
            let node = launch.node;
            self.in_use.add(&launch.resources);
            self.running.insert(node);
            self.nodes[node].state = TaskState::Running;
            self.nodes[node].error = None;
            out.push(self.update(node, true, false));
            out.push(Command::Launch(launch));
        }
    }

    fn task_finished(&mut self, node: NodeId, result: TaskResult, out: &mut Vec<Command>) {
        if node >= self.nodes.len() || !self.running.remove(&node) {
            return; // not a running task of this run: nothing to do
        }
        let r = self.nodes[node].resources;
        self.in_use.subtract(&r);
        let mut finished = VecDeque::new();
        match result {
            TaskResult::Succeeded(outputs) => {
                self.nodes[node].outputs = outputs;
                self.end_node(node, TaskState::Succeeded, None, out, &mut finished);
            }
            TaskResult::Failed(error) => {
                if let Some(delay_ms) = self.retry_delay_ms(node) {
                    // This attempt failed; the next one starts after the back-off.
                    let n = &mut self.nodes[node];
                    n.state = TaskState::Failed;
                    n.error = Some(error);
                    out.push(self.update(node, false, false));
                    let n = &mut self.nodes[node];
                    n.attempt += 1;
                    n.state = TaskState::Pending;
                    n.error = None;
                    out.push(self.update(node, false, false));
                    self.backing_off.insert(node);
                    out.push(Command::RetryAfter { node, delay_ms });
                } else {
                    self.fail_node(node, error, out, &mut finished);
                }
            }
            TaskResult::Canceled => {
                let reason = if self.canceling {
                    "canceled"
                } else {
                    "stopped because another task failed"
                };
                self.end_node(
                    node,
                    TaskState::Canceled,
                    Some(reason.into()),
                    out,
                    &mut finished,
                );
            }
        }
        self.settle(finished, out);
    }

    /// The back-off before the next attempt, if the task's retry policy allows one.
    fn retry_delay_ms(&self, node: NodeId) -> Option<u64> {
        if self.canceling || self.failure.is_some() {
            return None;
        }
        let policy = self.task_spec(node)?.retry_policy.as_ref()?;
        let attempt = self.nodes[node].attempt;
        if i64::from(attempt) >= policy.max_retry_count {
            return None;
        }
        let base = policy
            .backoff_duration
            .as_deref()
            .map(parse_duration_ms)
            .unwrap_or(0.0);
        let factor = policy.backoff_factor.unwrap_or(1.0).max(1.0);
        let max = policy
            .backoff_max_duration
            .as_deref()
            .map(parse_duration_ms)
            .unwrap_or(3_600_000.0);
        let delay = (base * factor.powi(attempt as i32)).min(max);
        Some(delay.max(0.0) as u64)
    }

    fn retry_due(&mut self, node: NodeId, out: &mut Vec<Command>) {
        if !self.backing_off.remove(&node) {
            return;
        }
        let mut finished = VecDeque::new();
        self.enqueue(node, out, &mut finished);
        self.settle(finished, out);
    }

    /// Records a node's end state and queues it for propagation.
    fn end_node(
        &mut self,
        node: NodeId,
        state: TaskState,
        error: Option<String>,
        out: &mut Vec<Command>,
        finished: &mut VecDeque<NodeId>,
    ) {
        let n = &mut self.nodes[node];
        n.state = state;
        n.error = error;
        out.push(self.update(node, false, state.succeeded()));
        if state == TaskState::Skipped
            && self.nodes[node].kind == Kind::Dag
            && self.nodes[node].children.is_empty()
        {
            let reason = format!("not run: \"{}\" was skipped", self.nodes[node].path);
            self.skip_inside(node, &reason, out);
        }
        finished.push_back(node);
    }

    /// A task failed: the run fails, running tasks are stopped and nothing new starts except
    /// what runs whatever happened upstream (exit handlers).
    fn fail_node(
        &mut self,
        node: NodeId,
        error: String,
        out: &mut Vec<Command>,
        finished: &mut VecDeque<NodeId>,
    ) {
        if self.failure.is_none() {
            self.failure = Some(format!(
                "task \"{}\" failed: {error}",
                self.nodes[node].path
            ));
            self.stop_everything(
                TaskState::Skipped,
                "not run: the run is failing",
                out,
                finished,
            );
        }
        self.end_node(node, TaskState::Failed, Some(error), out, finished);
    }

    fn cancel_run(&mut self, out: &mut Vec<Command>) {
        if self.canceling {
            return;
        }
        self.canceling = true;
        let mut finished = VecDeque::new();
        self.stop_everything(
            TaskState::Canceled,
            "the run was canceled before this task started",
            out,
            &mut finished,
        );
        self.settle(finished, out);
    }

    /// Cancels running tasks and ends queued ones (and those waiting to retry) with
    /// `queued_state`. Queued tasks that run whatever happened upstream stay queued unless
    /// the run is being canceled.
    fn stop_everything(
        &mut self,
        queued_state: TaskState,
        reason: &str,
        out: &mut Vec<Command>,
        finished: &mut VecDeque<NodeId>,
    ) {
        for node in self.running.iter().copied().collect::<Vec<_>>() {
            if self.canceling || !self.strategy_completed(node) {
                out.push(Command::Cancel { node });
            }
        }
        let mut kept = VecDeque::new();
        for launch in std::mem::take(&mut self.queue) {
            if !self.canceling && self.strategy_completed(launch.node) {
                kept.push_back(launch);
            } else {
                self.end_node(
                    launch.node,
                    queued_state,
                    Some(reason.to_string()),
                    out,
                    finished,
                );
            }
        }
        self.queue = kept;
        for (node, launch) in std::mem::take(&mut self.cache_pending) {
            if !self.canceling && self.strategy_completed(node) {
                self.cache_pending.insert(node, launch);
            } else {
                self.end_node(node, queued_state, Some(reason.to_string()), out, finished);
            }
        }
        for node in std::mem::take(&mut self.backing_off) {
            let error = self.nodes[node]
                .error
                .clone()
                .unwrap_or_else(|| reason.to_string());
            self.end_node(
                node,
                TaskState::Canceled,
                Some(format!("retry not started: {error}")),
                out,
                finished,
            );
        }
    }

    /// Propagates finished nodes to their downstream siblings and parents, breadth first.
    fn settle(&mut self, mut finished: VecDeque<NodeId>, out: &mut Vec<Command>) {
        while let Some(node) = finished.pop_front() {
            for d in self.nodes[node].downstream.clone() {
                let n = &mut self.nodes[d];
                n.waiting -= 1;
                if n.waiting == 0 && n.state == TaskState::Pending {
                    self.make_ready(d, out, &mut finished);
                }
            }
            let Some(parent) = self.nodes[node].parent else {
                continue;
            };
            self.nodes[parent].open_children -= 1;
            if self.nodes[parent].state.is_terminal() {
                continue;
            }
            if self.nodes[parent].kind == Kind::Loop {
                self.start_iterations(parent, out, &mut finished);
            } else if self.nodes[parent].open_children == 0 {
                self.finish_group(parent, out, &mut finished);
            }
        }
    }

    /// Every child of a DAG or loop node ended: it succeeds (with its outputs) or fails.
    fn finish_group(
        &mut self,
        group: NodeId,
        out: &mut Vec<Command>,
        finished: &mut VecDeque<NodeId>,
    ) {
        let children: Vec<NodeId> = self.nodes[group].children.values().copied().collect();
        let failed = children
            .iter()
            .find(|c| self.nodes[**c].state == TaskState::Failed);
        let canceled = children
            .iter()
            .any(|c| self.nodes[*c].state == TaskState::Canceled);
        let unfinished_loop = self.nodes[group]
            .looping
            .as_ref()
            .is_some_and(|l| l.started < l.items.len());
        let (state, error) = if let Some(f) = failed {
            let f = &self.nodes[*f];
            (
                TaskState::Failed,
                Some(format!(
                    "task \"{}\" failed: {}",
                    f.name,
                    f.error.clone().unwrap_or_default()
                )),
            )
        } else if (canceled || unfinished_loop) && self.canceling {
            (TaskState::Canceled, Some("canceled".to_string()))
        } else if self.failure.is_some() && (canceled || unfinished_loop) {
            (
                TaskState::Failed,
                Some("not all tasks ran: the run is failing".to_string()),
            )
        } else {
            let outputs = if self.nodes[group].kind == Kind::Loop {
                Ok(self.loop_outputs(group))
            } else {
                self.dag_outputs(group)
            };
            match outputs {
                Ok(outputs) => {
                    self.nodes[group].outputs = outputs;
                    (TaskState::Succeeded, None)
                }
                Err(e) => (TaskState::Failed, Some(e)),
            }
        };
        if self.nodes[group].parent.is_none() {
            let n = &mut self.nodes[group];
            n.state = state;
            n.error = error.clone();
            let (run_state, error) = match state {
                TaskState::Succeeded if self.failure.is_none() => (RunState::Succeeded, None),
                TaskState::Canceled => {
                    (RunState::Canceled, Some("the run was canceled".to_string()))
                }
                _ if self.canceling => {
                    (RunState::Canceled, Some("the run was canceled".to_string()))
                }
                _ => (RunState::Failed, self.failure.clone().or(error)),
            };
            self.result = Some(run_state);
            let outputs = if run_state == RunState::Succeeded {
                self.nodes[group].outputs.clone()
            } else {
                Io::default()
            };
            out.push(Command::Finish(RunFinished {
                state: run_state,
                error,
                outputs,
            }));
        } else if state == TaskState::Failed && self.failure.is_none() {
            self.fail_node(group, error.unwrap_or_default(), out, finished);
        } else {
            self.end_node(group, state, error, out, finished);
        }
    }

    fn dag_outputs(&self, dag_node: NodeId) -> Result<Io, String> {
        let component = self.component_of(dag_node);
        let mut io = Io::default();
        let Some(outputs) = component.dag.as_ref().and_then(|d| d.outputs.as_ref()) else {
            return Ok(io);
        };
        let children = &self.nodes[dag_node].children;
        let succeeded = |key: &str| {
            children
                .get(key)
                .map(|c| &self.nodes[*c])
                .filter(|n| n.state.succeeded())
        };
        for (name, spec) in &outputs.parameters {
            let selectors = spec.value_from_parameter.iter().chain(
                spec.value_from_oneof
                    .iter()
                    .flat_map(|o| o.parameter_selectors.iter()),
            );
            let value = selectors
                .filter_map(|s| {
                    succeeded(&s.producer_subtask)
                        .and_then(|n| n.outputs.parameters.get(&s.output_parameter_key))
                })
                .next();
            match value {
                Some(v) => {
                    io.parameters.insert(name.clone(), v.clone());
                }
                // Every branch that could produce it was skipped: the DAG has no such output.
                None if spec.value_from_oneof.is_none()
                    && self.all_producers_skipped(
                        dag_node,
                        spec.value_from_parameter
                            .iter()
                            .map(|s| s.producer_subtask.as_str()),
                    ) => {}
                None => {
                    return Err(format!(
                        "output parameter \"{name}\" has no value: no selected task produced it"
                    ));
                }
            }
        }
        for (name, spec) in &outputs.artifacts {
            let value = spec
                .artifact_selectors
                .iter()
                .filter_map(|s| {
                    succeeded(&s.producer_subtask)
                        .and_then(|n| n.outputs.artifacts.get(&s.output_artifact_key))
                })
                .next();
            match value {
                Some(v) => {
                    io.artifacts.insert(name.clone(), v.clone());
                }
                None if spec.artifact_selectors.len() == 1
                    && self.all_producers_skipped(
                        dag_node,
                        spec.artifact_selectors
                            .iter()
                            .map(|s| s.producer_subtask.as_str()),
                    ) => {}
                None => {
                    return Err(format!(
                        "output artifact \"{name}\" has no value: no selected task produced it"
                    ));
                }
            }
        }
        Ok(io)
    }

    fn all_producers_skipped<'s>(
        &self,
        dag_node: NodeId,
        mut producers: impl Iterator<Item = &'s str>,
    ) -> bool {
        let children = &self.nodes[dag_node].children;
        producers.all(|p| {
            children
                .get(p)
                .is_some_and(|c| self.nodes[*c].state == TaskState::Skipped)
        })
    }

    /// A loop's outputs: each output of its iterations gathered into a list, in iteration
    /// order (`dsl.Collected`).
    fn loop_outputs(&self, loop_node: NodeId) -> Io {
        let mut io = Io::default();
        let component = self.component_of(loop_node);
        let iterations: Vec<&Node> = self.nodes[loop_node]
            .children
            .values()
            .map(|c| &self.nodes[*c])
            .collect();
        for (name, _) in component.output_parameters() {
            let values: Vec<Value> = iterations
                .iter()
                .filter_map(|it| it.outputs.parameters.get(name).cloned())
                .collect();
            io.parameters.insert(name.clone(), Value::Array(values));
        }
        for (name, _) in component.output_artifacts() {
            let list: Vec<ArtifactValue> = iterations
                .iter()
                .flat_map(|it| it.outputs.artifacts.get(name).cloned().unwrap_or_default())
                .collect();
            io.artifacts.insert(name.clone(), list);
        }
        io
    }

    fn after_event(&mut self, out: &mut Vec<Command>) {
        if self.result.is_none() {
            self.schedule(out);
        }
    }
}

/// `"1s"`, `"0.5s"`, `"3600s"` (protobuf Duration in JSON) → milliseconds.
fn parse_duration_ms(text: &str) -> f64 {
    let t = text.trim();
    let number = t.strip_suffix('s').unwrap_or(t);
    number.parse::<f64>().map(|s| s * 1000.0).unwrap_or(0.0)
}

/// What this engine cannot run yet is refused before anything starts, naming where it is.
fn check_supported(spec: &PipelineSpec) -> Result<(), Error> {
    let unsupported = |path: String, what: &str| Error::Unsupported {
        path,
        message: format!("{what} are not supported by this version of Coracle yet"),
    };
    for (label, executor) in &spec.deployment_spec.executors {
        if executor.container.is_none() && executor.importer.is_none() {
            return Err(unsupported(
                format!("deploymentSpec.executors.{label}"),
                "executors other than containers and importers",
            ));
        }
        if let Some(c) = &executor.container {
            let image = c.image.split(':').next().unwrap_or(&c.image);
            if image.starts_with("argostub/")
                && image != "argostub/createpvc"
                && image != "argostub/deletepvc"
            {
                return Err(unsupported(
                    format!("deploymentSpec.executors.{label}.container.image"),
                    &format!(
                        "Kubernetes stand-in executors other than CreatePVC/DeletePVC ({image})"
                    ),
                ));
            }
        }
    }
    Ok(())
}
