//! The run state machine itself.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use coracle_spec::{
    ArtifactSource, ComponentSpec, Implementation, ParameterSource, PipelineSpec, TaskSpec, value,
};
use serde_json::Value;

use crate::resolve::{self, TaskContext};
use crate::{
    Command, Error, Event, Io, Launch, NodeId, Resources, RunConfig, RunFinished, RunState,
    TaskResult, TaskState, TaskUpdate,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Executor,
    Dag,
}

#[derive(Debug)]
struct Node {
    path: String,
    name: String,
    /// Key of the task in its parent DAG (`None` for the root).
    task_key: Option<String>,
    parent: Option<NodeId>,
    component: String,
    kind: Kind,
    state: TaskState,
    attempt: u32,
    inputs: Io,
    outputs: Io,
    error: Option<String>,
    /// DAG nodes: task key → child.
    children: BTreeMap<String, NodeId>,
    /// Siblings this node waits for.
    upstream: Vec<NodeId>,
    /// Siblings waiting for this node.
    downstream: Vec<NodeId>,
    /// Upstream siblings not yet finished.
    waiting: usize,
    resources: Resources,
}

/// The state of one run. See the crate documentation.
pub struct Engine {
    spec: Arc<PipelineSpec>,
    config: RunConfig,
    nodes: Vec<Node>,
    /// Executor tasks whose inputs are resolved, waiting for a slot, in readiness order.
    queue: VecDeque<Box<Launch>>,
    running: BTreeSet<NodeId>,
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
        engine.expand(root, &mut out);
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
            upstream: Vec::new(),
            downstream: Vec::new(),
            waiting: 0,
            resources: Resources::default(),
        });
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
            is_dag: n.kind == Kind::Dag,
            attempt: n.attempt,
            state: n.state,
            inputs: with_inputs.then(|| n.inputs.clone()),
            outputs: with_outputs.then(|| n.outputs.clone()),
            error: n.error.clone(),
        })
    }

    /// Creates the nodes of a DAG node's tasks and starts those with nothing to wait for.
    fn expand(&mut self, dag_node: NodeId, out: &mut Vec<Command>) {
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
            let kind = match spec.components[&task.component_ref.name].implementation() {
                Some(Implementation::Dag(_)) => Kind::Dag,
                _ => Kind::Executor,
            };
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}/{key}")
            };
            let name = if task.task_info.name.is_empty() {
                key.clone()
            } else {
                task.task_info.name.clone()
            };
            let child = self.add_node(
                Some(dag_node),
                Some(key.clone()),
                name,
                path,
                task.component_ref.name.clone(),
                kind,
            );
            self.nodes[dag_node].children.insert(key.clone(), child);
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
        let mut finished = VecDeque::new();
        for (_, child) in children {
            if self.nodes[child].waiting == 0 {
                self.make_ready(child, out, &mut finished);
            }
        }
        self.settle(finished, out);
        if self.nodes[dag_node].children.is_empty() {
            self.finish_dag(dag_node, out, &mut VecDeque::new());
        }
    }

    /// All upstream tasks are done: start the node, or skip it if the run is stopping or an
    /// upstream task did not succeed.
    fn make_ready(
        &mut self,
        node: NodeId,
        out: &mut Vec<Command>,
        finished: &mut VecDeque<NodeId>,
    ) {
        let blocked = self.nodes[node]
            .upstream
            .iter()
            .find(|u| self.nodes[**u].state != TaskState::Succeeded)
            .copied();
        if self.canceling {
            self.end_node(
                node,
                TaskState::Canceled,
                Some("the run was canceled before this task started".into()),
                out,
                finished,
            );
            return;
        }
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
        match self.resolve_inputs(node) {
            Err(e) => {
                self.nodes[node].inputs = Io::default();
                self.fail_node(
                    node,
                    format!("failed to resolve inputs: {e}"),
                    out,
                    finished,
                );
            }
            Ok(inputs) => {
                self.nodes[node].inputs = inputs;
                match self.nodes[node].kind {
                    Kind::Dag => {
                        self.nodes[node].state = TaskState::Running;
                        out.push(self.update(node, true, false));
                        self.expand(node, out);
                    }
                    Kind::Executor => match self.build_launch(node) {
                        Ok(launch) => {
                            self.nodes[node].resources = launch.resources;
                            self.queue.push_back(Box::new(launch));
                        }
                        Err(e) => self.fail_node(node, e, out, finished),
                    },
                }
            }
        }
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
            match input.source() {
                Ok(ParameterSource::ComponentInput(name)) => {
                    if let Some(v) = parent.inputs.parameters.get(name) {
                        io.parameters.insert(key.clone(), v.clone());
                    }
                }
                Ok(ParameterSource::TaskOutput {
                    producer_task,
                    output_key,
                }) => {
                    let producer = sibling(producer_task)?;
                    let v = producer.outputs.parameters.get(output_key).ok_or_else(|| {
                        format!(
                            "input \"{key}\": task \"{}\" has no output parameter \"{output_key}\"",
                            producer.name
                        )
                    })?;
                    io.parameters.insert(key.clone(), v.clone());
                }
                Ok(ParameterSource::Constant(v)) => constants.push((key, v)),
                Ok(ParameterSource::TaskFinalStatus { .. }) | Err(_) => {
                    return Err(format!("input \"{key}\": unsupported parameter source"));
                }
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
                    Some(producer.outputs.artifacts.get(output_key).cloned().ok_or_else(|| {
                        format!("input \"{key}\": task \"{}\" has no output artifact \"{output_key}\"", producer.name)
                    })?)
                }
                Err(_) => return Err(format!("input \"{key}\": unsupported artifact source")),
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
                    None => return Err(format!("required input \"{name}\" has no value")),
                },
            }
        }
        for (name, artifact) in component.input_artifacts() {
            if !io.artifacts.contains_key(name) && !artifact.is_optional {
                return Err(format!("required input artifact \"{name}\" has no value"));
            }
        }
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
        let task_dir = format!(
            "{}/tasks/{}",
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
        let (argv, env) = ctx.command_line(container)?;
        if argv.is_empty() {
            return Err(format!("executor \"{label}\" has an empty command"));
        }
        let resources = ctx.resources(container)?;
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
        })
    }

    /// Launches queued tasks while slots and resources allow; a task that does not fit now
    /// lets smaller ones behind it go first.
    fn schedule(&mut self, out: &mut Vec<Command>) {
        let mut index = 0;
        while index < self.queue.len() && self.running.len() < self.config.parallelism {
            let free = Resources {
                cpu_millis: self
                    .config
                    .capacity
                    .cpu_millis
                    .saturating_sub(self.in_use.cpu_millis),
                memory_bytes: self
                    .config
                    .capacity
                    .memory_bytes
                    .saturating_sub(self.in_use.memory_bytes),
            };
            if !self.queue[index].resources.fits_within(&free) {
                index += 1;
                continue;
            }
            let launch = self.queue.remove(index).expect("index is in range");
            let node = launch.node;
            self.in_use.cpu_millis += launch.resources.cpu_millis;
            self.in_use.memory_bytes += launch.resources.memory_bytes;
            self.running.insert(node);
            self.nodes[node].state = TaskState::Running;
            out.push(self.update(node, true, false));
            out.push(Command::Launch(launch));
        }
    }

    fn task_finished(&mut self, node: NodeId, result: TaskResult, out: &mut Vec<Command>) {
        if node >= self.nodes.len() || !self.running.remove(&node) {
            return; // not a running task of this run: nothing to do
        }
        let r = self.nodes[node].resources;
        self.in_use.cpu_millis -= r.cpu_millis;
        self.in_use.memory_bytes -= r.memory_bytes;
        let mut finished = VecDeque::new();
        match result {
            TaskResult::Succeeded(outputs) => {
                self.nodes[node].outputs = outputs;
                self.end_node(node, TaskState::Succeeded, None, out, &mut finished);
            }
            TaskResult::Failed(error) => self.fail_node(node, error, out, &mut finished),
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
        out.push(self.update(node, false, state == TaskState::Succeeded));
        finished.push_back(node);
    }

    /// A task failed: the run fails, running tasks are stopped and nothing new starts.
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

    /// Cancels running tasks and ends queued ones with `queued_state`.
    fn stop_everything(
        &mut self,
        queued_state: TaskState,
        reason: &str,
        out: &mut Vec<Command>,
        finished: &mut VecDeque<NodeId>,
    ) {
        for node in self.running.iter().copied().collect::<Vec<_>>() {
            out.push(Command::Cancel { node });
        }
        for launch in std::mem::take(&mut self.queue) {
            self.end_node(
                launch.node,
                queued_state,
                Some(reason.to_string()),
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
            if let Some(parent) = self.nodes[node].parent {
                let all_done = self.nodes[parent]
                    .children
                    .values()
                    .all(|c| self.nodes[*c].state.is_terminal());
                if all_done && !self.nodes[parent].state.is_terminal() {
                    self.finish_dag(parent, out, &mut finished);
                }
            }
        }
    }

    /// Every task of a DAG node ended: the DAG succeeds (with its outputs) or fails.
    fn finish_dag(
        &mut self,
        dag_node: NodeId,
        out: &mut Vec<Command>,
        finished: &mut VecDeque<NodeId>,
    ) {
        let children: Vec<NodeId> = self.nodes[dag_node].children.values().copied().collect();
        let failed = children
            .iter()
            .find(|c| self.nodes[**c].state == TaskState::Failed);
        let canceled = children
            .iter()
            .any(|c| self.nodes[*c].state == TaskState::Canceled);
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
        } else if canceled && self.canceling {
            (TaskState::Canceled, Some("canceled".to_string()))
        } else if self.failure.is_some()
            && children
                .iter()
                .any(|c| self.nodes[*c].state != TaskState::Succeeded)
        {
            (
                TaskState::Failed,
                Some("not all tasks ran: the run is failing".to_string()),
            )
        } else {
            match self.dag_outputs(dag_node) {
                Ok(outputs) => {
                    self.nodes[dag_node].outputs = outputs;
                    (TaskState::Succeeded, None)
                }
                Err(e) => (TaskState::Failed, Some(e)),
            }
        };
        if self.nodes[dag_node].parent.is_none() {
            let n = &mut self.nodes[dag_node];
            n.state = state;
            n.error = error.clone();
            let (run_state, error) = match state {
                TaskState::Succeeded => (RunState::Succeeded, None),
                TaskState::Canceled => {
                    (RunState::Canceled, Some("the run was canceled".to_string()))
                }
                _ => (RunState::Failed, self.failure.clone().or(error)),
            };
            self.result = Some(run_state);
            let outputs = if run_state == RunState::Succeeded {
                self.nodes[dag_node].outputs.clone()
            } else {
                Io::default()
            };
            out.push(Command::Finish(RunFinished {
                state: run_state,
                error,
                outputs,
            }));
        } else if state == TaskState::Failed && self.failure.is_none() {
            self.fail_node(dag_node, error.unwrap_or_default(), out, finished);
        } else {
            self.end_node(dag_node, state, error, out, finished);
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
                .filter(|n| n.state == TaskState::Succeeded)
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
                None => {
                    return Err(format!(
                        "output artifact \"{name}\" has no value: no selected task produced it"
                    ));
                }
            }
        }
        Ok(io)
    }

    fn after_event(&mut self, out: &mut Vec<Command>) {
        if self.result.is_none() {
            self.schedule(out);
        }
    }
}

/// What this engine cannot run yet is refused before anything starts, naming where it is.
fn check_supported(spec: &PipelineSpec) -> Result<(), Error> {
    let unsupported = |path: String, what: &str| Error::Unsupported {
        path,
        message: format!("{what} are not supported by this version of Coracle yet"),
    };
    let dags = std::iter::once(("root".to_string(), &spec.root)).chain(
        spec.components
            .iter()
            .map(|(k, c)| (format!("components.{k}"), c)),
    );
    for (path, component) in dags {
        let Some(dag) = &component.dag else { continue };
        for (key, task) in &dag.tasks {
            let at = format!("{path}.dag.tasks.{key}");
            if task
                .trigger_policy
                .as_ref()
                .is_some_and(|t| t.condition.as_deref().is_some_and(|c| !c.is_empty()))
            {
                return Err(unsupported(
                    format!("{at}.triggerPolicy.condition"),
                    "conditions (dsl.If/Elif/Else, dsl.Condition)",
                ));
            }
            if task.trigger_policy.as_ref().and_then(|t| t.strategy)
                == Some(coracle_spec::TriggerStrategy::AllUpstreamTasksCompleted)
            {
                return Err(unsupported(
                    format!("{at}.triggerPolicy.strategy"),
                    "exit handlers and ignore_upstream_failure",
                ));
            }
            if task.parameter_iterator.is_some() || task.artifact_iterator.is_some() {
                return Err(unsupported(at, "loops (dsl.ParallelFor)"));
            }
            for (name, input) in &task.inputs.parameters {
                if input.task_final_status.is_some() {
                    return Err(unsupported(
                        format!("{at}.inputs.parameters.{name}"),
                        "task final status inputs (exit handlers)",
                    ));
                }
                if input.parameter_expression_selector.is_some() {
                    return Err(unsupported(
                        format!("{at}.inputs.parameters.{name}.parameterExpressionSelector"),
                        "parameter expression selectors",
                    ));
                }
            }
        }
        if let Some(outputs) = &dag.outputs {
            if let Some((name, _)) = outputs
                .parameters
                .iter()
                .find(|(_, o)| o.value_from_oneof.is_some())
            {
                return Err(unsupported(
                    format!("{path}.dag.outputs.parameters.{name}"),
                    "dsl.OneOf outputs",
                ));
            }
        }
    }
    for (label, executor) in &spec.deployment_spec.executors {
        if executor.container.is_none() {
            let what = if executor.importer.is_some() {
                "importers (dsl.importer)"
            } else {
                "non-container executors"
            };
            return Err(unsupported(
                format!("deploymentSpec.executors.{label}"),
                what,
            ));
        }
        if let Some(c) = &executor.container {
            if c.image.starts_with("argostub/") {
                return Err(unsupported(
                    format!("deploymentSpec.executors.{label}.container.image"),
                    "Kubernetes PVC operations (CreatePVC/DeletePVC)",
                ));
            }
        }
    }
    Ok(())
}
