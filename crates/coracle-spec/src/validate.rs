//! Structural validation of a parsed pipeline, and checking of run arguments against the
//! root's inputs. Every problem is reported with the spec path it sits at.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::model::*;
use crate::placeholder::{self, ArgTemplate, Placeholder, Segment};
use crate::{Issue, Issues, value};

/// Checks that every reference in the spec resolves: components, executors, producer tasks,
/// output keys, declared inputs, placeholders; and that no DAG or component nesting has a cycle.
pub fn validate(spec: &PipelineSpec) -> Result<(), Issues> {
    let mut v = Validator {
        spec,
        issues: Vec::new(),
    };
    if spec.pipeline_info.name.trim().is_empty() {
        v.issue("pipelineInfo.name", "the pipeline has no name");
    }
    if spec.root.dag.is_none() {
        v.issue("root.dag", "the root component must be a DAG");
    }
    let item_inputs = v.iterator_item_inputs();
    v.component("root", "root", &spec.root, &item_inputs);
    for (name, component) in &spec.components {
        v.component(&format!("components.{name}"), name, component, &item_inputs);
    }
    v.component_nesting();
    v.platforms();
    if v.issues.is_empty() {
        Ok(())
    } else {
        Err(Issues(v.issues))
    }
}

/// Checks run arguments against the root component's input parameters and returns the full
/// set: given values coerced to their types, defaults filled in; optional ones with no value
/// are left out.
pub fn resolve_arguments(
    spec: &PipelineSpec,
    given: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Value>, Issues> {
    let mut issues = Vec::new();
    let mut resolved = BTreeMap::new();
    let declared: BTreeMap<&String, &ParameterSpec> = spec.root.input_parameters().collect();
    for (name, value) in given {
        if !declared.contains_key(name) {
            let known: Vec<&str> = declared.keys().map(|k| k.as_str()).collect();
            let known = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            issues.push(Issue::new(
                "root.inputDefinitions.parameters",
                format!("unknown parameter \"{name}\" (the pipeline's parameters: {known})"),
            ));
        }
        let _ = value;
    }
    for (name, param) in declared {
        let path = format!("root.inputDefinitions.parameters.{name}");
        match given.get(name).or(param.default_value.as_ref()) {
            Some(v) => match value::coerce(param.parameter_type, v) {
                Ok(v) => {
                    resolved.insert(name.clone(), v);
                }
                Err(e) => issues.push(Issue::new(path, e)),
            },
            None if param.is_optional => {}
            None => issues.push(Issue::new(
                path,
                format!(
                    "required parameter \"{name}\" ({}) has no value",
                    param.parameter_type.as_str()
                ),
            )),
        }
    }
    if issues.is_empty() {
        Ok(resolved)
    } else {
        Err(Issues(issues))
    }
}

struct Validator<'a> {
    spec: &'a PipelineSpec,
    issues: Vec<Issue>,
}

impl<'a> Validator<'a> {
    fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue::new(path, message));
    }

    fn lookup(&self, name: &str) -> Option<&'a ComponentSpec> {
        self.spec.components.get(name)
    }

    /// Input names that loop tasks feed to their components beyond what is declared:
    /// component name → item input names.
    fn iterator_item_inputs(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let dags = std::iter::once(&self.spec.root)
            .chain(self.spec.components.values())
            .filter_map(|c| c.dag.as_ref());
        for dag in dags {
            for task in dag.tasks.values() {
                for iterator in [&task.parameter_iterator, &task.artifact_iterator]
                    .into_iter()
                    .flatten()
                {
                    if let Some(item) = iterator.get("itemInput").and_then(Value::as_str) {
                        out.entry(task.component_ref.name.clone())
                            .or_default()
                            .insert(item.to_string());
                    }
                }
            }
        }
        out
    }

    fn component(
        &mut self,
        path: &str,
        name: &str,
        component: &'a ComponentSpec,
        item_inputs: &BTreeMap<String, BTreeSet<String>>,
    ) {
        for (param_name, param) in component.input_parameters() {
            if let Some(default) = &param.default_value
                && let Err(e) = value::coerce(param.parameter_type, default)
            {
                self.issue(
                    format!("{path}.inputDefinitions.parameters.{param_name}.defaultValue"),
                    e,
                );
            }
        }
        match component.implementation() {
            None if component.dag.is_some() => self.issue(
                path,
                "a component has either a dag or an executorLabel, not both",
            ),
            None => self.issue(path, "the component has neither a dag nor an executorLabel"),
            Some(Implementation::Executor(label)) => {
                match self.spec.deployment_spec.executors.get(label) {
                    None => self.issue(
                        format!("{path}.executorLabel"),
                        format!("executor \"{label}\" not found in deploymentSpec.executors"),
                    ),
                    Some(executor) => self.executor(label, executor, component),
                }
            }
            Some(Implementation::Dag(dag)) => {
                let empty = BTreeSet::new();
                let items = item_inputs.get(name).unwrap_or(&empty);
                self.dag(&format!("{path}.dag"), component, dag, items);
            }
        }
    }

    fn executor(&mut self, label: &str, executor: &ExecutorSpec, component: &ComponentSpec) {
        let path = format!("deploymentSpec.executors.{label}");
        let kinds = [
            executor.container.is_some(),
            executor.importer.is_some(),
            executor.resolver.is_some(),
            executor.custom_job.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            self.issue(
                &path,
                "an executor needs exactly one of container, importer, resolver or customJob",
            );
            return;
        }
        let Some(container) = &executor.container else {
            return;
        };
        if container.image.trim().is_empty() {
            self.issue(
                format!("{path}.container.image"),
                "the container has no image",
            );
        }
        for (field, list) in [("command", &container.command), ("args", &container.args)] {
            for (i, arg) in list.iter().enumerate() {
                let at = format!("{path}.container.{field}[{i}]");
                match placeholder::parse_arg(arg) {
                    Ok(template) => self.arg_template(&at, &template, component),
                    Err(e) => self.issue(at, e),
                }
            }
        }
        for (i, env) in container.env.iter().enumerate() {
            let at = format!("{path}.container.env[{i}].value");
            match placeholder::parse_text(&env.value) {
                Ok(segments) => self.segments(&at, &segments, component),
                Err(e) => self.issue(at, e),
            }
        }
    }

    fn arg_template(&mut self, at: &str, template: &ArgTemplate, component: &ComponentSpec) {
        match template {
            ArgTemplate::Text(segments) => self.segments(at, segments, component),
            ArgTemplate::Concat(items) => items
                .iter()
                .for_each(|t| self.arg_template(at, t, component)),
            ArgTemplate::IfPresent {
                input_name,
                then,
                otherwise,
            } => {
                if component.input_parameter(input_name).is_none()
                    && component.input_artifact(input_name).is_none()
                {
                    self.issue(at, format!("IfPresent names \"{input_name}\", which is not an input of the component"));
                }
                for t in then.iter().chain(otherwise.iter().flatten()) {
                    self.arg_template(at, t, component);
                }
            }
        }
    }

    fn segments(&mut self, at: &str, segments: &[Segment], component: &ComponentSpec) {
        for segment in segments {
            let Segment::Placeholder(p) = segment else {
                continue;
            };
            let problem = match p {
                Placeholder::InputParameter(n) if component.input_parameter(n).is_none() => {
                    Some(format!(
                        "placeholder names input parameter \"{n}\", which the component does not declare"
                    ))
                }
                Placeholder::InputArtifact(n, _) if component.input_artifact(n).is_none() => {
                    Some(format!(
                        "placeholder names input artifact \"{n}\", which the component does not declare"
                    ))
                }
                Placeholder::OutputArtifact(n, _) if component.output_artifact(n).is_none() => {
                    Some(format!(
                        "placeholder names output artifact \"{n}\", which the component does not declare"
                    ))
                }
                Placeholder::OutputParameterFile(n) if component.output_parameter(n).is_none() => {
                    Some(format!(
                        "placeholder names output parameter \"{n}\", which the component does not declare"
                    ))
                }
                _ => None,
            };
            if let Some(problem) = problem {
                self.issue(at, problem);
            }
        }
    }

    fn dag(
        &mut self,
        path: &str,
        owner: &ComponentSpec,
        dag: &'a DagSpec,
        item_inputs: &BTreeSet<String>,
    ) {
        for (task_name, task) in &dag.tasks {
            let tpath = format!("{path}.tasks.{task_name}");
            let component = self.lookup(&task.component_ref.name);
            if component.is_none() {
                self.issue(
                    format!("{tpath}.componentRef.name"),
                    format!(
                        "component \"{}\" not found in components",
                        task.component_ref.name
                    ),
                );
            }
            for dep in &task.dependent_tasks {
                if dep == task_name {
                    self.issue(
                        format!("{tpath}.dependentTasks"),
                        "a task cannot depend on itself",
                    );
                } else if !dag.tasks.contains_key(dep) {
                    self.issue(
                        format!("{tpath}.dependentTasks"),
                        format!("task \"{dep}\" not found in this DAG"),
                    );
                }
            }
            for (key, input) in &task.inputs.parameters {
                let ipath = format!("{tpath}.inputs.parameters.{key}");
                if let Some(c) = component {
                    // Conditions read `pipelinechannel--…` inputs the component itself does not declare.
                    let channel = key.starts_with("pipelinechannel--");
                    if c.input_parameter(key).is_none() && !item_inputs.contains(key) && !channel {
                        self.issue(
                            &ipath,
                            format!(
                                "component \"{}\" has no input parameter \"{key}\"",
                                task.component_ref.name
                            ),
                        );
                    }
                }
                match input.source() {
                    Err(n) => self.issue(
                        &ipath,
                        format!("expected exactly one value source, found {n}"),
                    ),
                    Ok(ParameterSource::ComponentInput(name)) => {
                        if owner.input_parameter(name).is_none() && !item_inputs.contains(name) {
                            self.issue(
                                format!("{ipath}.componentInputParameter"),
                                format!(
                                    "\"{name}\" is not an input parameter of the enclosing DAG"
                                ),
                            );
                        }
                    }
                    Ok(ParameterSource::TaskOutput {
                        producer_task,
                        output_key,
                    }) => {
                        self.producer(
                            &format!("{ipath}.taskOutputParameter"),
                            dag,
                            task_name,
                            producer_task,
                            |c| c.output_parameter(output_key).is_some(),
                            "output parameter",
                            output_key,
                        );
                    }
                    Ok(ParameterSource::TaskFinalStatus { producer_task }) => {
                        self.producer(
                            &format!("{ipath}.taskFinalStatus"),
                            dag,
                            task_name,
                            producer_task,
                            |_| true,
                            "",
                            "",
                        );
                    }
                    Ok(ParameterSource::Constant(_)) => {}
                }
            }
            for (key, input) in &task.inputs.artifacts {
                let ipath = format!("{tpath}.inputs.artifacts.{key}");
                if let Some(c) = component
                    && c.input_artifact(key).is_none()
                    && !item_inputs.contains(key)
                {
                    self.issue(
                        &ipath,
                        format!(
                            "component \"{}\" has no input artifact \"{key}\"",
                            task.component_ref.name
                        ),
                    );
                }
                match input.source() {
                    Err(n) => self.issue(
                        &ipath,
                        format!("expected exactly one artifact source, found {n}"),
                    ),
                    Ok(ArtifactSource::ComponentInput(name)) => {
                        if owner.input_artifact(name).is_none() && !item_inputs.contains(name) {
                            self.issue(
                                format!("{ipath}.componentInputArtifact"),
                                format!("\"{name}\" is not an input artifact of the enclosing DAG"),
                            );
                        }
                    }
                    Ok(ArtifactSource::TaskOutput {
                        producer_task,
                        output_key,
                    }) => {
                        self.producer(
                            &format!("{ipath}.taskOutputArtifact"),
                            dag,
                            task_name,
                            producer_task,
                            |c| c.output_artifact(output_key).is_some(),
                            "output artifact",
                            output_key,
                        );
                    }
                }
            }
            if let Some(c) = component {
                let iterated =
                    task.parameter_iterator.is_some() || task.artifact_iterator.is_some();
                for (name, param) in c.input_parameters() {
                    let given = task.inputs.parameters.contains_key(name);
                    if !given && !iterated && param.default_value.is_none() && !param.is_optional {
                        self.issue(
                            format!("{tpath}.inputs.parameters"),
                            format!("required input parameter \"{name}\" of component \"{}\" is not given", task.component_ref.name),
                        );
                    }
                }
            }
        }
        if let Some(outputs) = &dag.outputs {
            for (key, out) in &outputs.parameters {
                let opath = format!("{path}.outputs.parameters.{key}");
                let selectors: Vec<&OutputParameterSelector> = out
                    .value_from_parameter
                    .iter()
                    .chain(
                        out.value_from_oneof
                            .iter()
                            .flat_map(|o| o.parameter_selectors.iter()),
                    )
                    .collect();
                if selectors.is_empty() {
                    self.issue(
                        &opath,
                        "the output has no valueFromParameter or valueFromOneof",
                    );
                }
                for s in selectors {
                    self.producer(
                        &opath,
                        dag,
                        "",
                        &s.producer_subtask,
                        |c| c.output_parameter(&s.output_parameter_key).is_some(),
                        "output parameter",
                        &s.output_parameter_key,
                    );
                }
            }
            for (key, out) in &outputs.artifacts {
                let opath = format!("{path}.outputs.artifacts.{key}");
                if out.artifact_selectors.is_empty() {
                    self.issue(&opath, "the output has no artifactSelectors");
                }
                for s in &out.artifact_selectors {
                    self.producer(
                        &opath,
                        dag,
                        "",
                        &s.producer_subtask,
                        |c| c.output_artifact(&s.output_artifact_key).is_some(),
                        "output artifact",
                        &s.output_artifact_key,
                    );
                }
            }
        }
        if let Some(cycle) = dag_cycle(dag) {
            self.issue(
                format!("{path}.tasks"),
                format!("dependency cycle: {}", cycle.join(" -> ")),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn producer(
        &mut self,
        at: &str,
        dag: &DagSpec,
        consumer: &str,
        producer: &str,
        has_output: impl Fn(&ComponentSpec) -> bool,
        what: &str,
        key: &str,
    ) {
        if producer == consumer {
            self.issue(at, "a task cannot consume its own output");
            return;
        }
        let Some(task) = dag.tasks.get(producer) else {
            self.issue(
                at,
                format!("producer task \"{producer}\" not found in this DAG"),
            );
            return;
        };
        if let Some(component) = self.lookup(&task.component_ref.name)
            && !has_output(component)
        {
            self.issue(at, format!("task \"{producer}\" has no {what} \"{key}\""));
        }
    }

    /// Components that (transitively) contain themselves would expand forever.
    fn component_nesting(&mut self) {
        let spec = self.spec;
        let children = |name: &'a str| -> Vec<&'a str> {
            spec.components
                .get(name)
                .and_then(|c| c.dag.as_ref())
                .map(|dag| {
                    dag.tasks
                        .values()
                        .map(|t| t.component_ref.name.as_str())
                        .collect()
                })
                .unwrap_or_default()
        };
        let names = spec.components.keys().map(String::as_str);
        if let Some(cycle) = find_cycle(names, |n| {
            children(n)
                .into_iter()
                .filter(|c| spec.components.contains_key(*c))
                .collect()
        }) {
            self.issue(
                "components",
                format!("component nesting cycle: {}", cycle.join(" -> ")),
            );
        }
    }
}

/// The tasks of a DAG that wait on each other in a circle, upstream first.
impl Validator<'_> {
    /// The Kubernetes settings name executors that exist, and mount at absolute paths.
    fn platforms(&mut self) {
        let spec = self.spec;
        let Some(kubernetes) = spec.platforms.as_ref().and_then(|p| p.kubernetes.as_ref()) else {
            return;
        };
        for (label, config) in &kubernetes.deployment_spec.executors {
            let base = format!("platforms.kubernetes.deploymentSpec.executors.{label}");
            if !spec.deployment_spec.executors.contains_key(label) {
                self.issue(
                    base.clone(),
                    format!("executor \"{label}\" is not in deploymentSpec.executors"),
                );
                continue;
            }
            let mounts = config
                .pvc_mount
                .iter()
                .map(|m| ("pvcMount", &m.mount_path))
                .chain(
                    config
                        .secret_as_volume
                        .iter()
                        .map(|m| ("secretAsVolume", &m.mount_path)),
                )
                .chain(
                    config
                        .config_map_as_volume
                        .iter()
                        .map(|m| ("configMapAsVolume", &m.mount_path)),
                )
                .chain(
                    config
                        .empty_dir_mounts
                        .iter()
                        .map(|m| ("emptyDirMounts", &m.mount_path)),
                );
            let mut seen = std::collections::BTreeSet::new();
            for (kind, path) in mounts {
                if !path.starts_with('/') {
                    self.issue(
                        format!("{base}.{kind}"),
                        format!("mount path {path:?} is not absolute"),
                    );
                } else if !seen.insert(path.trim_end_matches('/').to_string()) {
                    self.issue(
                        format!("{base}.{kind}"),
                        format!("two volumes are mounted at {path}"),
                    );
                }
            }
            for (index, mount) in config.pvc_mount.iter().enumerate() {
                if mount.name_source().is_none() {
                    self.issue(
                        format!("{base}.pvcMount[{index}]"),
                        "the PVC mount names no PVC",
                    );
                }
            }
        }
    }
}

fn dag_cycle(dag: &DagSpec) -> Option<Vec<String>> {
    let upstream = |name: &str| -> Vec<&str> {
        dag.tasks
            .get_key_value(name)
            .map(|(key, task)| {
                task.upstream_tasks()
                    .into_iter()
                    .filter(|up| dag.tasks.contains_key(*up) && *up != key)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut cycle = find_cycle(dag.tasks.keys().map(String::as_str), upstream)?;
    cycle.reverse();
    Some(cycle)
}

/// Depth-first search over `nodes` following `edges`; the first cycle found, as the path from
/// a node back to itself.
fn find_cycle<'n>(
    nodes: impl Iterator<Item = &'n str>,
    edges: impl Fn(&'n str) -> Vec<&'n str>,
) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnPath,
        Done,
    }
    fn visit<'n>(
        name: &'n str,
        edges: &dyn Fn(&'n str) -> Vec<&'n str>,
        marks: &mut BTreeMap<&'n str, Mark>,
        path: &mut Vec<&'n str>,
    ) -> Option<Vec<String>> {
        match marks.get(name) {
            Some(Mark::Done) => return None,
            Some(Mark::OnPath) => {
                let start = path.iter().position(|n| *n == name).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(name.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(name, Mark::OnPath);
        path.push(name);
        for next in edges(name) {
            if let Some(cycle) = visit(next, edges, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(name, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for name in nodes {
        if let Some(cycle) = visit(name, &edges, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}
