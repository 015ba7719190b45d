//! A pipeline's DAG drawn as SVG, on the server.
//!
//! Every task of the root DAG is a node (`g.node[data-task][data-state]`); every task whose
//! component is itself a DAG (a nested pipeline, `condition-N`, `condition-branches-N`,
//! `for-loop-N`, `exit-handler-N`) is a group (`g.group[data-task][data-state]`) holding its
//! own tasks, drawn the same way. Edges join a task to the sibling tasks it waits for
//! (`dependentTasks` and the producers of its inputs); edges into an exit task (trigger
//! strategy ALL_UPSTREAM_TASKS_COMPLETED) are dashed.
//!
//! Paths are the engine's task paths with loop iterations left out: `for-loop-2/square` stands
//! for the `square` of every iteration (`for-loop-2/0/square`, `for-loop-2/1/square`, …), and
//! shows the worst of their states. [`aggregate_states`] gives those merged states for the
//! page's poller.
//!
//! Layout: layered, top to bottom. Layers are longest paths from the sources; edges that span
//! several layers go through placeholder points so that the ordering sees them; a few
//! barycenter sweeps reduce crossings (the best order seen is kept); x positions follow the
//! neighbours' mean while keeping the order and the spacing. Groups are laid out inside out,
//! each sized by its content. Everything is deterministic: the same spec and states give the
//! same bytes. Colours come from the page's CSS (by class and `data-state`); the few
//! presentation attributes here only make the SVG readable on its own.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use coracle_spec::{ComponentSpec, PipelineSpec, TaskSpec, TriggerStrategy};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A task's state as the store records it (latest attempt), with how many attempts it had.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// KFP state name: PENDING, RUNNING, SUCCEEDED, CACHED, FAILED, SKIPPED, CANCELED, …
    pub state: String,
    pub attempts: u32,
}

/// The state the graph shows for one static path: for a task inside a loop, the worst over
/// its iterations; for a loop, also how many iterations are done.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphStatus {
    pub state: String,
    /// The most attempts any instance of the task had.
    pub attempts: u32,
    /// Loops only: (iterations ended, iterations known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<(u32, u32)>,
}

// ---- sizes (px) -------------------------------------------------------------------------------

const NODE_W: f64 = 172.0;
const NODE_H: f64 = 34.0;
/// Characters of a task name shown in a node before it is cut with "…".
const NODE_CHARS: usize = 24;
/// Characters of a group label shown before it is cut with "…".
const LABEL_CHARS: usize = 56;
/// Rough width of one character of a group label (11 px sans-serif).
const LABEL_CHAR_W: f64 = 6.4;
const GROUP_PAD: f64 = 12.0;
const GROUP_LABEL_H: f64 = 22.0;
const GROUP_MIN_W: f64 = 120.0;
const H_GAP: f64 = 24.0;
const DUMMY_GAP: f64 = 10.0;
const DUMMY_W: f64 = 8.0;
const V_GAP: f64 = 46.0;
const MARGIN: f64 = 12.0;
/// Ordering sweeps (each one down and one up).
const SWEEPS: usize = 4;
/// Rounds of x refinement (each one down and one up).
const X_ROUNDS: usize = 4;
/// Above this many placeholder points, long edges are drawn straight instead.
const MAX_DUMMIES: usize = 4000;
/// Deeper nesting than this is drawn as a plain node.
const MAX_DEPTH: usize = 48;

// ---- the task tree ----------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GroupKind {
    Loop,
    Condition,
    Branches,
    ExitHandler,
    Pipeline,
}

impl GroupKind {
    fn class(self) -> &'static str {
        match self {
            GroupKind::Loop => "loop",
            GroupKind::Condition => "condition",
            GroupKind::Branches => "branches",
            GroupKind::ExitHandler => "exit-handler",
            GroupKind::Pipeline => "pipeline",
        }
    }
}

struct Item<'a> {
    key: &'a str,
    path: String,
    task: &'a TaskSpec,
    /// The tasks of the enclosing groups, outermost first, then this task: where the names
    /// of its inputs come from.
    scope: Vec<&'a TaskSpec>,
    /// A branch of `if / elif / else`: its label (`if …`, `elif …`, `else`).
    branch: Option<String>,
    /// Set when the task's component is a DAG.
    group: Option<(GroupKind, Vec<Item<'a>>)>,
}

fn component<'a>(spec: &'a PipelineSpec, task: &TaskSpec) -> Option<&'a ComponentSpec> {
    spec.components.get(&task.component_ref.name)
}

fn is_loop(task: &TaskSpec) -> bool {
    task.parameter_iterator.is_some() || task.artifact_iterator.is_some()
}

fn condition_of(task: &TaskSpec) -> Option<&str> {
    task.trigger_policy
        .as_ref()
        .and_then(|p| p.condition.as_deref())
        .filter(|c| !c.trim().is_empty())
}

fn waits_for_completion(task: &TaskSpec) -> bool {
    task.trigger_policy
        .as_ref()
        .and_then(|p| p.strategy)
        .is_some_and(|s| s == TriggerStrategy::AllUpstreamTasksCompleted)
}

fn numbered(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn build<'a>(
    spec: &'a PipelineSpec,
    component: &'a ComponentSpec,
    prefix: &str,
    outer: &[&'a TaskSpec],
) -> Vec<Item<'a>> {
    let depth = outer.len();
    let Some(dag) = component.dag.as_ref() else {
        return Vec::new();
    };
    dag.tasks
        .iter()
        .map(|(key, task)| {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}/{key}")
            };
            let mut scope = outer.to_vec();
            scope.push(task);
            let group = match self::component(spec, task) {
                Some(inner) if inner.dag.is_some() && depth < MAX_DEPTH => {
                    let kind = if is_loop(task) {
                        GroupKind::Loop
                    } else if numbered(key, "condition-branches-") {
                        GroupKind::Branches
                    } else if numbered(key, "exit-handler-") {
                        GroupKind::ExitHandler
                    } else if condition_of(task).is_some() && numbered(key, "condition-") {
                        GroupKind::Condition
                    } else {
                        GroupKind::Pipeline
                    };
                    let mut children = build(spec, inner, &path, &scope);
                    if kind == GroupKind::Branches {
                        label_branches(&mut children);
                    }
                    Some((kind, children))
                }
                _ => None,
            };
            Item {
                key,
                path,
                task,
                scope,
                branch: None,
                group,
            }
        })
        .collect()
}

/// Labels the branches of a `condition-branches-N` group. The compiler gives each branch
/// the negation of the earlier ones and its own test: `!(a) && b` is `elif b`, `!(a) && !(b)`
/// is `else`. A branch whose condition does not read so keeps `if <condition>`.
fn label_branches(children: &mut [Item<'_>]) {
    let number = |key: &str| {
        key.rsplit('-')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    };
    let mut order: Vec<usize> = (0..children.len())
        .filter(|&i| condition_of(children[i].task).is_some() && children[i].group.is_some())
        .collect();
    order.sort_by_key(|&i| (number(children[i].key), i));
    let mut earlier: Vec<String> = Vec::new();
    for (rank, &i) in order.iter().enumerate() {
        let item = &children[i];
        let Some(full) = condition_of(item.task).map(|c| short_condition(&item.scope, c)) else {
            continue;
        };
        let mut rest = full.as_str();
        let mut follows = true;
        for own in &earlier {
            let negated = format!("!({own})");
            if let Some(after) = rest.strip_prefix(&format!("{negated} && ")) {
                rest = after;
            } else if rest == negated {
                rest = "";
            } else {
                follows = false;
                break;
            }
        }
        let label = if !follows {
            format!("if {full}")
        } else if rest.is_empty() {
            "else".to_string()
        } else if rank == 0 {
            format!("if {rest}")
        } else {
            format!("elif {rest}")
        };
        if follows && !rest.is_empty() {
            earlier.push(rest.to_string());
        }
        children[i].branch = Some(label);
    }
}

/// Every static task path of the pipeline (groups and the tasks inside them, loop bodies once,
/// without iteration numbers), parents before children, siblings by key.
pub fn task_paths(spec: &PipelineSpec) -> Vec<String> {
    fn walk(items: &[Item<'_>], out: &mut Vec<String>) {
        for item in items {
            out.push(item.path.clone());
            if let Some((_, children)) = &item.group {
                walk(children, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&build(spec, &spec.root, "", &[]), &mut out);
    out
}

// ---- states -----------------------------------------------------------------------------------

/// The static path of a task path as the engine records it (`for-loop-2/1/square` →
/// `for-loop-2/square`), and whether it names a loop iteration itself (`for-loop-2/1`).
/// `None` when the path does not name a task of `spec`.
pub fn static_path(spec: &PipelineSpec, path: &str) -> Option<(String, bool)> {
    let mut component = &spec.root;
    let mut out = String::new();
    let mut segments = path.split('/').peekable();
    let mut iteration = false;
    while let Some(segment) = segments.next() {
        let task = component.dag.as_ref()?.tasks.get(segment)?;
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(segment);
        iteration = false;
        if is_loop(task)
            && segments
                .peek()
                .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        {
            segments.next();
            iteration = true;
        }
        match self::component(spec, task) {
            Some(inner) => component = inner,
            None if segments.peek().is_none() => {}
            None => return None,
        }
    }
    if out.is_empty() {
        None
    } else {
        Some((out, iteration))
    }
}

/// How bad a state is, for merging the iterations of a loop: the highest wins.
fn severity(state: &str) -> u8 {
    match state {
        "FAILED" => 7,
        "RUNNING" | "CANCELING" => 6,
        "PENDING" => 5,
        "CANCELED" => 3,
        "SUCCEEDED" => 2,
        "CACHED" => 1,
        "SKIPPED" => 0,
        // An unknown state is shown as it is, ranked as still going on.
        _ => 4,
    }
}

fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "SUCCEEDED" | "CACHED" | "FAILED" | "SKIPPED" | "CANCELED"
    )
}

/// A state as an attribute value: upper case letters, digits and `_` only.
fn clean_state(state: &str) -> String {
    let cleaned: String = state
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if cleaned.is_empty() {
        "PENDING".into()
    } else {
        cleaned
    }
}

#[derive(Default)]
struct Merged {
    state: Option<String>,
    attempts: u32,
    iterations: u32,
    iterations_done: u32,
    /// Recorded instances of a loop task that were not skipped.
    loop_instances: u32,
    /// Recorded instances (one per iteration of the loops around the task).
    records: u32,
}

/// The state of every static path of `spec` (see [`task_paths`]) given the recorded states
/// of the run's tasks (`states`, by task path as the engine names them, iterations
/// included). Tasks inside a loop show the worst state over its iterations (FAILED, RUNNING,
/// PENDING, CANCELED, SUCCEEDED, CACHED, SKIPPED, from worst); loops also count iterations.
/// A task with no record is PENDING, or SKIPPED/CANCELED like the group around it when that
/// group was skipped or canceled (the engine does not enter skipped loop bodies).
pub fn aggregate_states(
    spec: &PipelineSpec,
    states: &BTreeMap<String, NodeStatus>,
) -> BTreeMap<String, GraphStatus> {
    let items = build(spec, &spec.root, "", &[]);
    let merged = merge_states(spec, states);
    let mut out = BTreeMap::new();
    /// `expected`: how many instances each task here will have, when the loop around them
    /// is still going and says so.
    fn walk(
        items: &[Item<'_>],
        merged: &BTreeMap<String, Merged>,
        parent: &str,
        expected: Option<u32>,
        out: &mut BTreeMap<String, GraphStatus>,
    ) {
        for item in items {
            let status = resolve(item, merged, parent, expected);
            let state = status.state.clone();
            let inner = match &item.group {
                Some((GroupKind::Loop, _)) if !is_terminal(&state) => {
                    status.progress.map(|(_, total)| total)
                }
                Some((GroupKind::Loop, _)) => None,
                _ => expected,
            };
            out.insert(item.path.clone(), status);
            if let Some((_, children)) = &item.group {
                walk(children, merged, &state, inner, out);
            }
        }
    }
    walk(&items, &merged, "", None, &mut out);
    out
}

fn merge_states(
    spec: &PipelineSpec,
    states: &BTreeMap<String, NodeStatus>,
) -> BTreeMap<String, Merged> {
    let mut merged: BTreeMap<String, Merged> = BTreeMap::new();
    for (path, status) in states {
        let Some((key, iteration)) = static_path(spec, path) else {
            continue;
        };
        let state = clean_state(&status.state);
        let entry = merged.entry(key).or_default();
        if iteration {
            entry.iterations += 1;
            if is_terminal(&state) {
                entry.iterations_done += 1;
            }
            continue;
        }
        entry.attempts = entry.attempts.max(status.attempts);
        entry.records += 1;
        if state != "SKIPPED" {
            entry.loop_instances += 1;
        }
        let worse = match &entry.state {
            None => true,
            Some(old) => severity(&state) > severity(old),
        };
        if worse {
            entry.state = Some(state);
        }
    }
    merged
}

fn resolve(
    item: &Item<'_>,
    merged: &BTreeMap<String, Merged>,
    parent_state: &str,
    expected: Option<u32>,
) -> GraphStatus {
    let found = merged.get(&item.path);
    let state = match found.and_then(|m| m.state.clone()) {
        // Iterations of a running loop that have not reached the task yet count as pending.
        Some(state)
            if severity(&state) < severity("PENDING")
                && expected.is_some_and(|e| found.is_some_and(|m| m.records < e)) =>
        {
            "PENDING".to_string()
        }
        Some(state) => state,
        None if matches!(parent_state, "SKIPPED" | "CANCELED") => parent_state.to_string(),
        None => "PENDING".to_string(),
    };
    // Loops: iterations ended of those known. Raw items are known before they start (once
    // per instance of the loop: nested loops run an inner loop per outer iteration).
    let progress = if matches!(item.group, Some((GroupKind::Loop, _))) && state != "SKIPPED" {
        let (done, mut total, instances) = found
            .map(|m| (m.iterations_done, m.iterations, m.loop_instances))
            .unwrap_or_default();
        if let Some(n) = raw_items(item.task).map(|items| items.len() as u32) {
            total = total.max(n.saturating_mul(instances.max(1)));
        }
        (total > 0).then_some((done, total))
    } else {
        None
    };
    GraphStatus {
        state,
        attempts: found.map(|m| m.attempts).unwrap_or(0),
        progress,
    }
}

// ---- labels -----------------------------------------------------------------------------------

const CHANNEL: &str = "pipelinechannel--";

fn strip_channel(name: &str) -> &str {
    name.strip_prefix(CHANNEL).unwrap_or(name)
}

/// What the input named `channel` of the last task of `scope` stands for, for people: a
/// pipeline parameter (`word`) or a task output (`pick-word.Output`), followed through the
/// enclosing groups' inputs.
fn channel_name(scope: &[&TaskSpec], channel: &str) -> String {
    let Some((task, outer)) = scope.split_last() else {
        return strip_channel(channel).to_string();
    };
    if let Some(input) = task.inputs.parameters.get(channel) {
        if let Some(out) = &input.task_output_parameter {
            return format!(
                "{}.{}",
                out.producer_task,
                strip_channel(&out.output_parameter_key)
            );
        }
        if let Some(name) = &input.component_input_parameter {
            return channel_name(outer, name);
        }
    }
    if let Some(input) = task.inputs.artifacts.get(channel) {
        if let Some(out) = &input.task_output_artifact {
            return format!(
                "{}.{}",
                out.producer_task,
                strip_channel(&out.output_artifact_key)
            );
        }
        if let Some(name) = &input.component_input_artifact {
            return channel_name(outer, name);
        }
    }
    strip_channel(channel).to_string()
}

/// A CEL condition of the KFP compiler, shortened: `inputs.parameter_values['pipelinechannel--n']`
/// becomes `n`, and `int(n)` becomes `n`.
fn short_condition(scope: &[&TaskSpec], condition: &str) -> String {
    let mut out = String::with_capacity(condition.len());
    let mut rest = condition;
    const HEAD: &str = "inputs.parameter_values[";
    while let Some(at) = rest.find(HEAD) {
        out.push_str(&rest[..at]);
        let after = &rest[at + HEAD.len()..];
        let quote = after.chars().next();
        let closed = match quote {
            Some(q @ ('\'' | '"')) => after[1..]
                .find(q)
                .filter(|end| after[1 + end + 1..].starts_with(']'))
                .map(|end| (&after[1..1 + end], 1 + end + 2)),
            _ => None,
        };
        match closed {
            Some((channel, used)) => {
                out.push_str(&channel_name(scope, channel));
                rest = &after[used..];
            }
            None => {
                out.push_str(HEAD);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    strip_casts(&out)
}

/// `int(x)` → `x` where `x` is a plain name (letters, digits, `_ - .`).
fn strip_casts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for cast in ["int(", "double(", "string(", "bool("] {
            let preceded_ok = out
                .chars()
                .last()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
            if preceded_ok && rest.starts_with(cast) {
                let inner = &rest[cast.len()..];
                if let Some(end) = inner.find(')') {
                    let name = &inner[..end];
                    if !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                    {
                        out.push_str(name);
                        rest = &inner[end + 1..];
                        continue 'scan;
                    }
                }
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn raw_items(task: &TaskSpec) -> Option<Vec<Value>> {
    let raw = task.parameter_iterator.as_ref()?.pointer("/items/raw")?;
    match raw {
        Value::String(text) => serde_json::from_str::<Value>(text)
            .ok()?
            .as_array()
            .cloned(),
        Value::Array(items) => Some(items.clone()),
        _ => None,
    }
}

fn loop_label(scope: &[&TaskSpec]) -> String {
    let Some(&task) = scope.last() else {
        return "for each".to_string();
    };
    let mut label = String::from("for each of ");
    let items = task
        .parameter_iterator
        .as_ref()
        .and_then(|it| it.get("items"));
    let over = if let Some(items) = raw_items(task) {
        let text = Value::Array(items.clone()).to_string().replace(',', ", ");
        if text.chars().count() <= 28 {
            text
        } else {
            format!("{} items", items.len())
        }
    } else if let Some(name) = items
        .and_then(|i| i.get("inputParameter"))
        .and_then(Value::as_str)
    {
        channel_name(scope, name)
    } else if let Some(name) = task
        .artifact_iterator
        .as_ref()
        .and_then(|it| it.pointer("/items/inputArtifact"))
        .and_then(Value::as_str)
    {
        channel_name(scope, name)
    } else {
        "its items".to_string()
    };
    label.push_str(&over);
    let limit = task
        .iterator_policy
        .as_ref()
        .and_then(|p| p.get("parallelismLimit"))
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .filter(|n| *n > 0);
    if let Some(n) = limit {
        let _ = write!(label, " · parallelism {n}");
    }
    label
}

fn group_label(kind: GroupKind, item: &Item<'_>) -> String {
    let task = item.task;
    let base = match kind {
        GroupKind::Loop => loop_label(&item.scope),
        GroupKind::Condition => match (&item.branch, condition_of(task)) {
            (Some(label), _) => label.clone(),
            (None, Some(c)) => format!("if {}", short_condition(&item.scope, c)),
            (None, None) => "condition".to_string(),
        },
        GroupKind::Branches => "if / elif / else".to_string(),
        GroupKind::ExitHandler => "exit handler".to_string(),
        GroupKind::Pipeline => display_name(item),
    };
    match (kind, condition_of(task)) {
        (GroupKind::Condition, _) | (_, None) => base,
        (_, Some(c)) => format!("{base} · if {}", short_condition(&item.scope, c)),
    }
}

fn display_name(item: &Item<'_>) -> String {
    if item.task.task_info.name.is_empty() {
        item.key.to_string()
    } else {
        item.task.task_info.name.clone()
    }
}

/// `text` cut to `max` characters, the last one being "…", when longer.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{}…", cut.trim_end())
    }
}

/// Escapes text for XML content and attribute values.
pub(crate) fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newline are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate as written: at most one decimal, no `-0`, no trailing `.0`.
pub(crate) fn num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if !r.is_finite() {
        return "0".into();
    }
    if r.fract() == 0.0 {
        let i = r as i64;
        format!("{i}")
    } else {
        format!("{r:.1}")
    }
}

// ---- layered layout ---------------------------------------------------------------------------

/// Where things went: top-left corners of the nodes, the size, and each edge's route
/// (bottom center of its source, the placeholder points it passes, top center of its target).
struct Layout {
    pos: Vec<(f64, f64)>,
    width: f64,
    height: f64,
    routes: Vec<Route>,
}

struct Route {
    from: usize,
    to: usize,
    /// Pairs of (x, y top) and (x, y bottom) of each layer it crosses on the way.
    through: Vec<(f64, f64, f64)>,
}

/// Lays out `sizes.len()` boxes with `edges` (from, to) between them.
fn layout(sizes: &[(f64, f64)], edges: &[(usize, usize)]) -> Layout {
    let n = sizes.len();
    let mut edges: Vec<(usize, usize)> = edges
        .iter()
        .copied()
        .filter(|&(a, b)| a != b && a < n && b < n)
        .collect();
    edges.sort_unstable();
    edges.dedup();

    // Layers: longest path from the sources (Kahn's order, lowest index first).
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in &edges {
        succs[a].push(b);
        preds[b].push(a);
    }
    let mut layer = vec![usize::MAX; n];
    let mut indegree: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&v| indegree[v] == 0).collect();
    let mut placed = 0;
    while placed < n {
        let v = match ready.pop_first() {
            Some(v) => v,
            // A cycle (a valid spec has none): break it at its lowest unplaced node.
            None => match (0..n).find(|&v| layer[v] == usize::MAX) {
                Some(v) => v,
                None => break,
            },
        };
        if layer[v] != usize::MAX {
            continue;
        }
        layer[v] = preds[v]
            .iter()
            .filter(|&&u| layer[u] != usize::MAX)
            .map(|&u| layer[u] + 1)
            .max()
            .unwrap_or(0);
        placed += 1;
        for &w in &succs[v] {
            indegree[w] = indegree[w].saturating_sub(1);
            if indegree[w] == 0 && layer[w] == usize::MAX {
                ready.insert(w);
            }
        }
    }
    let layer_count = layer.iter().copied().max().map_or(0, |m| m + 1);

    // The virtual graph: real nodes, then placeholder points on long edges.
    let mut vlayer = layer.clone();
    let mut vwidth: Vec<f64> = sizes.iter().map(|s| s.0).collect();
    let mut vpreds: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut vsuccs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let span: usize = edges
        .iter()
        .map(|&(a, b)| layer[b].saturating_sub(layer[a]).saturating_sub(1))
        .sum();
    let use_dummies = span <= MAX_DUMMIES;
    // Per edge: its chain of placeholders, or None when drawn straight (back/flat edges).
    let mut chains: Vec<Option<Vec<usize>>> = Vec::with_capacity(edges.len());
    for &(a, b) in &edges {
        if layer[b] <= layer[a] {
            chains.push(None);
            continue;
        }
        let mut chain = Vec::new();
        let mut prev = a;
        if use_dummies {
            for l in layer[a] + 1..layer[b] {
                let d = vlayer.len();
                vlayer.push(l);
                vwidth.push(DUMMY_W);
                vpreds.push(vec![prev]);
                vsuccs.push(Vec::new());
                vsuccs[prev].push(d);
                chain.push(d);
                prev = d;
            }
        }
        if use_dummies || layer[b] == layer[a] + 1 {
            vsuccs[prev].push(b);
            vpreds[b].push(prev);
        }
        chains.push(Some(chain));
    }
    let vn = vlayer.len();

    // Initial order: by index within each layer (real nodes by key, placeholders after).
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
    for v in 0..vn {
        layers[vlayer[v]].push(v);
    }
    let mut rank = vec![0usize; vn];
    let set_ranks = |layers: &Vec<Vec<usize>>, rank: &mut Vec<usize>| {
        for l in layers {
            for (i, &v) in l.iter().enumerate() {
                rank[v] = i;
            }
        }
    };
    set_ranks(&layers, &mut rank);
    let mut best = layers.clone();
    let mut best_crossings = crossings(&layers, &vsuccs, &rank);
    for _ in 0..SWEEPS {
        if best_crossings == 0 {
            break;
        }
        for l in layers.iter_mut().skip(1) {
            reorder(l, &vpreds, &mut rank);
        }
        for l in layers.iter_mut().rev().skip(1) {
            reorder(l, &vsuccs, &mut rank);
        }
        let c = crossings(&layers, &vsuccs, &rank);
        if c < best_crossings {
            best_crossings = c;
            best = layers.clone();
        }
    }
    let layers = best;
    set_ranks(&layers, &mut rank);

    // x: centers, packed, then pulled towards the neighbours' mean.
    let mut x = vec![0.0f64; vn];
    for l in &layers {
        let mut at = 0.0;
        for (i, &v) in l.iter().enumerate() {
            if i > 0 {
                at += gap(&vwidth, l[i - 1], v, n);
            }
            x[v] = at;
        }
    }
    for _ in 0..X_ROUNDS {
        for l in layers.iter().skip(1) {
            place(l, &vpreds, &vwidth, n, &mut x);
        }
        for l in layers.iter().rev().skip(1) {
            place(l, &vsuccs, &vwidth, n, &mut x);
        }
    }
    for l in layers.iter().skip(1) {
        place(l, &vpreds, &vwidth, n, &mut x);
    }
    let left = (0..vn)
        .map(|v| x[v] - vwidth[v] / 2.0)
        .fold(f64::INFINITY, f64::min);
    let left = if left.is_finite() { left } else { 0.0 };
    for xv in &mut x {
        *xv -= left;
    }
    let width = (0..vn)
        .map(|v| x[v] + vwidth[v] / 2.0)
        .fold(0.0f64, f64::max);

    // y: each layer as tall as its tallest node.
    let mut layer_h = vec![0.0f64; layer_count];
    for v in 0..n {
        layer_h[layer[v]] = layer_h[layer[v]].max(sizes[v].1);
    }
    let mut top = vec![0.0f64; layer_count];
    let mut at = 0.0;
    for l in 0..layer_count {
        top[l] = at;
        at += layer_h[l] + V_GAP;
    }
    let height = if layer_count == 0 { 0.0 } else { at - V_GAP };

    let pos = (0..n)
        .map(|v| (x[v] - sizes[v].0 / 2.0, top[layer[v]]))
        .collect();
    let routes = edges
        .iter()
        .zip(&chains)
        .map(|(&(a, b), chain)| Route {
            from: a,
            to: b,
            through: chain
                .iter()
                .flatten()
                .map(|&d| (x[d], top[vlayer[d]], top[vlayer[d]] + layer_h[vlayer[d]]))
                .collect(),
        })
        .collect();
    Layout {
        pos,
        width,
        height,
        routes,
    }
}

/// Distance between the centers of two neighbours in a layer.
fn gap(width: &[f64], a: usize, b: usize, real: usize) -> f64 {
    let space = if a >= real || b >= real {
        DUMMY_GAP
    } else {
        H_GAP
    };
    (width[a] + width[b]) / 2.0 + space
}

/// Sorts a layer by the mean rank of each node's neighbours in the adjacent layer (nodes
/// without neighbours keep their place), then renumbers it.
fn reorder(layer: &mut [usize], neighbours: &[Vec<usize>], rank: &mut [usize]) {
    let mut keyed: Vec<(f64, usize, usize)> = layer
        .iter()
        .map(|&v| {
            let ns = &neighbours[v];
            let key = if ns.is_empty() {
                rank[v] as f64
            } else {
                ns.iter().map(|&u| rank[u] as f64).sum::<f64>() / ns.len() as f64
            };
            (key, rank[v], v)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (i, (_, _, v)) in keyed.into_iter().enumerate() {
        layer[i] = v;
        rank[v] = i;
    }
}

/// Edge crossings between consecutive layers (inversions, counted with a Fenwick tree).
fn crossings(layers: &[Vec<usize>], succs: &[Vec<usize>], rank: &[usize]) -> u64 {
    let mut total = 0u64;
    for pair in layers.windows(2) {
        let lower = pair[1].len();
        let mut ends: Vec<(usize, usize)> = Vec::new();
        for &u in &pair[0] {
            for &v in &succs[u] {
                ends.push((rank[u], rank[v]));
            }
        }
        ends.sort_unstable();
        let mut tree = vec![0u64; lower + 1];
        for (seen, &(_, r)) in ends.iter().enumerate() {
            // How many earlier edges end right of r.
            let mut i = r + 1;
            let mut not_right = 0u64;
            while i > 0 {
                not_right += tree[i];
                i -= i & i.wrapping_neg();
            }
            total += seen as u64 - not_right;
            let mut i = r + 1;
            while i <= lower {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
        }
    }
    total
}

/// Moves a layer's nodes towards the mean x of their neighbours, keeping order and spacing:
/// the mean of the leftmost and rightmost placements that keep both.
fn place(layer: &[usize], neighbours: &[Vec<usize>], width: &[f64], real: usize, x: &mut [f64]) {
    if layer.is_empty() {
        return;
    }
    let want: Vec<f64> = layer
        .iter()
        .map(|&v| {
            let ns = &neighbours[v];
            if ns.is_empty() {
                x[v]
            } else {
                ns.iter().map(|&u| x[u]).sum::<f64>() / ns.len() as f64
            }
        })
        .collect();
    let k = layer.len();
    let mut from_left = want.clone();
    for i in 1..k {
        let min = from_left[i - 1] + gap(width, layer[i - 1], layer[i], real);
        from_left[i] = from_left[i].max(min);
    }
    let mut from_right = want;
    for i in (0..k - 1).rev() {
        let max = from_right[i + 1] - gap(width, layer[i], layer[i + 1], real);
        from_right[i] = from_right[i].min(max);
    }
    for i in 0..k {
        x[layer[i]] = (from_left[i] + from_right[i]) / 2.0;
    }
}

// ---- drawing ----------------------------------------------------------------------------------

/// A drawn DAG: its size and its SVG content in local coordinates.
struct Block {
    width: f64,
    height: f64,
    body: String,
}

struct Draw<'s> {
    /// `None` for the static view (no run).
    statuses: Option<&'s BTreeMap<String, GraphStatus>>,
}

impl Draw<'_> {
    fn state_attrs(&self, path: &str) -> (String, Option<&GraphStatus>) {
        match self.statuses {
            None => (" data-state=\"NONE\"".to_string(), None),
            Some(all) => match all.get(path) {
                Some(status) => {
                    let mut attrs = format!(" data-state=\"{}\"", escape_xml(&status.state));
                    if status.attempts > 1 {
                        let _ = write!(attrs, " data-attempts=\"{}\"", status.attempts);
                    }
                    (attrs, Some(status))
                }
                None => (" data-state=\"PENDING\"".to_string(), None),
            },
        }
    }

    fn dag(&self, items: &[Item<'_>]) -> Block {
        // Each item drawn at the origin: (width, height, opening tag without the position,
        // content).
        let drawn: Vec<(f64, f64, String, String)> =
            items.iter().map(|item| self.item(item)).collect();
        let index: BTreeMap<&str, usize> = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.key, i))
            .collect();
        let mut edges = Vec::new();
        for (i, item) in items.iter().enumerate() {
            for up in item.task.upstream_tasks() {
                if let Some(&j) = index.get(up) {
                    edges.push((j, i));
                }
            }
        }
        let sizes: Vec<(f64, f64)> = drawn.iter().map(|d| (d.0, d.1)).collect();
        let placed = layout(&sizes, &edges);
        let mut body = String::new();
        for route in &placed.routes {
            let (ax, ay) = placed.pos[route.from];
            let (bx, by) = placed.pos[route.to];
            let start = (ax + sizes[route.from].0 / 2.0, ay + sizes[route.from].1);
            let end = (bx + sizes[route.to].0 / 2.0, by);
            let dashed = waits_for_completion(items[route.to].task);
            let _ = write!(
                body,
                "<path class=\"edge{}\" data-from=\"{}\" data-to=\"{}\" d=\"{}\" fill=\"none\" \
                 stroke=\"#8c959f\" stroke-width=\"1.3\"{} marker-end=\"url(#graph-arrow)\"/>",
                if dashed { " exit" } else { "" },
                escape_xml(&items[route.from].path),
                escape_xml(&items[route.to].path),
                edge_path(start, &route.through, end),
                if dashed {
                    " stroke-dasharray=\"5 4\""
                } else {
                    ""
                },
            );
        }
        for (i, (_, _, open, content)) in drawn.iter().enumerate() {
            let (x, y) = placed.pos[i];
            let _ = write!(
                body,
                "{open} transform=\"translate({},{})\">{content}</g>",
                num(x),
                num(y)
            );
        }
        Block {
            width: placed.width,
            height: placed.height,
            body,
        }
    }

    fn item(&self, item: &Item<'_>) -> (f64, f64, String, String) {
        let (state_attrs, status) = self.state_attrs(&item.path);
        let path = escape_xml(&item.path);
        match &item.group {
            None => {
                let name = display_name(item);
                let open =
                    format!("<g class=\"node\" data-task=\"{path}\"{state_attrs} tabindex=\"0\"");
                let mut title = name.clone();
                if let Some(c) = condition_of(item.task) {
                    let _ = write!(title, "\nif {}", short_condition(&item.scope, c));
                }
                let content = format!(
                    "<title>{}</title><rect width=\"{}\" height=\"{}\" rx=\"6\" fill=\"#fff\" \
                     stroke=\"#8c959f\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                    escape_xml(&title),
                    num(NODE_W),
                    num(NODE_H),
                    num(NODE_W / 2.0),
                    // The baseline of 12 px text centered in the box.
                    num(NODE_H / 2.0 + 4.0),
                    escape_xml(&truncate(&name, NODE_CHARS)),
                );
                (NODE_W, NODE_H, open, content)
            }
            Some((kind, children)) => {
                let label = group_label(*kind, item);
                let progress = status
                    .and_then(|s| s.progress)
                    .map(|(done, total)| format!("· {done}/{total} done"))
                    .unwrap_or_default();
                let shown = truncate(&label, LABEL_CHARS);
                // Room for the count at its widest, so the box keeps its size as it grows.
                let progress_room = status
                    .and_then(|s| s.progress)
                    .map(|(_, total)| format!(" · {total}/{total} done").chars().count())
                    .unwrap_or(0);
                let label_w = (shown.chars().count() + progress_room) as f64 * LABEL_CHAR_W;
                let mut title = label.clone();
                if let (Some(_), Some(c)) = (&item.branch, condition_of(item.task)) {
                    let _ = write!(title, "\nif {}", short_condition(&item.scope, c));
                }
                let inner = if children.is_empty() {
                    Block {
                        width: 0.0,
                        height: 0.0,
                        body: String::new(),
                    }
                } else {
                    self.dag(children)
                };
                let width = (inner.width.max(label_w).max(GROUP_MIN_W) + 2.0 * GROUP_PAD).ceil();
                let height = (GROUP_LABEL_H + inner.height + 2.0 * GROUP_PAD).ceil();
                let open = format!(
                    "<g class=\"group {}\" data-task=\"{path}\"{state_attrs}",
                    kind.class()
                );
                let mut content = format!(
                    "<title>{}</title><rect width=\"{}\" height=\"{}\" rx=\"8\" \
                     fill=\"#f6f8fa\" fill-opacity=\"0.6\" stroke=\"#afb8c1\"{}/><text \
                     class=\"label\" x=\"{}\" y=\"{}\" font-size=\"11\">{}",
                    escape_xml(&title),
                    num(width),
                    num(height),
                    if *kind == GroupKind::ExitHandler || *kind == GroupKind::Branches {
                        " stroke-dasharray=\"5 4\""
                    } else {
                        ""
                    },
                    num(GROUP_PAD),
                    num(GROUP_PAD + 6.0),
                    escape_xml(&shown),
                );
                if !progress.is_empty() {
                    // Spaced with dx: a leading space in the tspan would be collapsed away.
                    let _ = write!(
                        content,
                        "<tspan class=\"progress\" dx=\"5\">{progress}</tspan>"
                    );
                }
                content.push_str("</text>");
                if !inner.body.is_empty() {
                    let _ = write!(
                        content,
                        "<g class=\"dag\" transform=\"translate({},{})\">{}</g>",
                        num(((width - inner.width) / 2.0).floor()),
                        num(GROUP_PAD + GROUP_LABEL_H),
                        inner.body
                    );
                }
                (width, height, open, content)
            }
        }
    }
}

/// A route as an SVG path: vertical-tangent cubic curves between layers, straight lines
/// through the placeholder points.
fn edge_path(start: (f64, f64), through: &[(f64, f64, f64)], end: (f64, f64)) -> String {
    let mut d = format!("M{},{}", num(start.0), num(start.1));
    let mut from = start;
    let curve = |d: &mut String, a: (f64, f64), b: (f64, f64)| {
        // Backward or flat edges bend out and back in.
        let bend = ((b.1 - a.1) / 2.0).max(24.0);
        let _ = write!(
            d,
            "C{},{} {},{} {},{}",
            num(a.0),
            num(a.1 + bend),
            num(b.0),
            num(b.1 - bend),
            num(b.0),
            num(b.1)
        );
    };
    for &(x, top, bottom) in through {
        curve(&mut d, from, (x, top));
        let _ = write!(d, "L{},{}", num(x), num(bottom));
        from = (x, bottom);
    }
    curve(&mut d, from, end);
    d
}

/// The pipeline's root DAG as an inline `<svg id="graph">`. With `states` empty, the static
/// view: every node and group gets `data-state="NONE"`. Otherwise each gets the state
/// [`aggregate_states`] gives it, `data-attempts` when above 1, and loops show how many
/// iterations are done.
pub fn pipeline_graph(spec: &PipelineSpec, states: &BTreeMap<String, NodeStatus>) -> String {
    let items = build(spec, &spec.root, "", &[]);
    let statuses = (!states.is_empty()).then(|| aggregate_states(spec, states));
    let draw = Draw {
        statuses: statuses.as_ref(),
    };
    let block = if items.is_empty() {
        Block {
            width: NODE_W,
            height: NODE_H,
            body: format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no tasks</text>",
                num(NODE_W / 2.0),
                num(NODE_H / 2.0)
            ),
        }
    } else {
        draw.dag(&items)
    };
    let width = (block.width + 2.0 * MARGIN).ceil();
    let height = (block.height + 2.0 * MARGIN).ceil();
    let title = spec
        .pipeline_info
        .display_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(&spec.pipeline_info.name);
    format!(
        "<svg id=\"graph\" class=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" \
         height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\" \
         role=\"img\" aria-label=\"{label}\"><defs><marker id=\"graph-arrow\" viewBox=\"0 0 10 \
         10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" \
         orient=\"auto-start-reverse\"><path d=\"M0,0L10,5L0,10z\" fill=\"#8c959f\"/></marker>\
         </defs><g transform=\"translate({m},{m})\">{body}</g></svg>",
        w = num(width),
        h = num(height),
        label = escape_xml(&format!("graph of pipeline {title}")),
        m = num(MARGIN),
        body = block.body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Instant;

    fn pipeline(name: &str) -> PipelineSpec {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/pipelines")
            .join(name);
        coracle_spec::load_path(&path)
            .unwrap_or_else(|e| panic!("failed to load {name}: {e}"))
            .spec
    }

    fn status(state: &str, attempts: u32) -> NodeStatus {
        NodeStatus {
            state: state.into(),
            attempts,
        }
    }

    /// The `<g ...>` opening tag of the element with `data-task="{path}"`.
    fn tag_of<'a>(svg: &'a str, path: &str) -> &'a str {
        let needle = format!("data-task=\"{path}\"");
        let at = svg
            .find(&needle)
            .unwrap_or_else(|| panic!("no element for {path} in {svg}"));
        let start = svg[..at].rfind('<').expect("an opening tag");
        let end = at + svg[at..].find('>').expect("the tag ends");
        &svg[start..=end]
    }

    /// The data-task values of the group elements enclosing the element for `path`,
    /// innermost first, found by walking the SVG's nesting.
    fn enclosing_groups(svg: &str, path: &str) -> Vec<String> {
        let needle = format!("data-task=\"{path}\"");
        let at = svg.find(&needle).expect("element present");
        let mut stack: Vec<Option<String>> = Vec::new();
        let mut i = 0;
        let bytes = svg.as_bytes();
        while i < at {
            if bytes[i] == b'<' {
                let end = i + svg[i..].find('>').expect("tag end");
                if end >= at {
                    // The element's own tag.
                    break;
                }
                let tag = &svg[i..=end];
                if tag.starts_with("<g") {
                    let task = tag
                        .find("data-task=\"")
                        .filter(|_| tag.contains("class=\"group"))
                        .map(|p| {
                            let rest = &tag[p + 11..];
                            rest[..rest.find('"').unwrap()].to_string()
                        });
                    stack.push(task);
                } else if tag == "</g>" {
                    stack.pop();
                }
                i = end + 1;
            } else {
                i += 1;
            }
        }
        stack.into_iter().rev().flatten().collect()
    }

    /// The `<path>` of the edge from `from` to `to`.
    fn edge_tag<'a>(svg: &'a str, from: &str, to: &str) -> &'a str {
        let needle = format!("data-from=\"{from}\" data-to=\"{to}\"");
        let at = svg
            .find(&needle)
            .unwrap_or_else(|| panic!("no edge {from} -> {to} in {svg}"));
        let start = svg[..at].rfind('<').expect("an opening tag");
        let end = at + svg[at..].find('>').expect("the tag ends");
        &svg[start..=end]
    }

    fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
        let needle = format!(" {name}=\"");
        let at = tag.find(&needle)? + needle.len();
        Some(&tag[at..at + tag[at..].find('"')?])
    }

    #[test]
    fn every_task_of_the_test_pipelines_is_drawn_inside_its_groups() {
        for file in [
            "conditions.yaml",
            "loops.yaml",
            "nested.yaml",
            "exit_handler.yaml",
            "artifact_loop.yaml",
            "add_chain.yaml",
        ] {
            let spec = pipeline(file);
            let svg = pipeline_graph(&spec, &BTreeMap::new());
            assert!(svg.starts_with("<svg id=\"graph\""), "{file}");
            let paths = task_paths(&spec);
            assert!(!paths.is_empty(), "{file}");
            for path in &paths {
                let tag = tag_of(&svg, path);
                assert_eq!(attr(tag, "data-state"), Some("NONE"), "{file} {path}");
                // Its groups are exactly its path's ancestors.
                let mut expected = Vec::new();
                let mut cut = path.as_str();
                while let Some((parent, _)) = cut.rsplit_once('/') {
                    expected.push(parent.to_string());
                    cut = parent;
                }
                assert_eq!(enclosing_groups(&svg, path), expected, "{file} {path}");
                assert_eq!(
                    svg.matches(&format!("data-task=\"{path}\"")).count(),
                    1,
                    "{file} {path}"
                );
            }
        }
    }

    #[test]
    fn groups_are_labelled_by_kind() {
        let loops = pipeline("loops.yaml");
        let svg = pipeline_graph(&loops, &BTreeMap::new());
        let paths = task_paths(&loops);
        for expected in [
            "for-loop-2",
            "for-loop-2/square",
            "for-loop-8/for-loop-10/pair",
            "after-loops",
        ] {
            assert!(paths.iter().any(|p| p == expected), "{expected}: {paths:?}");
        }
        assert!(svg.contains("for each of [1, 2, 3]<"), "{svg}");
        assert!(svg.contains("for each of names · parallelism 2<"), "{svg}");
        assert!(svg.contains("for each of make-list.Output<"), "{svg}");
        assert!(tag_of(&svg, "for-loop-2").contains("class=\"group loop\""));
        assert!(tag_of(&svg, "for-loop-2/square").contains("class=\"node\""));

        let conditions = pipeline("conditions.yaml");
        let svg = pipeline_graph(&conditions, &BTreeMap::new());
        assert!(svg.contains(">if word == &#39;tails&#39;<"), "{svg}");
        assert!(svg.contains(">if n &gt; 3<"), "{svg}");
        // The compiler's negations of earlier branches read as elif / else.
        let label_of = |path: &str| {
            let tag = tag_of(&svg, path);
            let at = svg.find(tag).unwrap() + tag.len();
            let rest = &svg[at..];
            let start = rest.find("class=\"label\"").unwrap();
            let rest = &rest[start..];
            let text = &rest[rest.find('>').unwrap() + 1..];
            text[..text.find('<').unwrap()].to_string()
        };
        assert_eq!(label_of("condition-branches-1/condition-3"), "if n &gt; 3");
        assert_eq!(
            label_of("condition-branches-1/condition-4"),
            "elif n &gt; 0"
        );
        assert_eq!(label_of("condition-branches-1/condition-5"), "else");
        assert_eq!(
            label_of("condition-branches-6/condition-8"),
            "elif pick-word.Output == &#39;tails&#39;"
        );
        assert_eq!(label_of("condition-branches-6/condition-9"), "else");
        assert_eq!(
            label_of("condition-branches-10/condition-11"),
            "if number.Output &gt; number-2.Output"
        );
        assert!(svg.contains("<title>else\nif !(n &gt; 3) &amp;&amp; !(n &gt; 0)</title>"));
        assert!(
            svg.contains(">if pick-word.Output == &#39;heads&#39;<"),
            "{svg}"
        );
        assert!(!svg.contains("pipelinechannel--"), "{svg}");
        assert!(tag_of(&svg, "condition-branches-1").contains("class=\"group branches\""));
        assert!(tag_of(&svg, "condition-13").contains("class=\"group condition\""));

        let exit = pipeline("exit_handler.yaml");
        let svg = pipeline_graph(&exit, &BTreeMap::new());
        assert!(tag_of(&svg, "exit-handler-1").contains("class=\"group exit-handler\""));
        assert!(svg.contains(">exit handler<"));
        let edge = edge_tag(&svg, "exit-handler-1", "report-status");
        assert!(edge.contains("class=\"edge exit\"") && edge.contains("stroke-dasharray"));
        let inner = edge_tag(
            &svg,
            "exit-handler-1/produce-message",
            "exit-handler-1/print-message",
        );
        assert!(inner.contains("class=\"edge\""), "{inner}");
        assert!(!inner.contains("stroke-dasharray"), "{inner}");

        let nested = pipeline("nested.yaml");
        let svg = pipeline_graph(&nested, &BTreeMap::new());
        assert!(tag_of(&svg, "middle").contains("class=\"group pipeline\""));
        assert!(tag_of(&svg, "middle/inner-2/add").contains("class=\"node\""));
        // The data edge middle → describe.
        assert!(svg.contains("data-from=\"middle\" data-to=\"describe\""));
    }

    #[test]
    fn conditions_are_shortened() {
        let task = TaskSpec {
            inputs: coracle_spec::TaskInputsSpec {
                parameters: [(
                    "pipelinechannel--flip-Output".to_string(),
                    coracle_spec::ParameterInputSpec {
                        task_output_parameter: Some(coracle_spec::TaskOutputParameterSpec {
                            producer_task: "flip".into(),
                            output_parameter_key: "Output".into(),
                        }),
                        ..Default::default()
                    },
                )]
                .into_iter()
                .collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            short_condition(
                &[&task],
                "!(int(inputs.parameter_values['pipelinechannel--flip-Output']) > 3) && \
                 inputs.parameter_values[\"pipelinechannel--n\"] == 'x'"
            ),
            "!(flip.Output > 3) && n == 'x'"
        );
        // Malformed text is kept as it is.
        assert_eq!(
            short_condition(&[&task], "inputs.parameter_values['oops"),
            "inputs.parameter_values['oops"
        );
        assert_eq!(strip_casts("print(int(a)+mint(b))"), "print(a+mint(b))");
    }

    #[test]
    fn layout_is_deterministic() {
        for file in ["loops.yaml", "conditions.yaml", "nested.yaml"] {
            let spec = pipeline(file);
            let mut states = BTreeMap::new();
            states.insert("for-loop-2".to_string(), status("RUNNING", 1));
            states.insert("for-loop-2/0/square".to_string(), status("SUCCEEDED", 1));
            let first = pipeline_graph(&spec, &states);
            for _ in 0..3 {
                assert_eq!(pipeline_graph(&spec, &states), first, "{file}");
            }
        }
    }

    #[test]
    fn small_graph_snapshot() {
        let spec = pipeline("exit_handler.yaml");
        let mut states = BTreeMap::new();
        states.insert("exit-handler-1".to_string(), status("FAILED", 1));
        states.insert(
            "exit-handler-1/produce-message".to_string(),
            status("SUCCEEDED", 1),
        );
        states.insert(
            "exit-handler-1/print-message".to_string(),
            status("FAILED", 3),
        );
        states.insert("report-status".to_string(), status("RUNNING", 1));
        insta::assert_snapshot!(pipeline_graph(&spec, &states));
    }

    #[test]
    fn nodes_do_not_overlap_and_edges_point_down() {
        let spec = pipeline("conditions.yaml");
        let svg = pipeline_graph(&spec, &BTreeMap::new());
        // Top-level boxes: translate(x,y) of the root's direct children.
        let root = tag_positions(&svg, &task_paths(&spec));
        for (i, a) in root.iter().enumerate() {
            for b in &root[i + 1..] {
                if a.0.contains('/') || b.0.contains('/') {
                    continue;
                }
                let apart =
                    a.1 + a.3 <= b.1 || b.1 + b.3 <= a.1 || a.2 + a.4 <= b.2 || b.2 + b.4 <= a.2;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
        // finish depends on condition-branches-1: it is below it.
        let find = |p: &str| root.iter().find(|r| r.0 == p).unwrap().clone();
        let (_, _, by, _, bh) = find("condition-branches-1");
        let (_, _, fy, _, _) = find("finish");
        assert!(fy >= by + bh, "finish at {fy}, branches end at {}", by + bh);
    }

    /// (path, x, y, width, height) of each element, in its parent's coordinates.
    fn tag_positions(svg: &str, paths: &[String]) -> Vec<(String, f64, f64, f64, f64)> {
        paths
            .iter()
            .map(|p| {
                let tag = tag_of(svg, p);
                let t = attr(tag, "transform").unwrap();
                let (x, y) = t
                    .trim_start_matches("translate(")
                    .trim_end_matches(')')
                    .split_once(',')
                    .unwrap();
                let after = &svg[svg.find(tag).unwrap() + tag.len()..];
                let rect = &after[after.find("<rect").unwrap()..];
                let rect = &rect[..rect.find('>').unwrap()];
                (
                    p.clone(),
                    x.parse().unwrap(),
                    y.parse().unwrap(),
                    attr(rect, "width").unwrap().parse().unwrap(),
                    attr(rect, "height").unwrap().parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn loop_iterations_are_merged_worst_first() {
        let spec = pipeline("loops.yaml");
        assert_eq!(
            static_path(&spec, "for-loop-8/1/for-loop-10/0/pair"),
            Some(("for-loop-8/for-loop-10/pair".to_string(), false))
        );
        assert_eq!(
            static_path(&spec, "for-loop-2/2"),
            Some(("for-loop-2".to_string(), true))
        );
        assert_eq!(static_path(&spec, "no-such-task"), None);
        assert_eq!(static_path(&spec, "make-list/extra"), None);

        let mut states = BTreeMap::new();
        states.insert("for-loop-2".into(), status("RUNNING", 1));
        for (i, state) in ["SUCCEEDED", "FAILED", "RUNNING"].iter().enumerate() {
            states.insert(format!("for-loop-2/{i}"), status(state, 1));
            states.insert(
                format!("for-loop-2/{i}/square"),
                status(state, if i == 1 { 2 } else { 1 }),
            );
        }
        // Nested loop: cached and succeeded iterations show SUCCEEDED.
        states.insert("for-loop-8".into(), status("SUCCEEDED", 1));
        for outer in 0..2 {
            states.insert(format!("for-loop-8/{outer}"), status("SUCCEEDED", 1));
            states.insert(
                format!("for-loop-8/{outer}/for-loop-10"),
                status("SUCCEEDED", 1),
            );
            for inner in 0..2 {
                states.insert(
                    format!("for-loop-8/{outer}/for-loop-10/{inner}"),
                    status("SUCCEEDED", 1),
                );
                states.insert(
                    format!("for-loop-8/{outer}/for-loop-10/{inner}/pair"),
                    status(if inner == 0 { "CACHED" } else { "SUCCEEDED" }, 1),
                );
            }
        }
        // A skipped loop's body is not recorded: it shows SKIPPED too.
        states.insert("for-loop-6".into(), status("SKIPPED", 1));
        states.insert("make-list".into(), status("SUCCEEDED", 1));

        let merged = aggregate_states(&spec, &states);
        assert_eq!(merged["for-loop-2/square"].state, "FAILED");
        assert_eq!(merged["for-loop-2/square"].attempts, 2);
        assert_eq!(merged["for-loop-2"].state, "RUNNING");
        assert_eq!(merged["for-loop-2"].progress, Some((2, 3)));
        assert_eq!(merged["for-loop-8/for-loop-10/pair"].state, "SUCCEEDED");
        assert_eq!(merged["for-loop-8/for-loop-10"].progress, Some((4, 4)));
        assert_eq!(merged["for-loop-8"].progress, Some((2, 2)));
        assert_eq!(merged["for-loop-6/use-fields"].state, "SKIPPED");
        assert_eq!(merged["for-loop-3/greet"].state, "PENDING");
        // Known from the raw items before any iteration starts.
        // Skipped: no count; items from a parameter not started yet: none known.
        assert_eq!(merged["for-loop-6"].progress, None);
        assert_eq!(merged["for-loop-3"].progress, None);
        assert_eq!(merged.len(), task_paths(&spec).len());

        let svg = pipeline_graph(&spec, &states);
        let square = tag_of(&svg, "for-loop-2/square");
        assert_eq!(attr(square, "data-state"), Some("FAILED"));
        assert_eq!(attr(square, "data-attempts"), Some("2"));
        assert!(svg.contains("<tspan class=\"progress\" dx=\"5\">· 2/3 done</tspan>"));
        assert_eq!(
            attr(tag_of(&svg, "after-loops"), "data-state"),
            Some("PENDING")
        );
        assert_eq!(attr(tag_of(&svg, "make-list"), "data-attempts"), None);
        // No iteration paths in the graph.
        assert!(!svg.contains("for-loop-2/0"));
    }

    #[test]
    fn raw_loop_total_counts_items_not_yet_started() {
        let spec = pipeline("loops.yaml");
        let mut states = BTreeMap::new();
        states.insert("for-loop-2".into(), status("RUNNING", 1));
        states.insert("for-loop-2/0".into(), status("RUNNING", 1));
        let merged = aggregate_states(&spec, &states);
        assert_eq!(merged["for-loop-2"].progress, Some((0, 3)));
        // Not started yet, raw items: known all the same.
        assert_eq!(merged["for-loop-6"].state, "PENDING");
        assert_eq!(merged["for-loop-6"].progress, Some((0, 2)));

        // Two of three iterations done, the third not started (parallelism): pending still.
        states.insert("for-loop-2/0".into(), status("SUCCEEDED", 1));
        states.insert("for-loop-2/0/square".into(), status("SUCCEEDED", 1));
        states.insert("for-loop-2/1".into(), status("SUCCEEDED", 1));
        states.insert("for-loop-2/1/square".into(), status("CACHED", 1));
        let merged = aggregate_states(&spec, &states);
        assert_eq!(merged["for-loop-2"].progress, Some((2, 3)));
        assert_eq!(merged["for-loop-2/square"].state, "PENDING");
        // Once the loop ended, what was recorded is all there is.
        states.insert("for-loop-2".into(), status("FAILED", 1));
        let merged = aggregate_states(&spec, &states);
        assert_eq!(merged["for-loop-2/square"].state, "SUCCEEDED");
    }

    fn executor_task(name: &str, after: &[String]) -> TaskSpec {
        TaskSpec {
            task_info: coracle_spec::TaskInfo { name: name.into() },
            component_ref: coracle_spec::ComponentRef {
                name: "comp-leaf".into(),
            },
            dependent_tasks: after.to_vec(),
            ..Default::default()
        }
    }

    fn spec_with(tasks: BTreeMap<String, TaskSpec>) -> PipelineSpec {
        PipelineSpec {
            pipeline_info: coracle_spec::PipelineInfo {
                name: "built".into(),
                display_name: None,
                description: None,
            },
            components: [(
                "comp-leaf".to_string(),
                ComponentSpec {
                    executor_label: Some("exec-leaf".into()),
                    ..Default::default()
                },
            )]
            .into_iter()
            .collect(),
            deployment_spec: Default::default(),
            root: ComponentSpec {
                dag: Some(coracle_spec::DagSpec {
                    tasks,
                    outputs: None,
                }),
                ..Default::default()
            },
            default_pipeline_root: None,
            sdk_version: None,
            schema_version: None,
            platforms: None,
        }
    }

    #[test]
    fn names_are_escaped_and_cut() {
        let mut tasks = BTreeMap::new();
        tasks.insert(
            "evil".to_string(),
            executor_task("<b>&\"quoted\"</b> and a very long name indeed", &[]),
        );
        tasks.insert(
            "next".to_string(),
            executor_task("next", &["evil".to_string()]),
        );
        let spec = spec_with(tasks);
        let svg = pipeline_graph(&spec, &BTreeMap::new());
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(!svg.contains("\"quoted\""), "{svg}");
        assert!(
            svg.contains("<title>&lt;b&gt;&amp;&quot;quoted&quot;&lt;/b&gt; and a very long name indeed</title>"),
            "{svg}"
        );
        assert!(
            svg.contains(">&lt;b&gt;&amp;&quot;quoted&quot;&lt;/b&gt; and a…</text>"),
            "{svg}"
        );
        // Every `<` that remains opens an element or closes one.
        for (i, _) in svg.match_indices('<') {
            let next = svg[i + 1..].chars().next().unwrap();
            assert!(next.is_ascii_alphabetic() || next == '/', "stray < at {i}");
        }
    }

    #[test]
    fn a_wide_fan_out_stays_fast() {
        let mut tasks = BTreeMap::new();
        tasks.insert("start".to_string(), executor_task("start", &[]));
        let middle: Vec<String> = (0..300).map(|i| format!("work-{i:03}")).collect();
        for name in &middle {
            tasks.insert(name.clone(), executor_task(name, &["start".to_string()]));
        }
        tasks.insert("end".to_string(), executor_task("end", &middle));
        // A long edge too, which needs placeholders.
        tasks.insert(
            "late".to_string(),
            executor_task("late", &["start".to_string(), "end".to_string()]),
        );
        let spec = spec_with(tasks);
        let mut states = BTreeMap::new();
        for name in &middle {
            states.insert(name.clone(), status("SUCCEEDED", 1));
        }
        let started = Instant::now();
        let svg = pipeline_graph(&spec, &states);
        let took = started.elapsed();
        eprintln!("drew a 300-task fan-out in {took:?}");
        assert!(
            took.as_millis() < 50,
            "a 300-task fan-out took {took:?} to draw"
        );
        assert_eq!(svg.matches("class=\"node\"").count(), 303);
        assert_eq!(svg.matches("class=\"edge").count(), 602);
        // start is centered above the fan-out and end below it.
        let pos = tag_positions(&svg, &["start".into(), "end".into(), "work-000".into()]);
        assert!((pos[0].1 - pos[1].1).abs() < NODE_W / 2.0, "{pos:?}");
        assert!(pos[0].2 < pos[2].2 && pos[2].2 < pos[1].2, "{pos:?}");
    }

    #[test]
    fn crossings_are_reduced() {
        // a → {d}, b → {c}: drawn in key order the edges would cross; the sweep uncrosses.
        let sizes = vec![(10.0, 10.0); 4];
        let edges = [(0, 3), (1, 2)];
        let placed = layout(&sizes, &edges);
        let (ax, bx) = (placed.pos[0].0, placed.pos[1].0);
        let (cx, dx) = (placed.pos[2].0, placed.pos[3].0);
        assert_eq!(ax < bx, dx < cx, "{:?}", placed.pos);
    }

    #[test]
    fn cycles_and_bad_references_do_not_panic() {
        let sizes = vec![(10.0, 10.0); 3];
        let placed = layout(&sizes, &[(0, 1), (1, 2), (2, 0), (0, 0), (5, 1)]);
        assert_eq!(placed.pos.len(), 3);
        assert_eq!(placed.routes.len(), 3);
        let empty = layout(&[], &[]);
        assert_eq!((empty.width, empty.height), (0.0, 0.0));

        let spec = spec_with(BTreeMap::new());
        let svg = pipeline_graph(&spec, &BTreeMap::new());
        assert!(svg.contains(">no tasks<"));
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(3.0), "3");
        assert_eq!(num(-0.01), "0");
        assert_eq!(num(2.25), "2.3");
        assert_eq!(num(f64::NAN), "0");
    }
}
