// Coracle UI: actions call the JSON API; run pages poll for status and stream task logs.
"use strict";

const coracle = (() => {
  const API = "/apis/v2beta1";

  function showError(message) {
    const box = document.getElementById("error");
    if (!box) { alert(message); return; }
    box.textContent = message;
    box.hidden = false;
    window.scrollTo(0, 0);
  }

  // Calls the API; resolves with the JSON body, or shows the error and rejects.
  async function api(method, path, body) {
    const options = { method, headers: {} };
    if (body instanceof FormData) {
      options.body = body;
    } else if (body !== undefined) {
      options.headers["content-type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path.startsWith("/") && !path.startsWith(API) ? API + path : path, options);
    } catch (e) {
      showError("the server cannot be reached: " + e);
      throw e;
    }
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : {}; } catch (e) { json = { message: text }; }
    if (!response.ok) {
      const message = (json && (json.message || json.error)) || response.statusText;
      showError(message);
      throw new Error(message);
    }
    return json;
  }

  // Buttons with data-api="METHOD /path" call it, then go to data-then (or reload).
  function wireActionButtons(root) {
    for (const button of root.querySelectorAll("[data-api]")) {
      button.addEventListener("click", async (event) => {
        event.preventDefault();
        if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
        const [method, path] = button.dataset.api.split(" ");
        button.disabled = true;
        try {
          const result = await api(method, path, button.dataset.body ? JSON.parse(button.dataset.body) : undefined);
          const then = button.dataset.then;
          if (then) {
            window.location = then.replace(/\{(\w+)\}/g, (_, key) => result[key] ?? "");
          } else {
            window.location.reload();
          }
        } catch (e) {
          button.disabled = false;
        }
      });
    }
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  const pages = {};

  document.addEventListener("DOMContentLoaded", () => {
    wireActionButtons(document);
    const page = document.body.dataset.page;
    if (pages[page]) pages[page]();
  });

  return { api, showError, pages, wireActionButtons, escapeHtml };
})();

// ---- run pages (runs list, run details, task panel, new-run form) ----
(() => {
  const { api, pages, showError, wireActionButtons } = coracle;

  function selectedRuns() {
    return [...document.querySelectorAll("input.select-run:checked")].map((box) => box.value);
  }

  pages["runs"] = () => {
    const compare = document.getElementById("compare-selected");
    if (compare) compare.addEventListener("click", () => {
      const runs = selectedRuns();
      if (runs.length < 2) { showError("select two or more runs to compare"); return; }
      window.location = "/compare?runs=" + runs.map(encodeURIComponent).join(",");
    });
    const each = (id, method, suffix, question) => {
      const button = document.getElementById(id);
      if (!button) return;
      button.addEventListener("click", async () => {
        const runs = selectedRuns();
        if (runs.length === 0) { showError("select one or more runs first"); return; }
        if (question && !confirm(question.replace("N", runs.length))) return;
        try {
          for (const run of runs) await api(method, "/apis/v2beta1/runs/" + encodeURIComponent(run) + suffix);
          window.location.reload();
        } catch (e) { /* shown */ }
      });
    };
    each("archive-selected", "POST", ":archive");
    each("restore-selected", "POST", ":unarchive");
    each("delete-selected", "DELETE", "", "Delete N run(s)?");
  };

  // Streams a task's log into `pre`: fetches from the last offset until the task is done.
  function streamLog(pre) {
    let offset = 0;
    let stopped = false;
    const decoder = new TextDecoder();
    async function next() {
      if (stopped || !document.body.contains(pre)) return;
      const sep = pre.dataset.src.includes("?") ? "&" : "?";
      let response;
      try {
        response = await fetch(pre.dataset.src + sep + "offset=" + offset, { cache: "no-store" });
      } catch (e) { setTimeout(next, 2000); return; }
      if (!response.ok) { setTimeout(next, 2000); return; }
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (bytes.length > 0) {
        const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.textContent += decoder.decode(bytes, { stream: true });
        if (atBottom) pre.scrollTop = pre.scrollHeight;
      }
      offset = Number(response.headers.get("x-log-offset") || offset);
      if (response.headers.get("x-task-done") === "1") {
        pre.dataset.complete = "1";
        if (pre.textContent === "") pre.textContent = "(no output)";
        return;
      }
      setTimeout(next, bytes.length > 0 ? 200 : 1000);
    }
    next();
    return () => { stopped = true; };
  }

  pages["run"] = () => {
    const header = document.getElementById("run-header");
    const runId = header.dataset.runId;
    const panel = document.getElementById("task-panel");
    let selected = null;
    let stopLog = null;

    async function openTask(path) {
      selected = path;
      for (const node of document.querySelectorAll("svg#graph .node")) {
        node.classList.toggle("selected", node.dataset.task === path);
      }
      const url = "/runs/" + encodeURIComponent(runId) + "/tasks/" + path.split("/").map(encodeURIComponent).join("/");
      const response = await fetch(url, { cache: "no-store" });
      if (!response.ok) {
        panel.innerHTML = "<p class=\"muted\">" + coracle.escapeHtml(path) + " has not started yet.</p>";
        return;
      }
      const html = await response.text();
      const doc = new DOMParser().parseFromString(html, "text/html");
      const section = doc.querySelector("section.task");
      panel.replaceChildren(document.importNode(section, true));
      if (stopLog) stopLog();
      const pre = panel.querySelector("pre#task-log");
      if (pre) stopLog = streamLog(pre);
    }

    document.getElementById("graph")?.addEventListener("click", (event) => {
      const node = event.target.closest(".node");
      if (node) openTask(node.dataset.task);
    });

    // Live status: the run's and every task's, until the run is over.
    let lastTaskStates = "";
    async function poll() {
      let status;
      try {
        const response = await fetch("/runs/" + encodeURIComponent(runId) + "/status.json", { cache: "no-store" });
        if (!response.ok) { setTimeout(poll, 2000); return; }
        status = await response.json();
      } catch (e) { setTimeout(poll, 2000); return; }
      const state = document.getElementById("run-state");
      state.textContent = status.state;
      state.className = "state state-" + status.state;
      document.getElementById("run-duration").textContent = status.duration;
      const error = document.getElementById("run-error");
      if (status.error) { error.textContent = status.error; error.hidden = false; }
      // Nodes and groups carry static paths; `graph` has their merged states (a loop's
      // body task shows the worst of its iterations, the loop how many are done).
      const merged = status.graph || {};
      for (const item of document.querySelectorAll("svg#graph [data-task]")) {
        const task = merged[item.dataset.task] || status.tasks[item.dataset.task];
        if (!task) continue;
        item.dataset.state = task.state;
        if (task.attempts > 1) item.dataset.attempts = String(task.attempts);
        if (task.progress) {
          const label = item.querySelector(":scope > text > tspan.progress");
          if (label) label.textContent = "· " + task.progress[0] + "/" + task.progress[1] + " done";
        }
      }
      const taskStates = JSON.stringify(status.tasks);
      if (selected && taskStates !== lastTaskStates && status.tasks[selected]) {
        const current = panel.querySelector("section.task");
        const shown = current && current.querySelector("#task-state");
        if (!shown || shown.textContent !== status.tasks[selected].state) openTask(selected);
      }
      lastTaskStates = taskStates;
      document.getElementById("terminate").hidden = status.terminal;
      document.getElementById("retry").hidden = !(status.state === "FAILED" || status.state === "CANCELED");
      if (!status.terminal) setTimeout(poll, 1000);
      else header.dataset.terminal = "true";
    }
    poll();
  };

  pages["run-new"] = () => {
    const form = document.getElementById("run-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const parameters = {};
      for (const input of form.querySelectorAll("[name^=param-]")) {
        const name = input.name.slice("param-".length);
        const kind = input.dataset.kind;
        if (kind === "BOOLEAN") { parameters[name] = input.checked; continue; }
        const text = input.value;
        if (text === "") continue;
        if (kind === "NUMBER_INTEGER" || kind === "NUMBER_DOUBLE") {
          const number = Number(text);
          if (Number.isNaN(number)) { showError(name + ": not a number"); return; }
          parameters[name] = number;
        } else if (kind === "LIST" || kind === "STRUCT") {
          try { parameters[name] = JSON.parse(text); } catch (e) { showError(name + ": not valid JSON: " + e.message); return; }
        } else {
          parameters[name] = text;
        }
      }
      const body = {
        display_name: form.display_name.value,
        experiment_id: form.experiment_id.value || undefined,
        pipeline_version_reference: { pipeline_id: form.dataset.pipelineId, pipeline_version_id: form.dataset.versionId },
        runtime_config: { parameters },
      };
      const submit = document.getElementById("run-submit");
      submit.disabled = true;
      try {
        const run = await api("POST", "/apis/v2beta1/runs", body);
        window.location = "/runs/" + encodeURIComponent(run.run_id);
      } catch (e) { submit.disabled = false; }
    });
  };
})();

// ---- catalog, recurring and compare pages (pipelines, experiments, recurring runs) ----
(() => {
  const { api, pages, showError } = coracle;
  const API = "/apis/v2beta1";

  // Goes to /compare with the runs whose `input.select-run` boxes are checked.
  function wireCompare() {
    const button = document.getElementById("compare-selected");
    if (!button) return;
    button.addEventListener("click", () => {
      const runs = [...document.querySelectorAll("input.select-run:checked")].map((box) => box.value);
      if (runs.length < 2) { showError("select two or more runs to compare"); return; }
      window.location = "/compare?runs=" + runs.map(encodeURIComponent).join(",");
    });
  }

  // Uploads the file of an upload form (or has the server fetch its URL); resolves with the
  // API's answer. `pipelineId` set: a new version of that pipeline.
  async function uploadPipeline(form, pipelineId) {
    const file = form.querySelector("input[name=uploadfile]").files[0];
    const url = form.querySelector("input[name=url]").value.trim();
    const name = form.querySelector("input[name=name]").value.trim();
    const description = form.querySelector("input[name=description]").value;
    if (file && url) throw showAndFail("give a file or a URL, not both");
    if (!file && !url) throw showAndFail("choose a pipeline file or give its URL");
    if (url) {
      const endpoint = new URL("/ui/pipelines/upload-url", window.location.href).href;
      return api("POST", endpoint, { url, name, description, pipeline_id: pipelineId || "" });
    }
    const query = new URLSearchParams();
    if (name) query.set("name", name);
    if (description) query.set("description", description);
    if (pipelineId) query.set("pipelineid", pipelineId);
    const data = new FormData();
    data.append("uploadfile", file, file.name);
    const route = pipelineId ? "/pipelines/upload_version" : "/pipelines/upload";
    return api("POST", API + route + "?" + query.toString(), data);
  }

  function showAndFail(message) {
    showError(message);
    return new Error(message);
  }

  // Runs `action` on submit with the submit button disabled meanwhile.
  function onSubmit(form, button, action) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      try { await action(); } catch (e) { button.disabled = false; }
    });
  }

  pages["pipelines"] = () => {
    const form = document.getElementById("upload-form");
    onSubmit(form, document.getElementById("upload-submit"), async () => {
      const pipeline = await uploadPipeline(form, "");
      window.location = "/pipelines/" + encodeURIComponent(pipeline.pipeline_id);
    });
  };

  pages["pipeline"] = () => {
    const form = document.getElementById("version-form");
    const pipelineId = form.dataset.pipelineId;
    onSubmit(form, document.getElementById("version-submit"), async () => {
      const version = await uploadPipeline(form, pipelineId);
      window.location = "/pipelines/" + encodeURIComponent(pipelineId) +
        "?version=" + encodeURIComponent(version.pipeline_version_id);
    });
  };

  pages["experiments"] = () => {
    const form = document.getElementById("experiment-form");
    onSubmit(form, document.getElementById("experiment-submit"), async () => {
      const experiment = await api("POST", API + "/experiments", {
        display_name: form.elements["name"].value,
        description: form.elements["description"].value,
      });
      window.location = "/experiments/" + encodeURIComponent(experiment.experiment_id);
    });
  };

  pages["experiment"] = wireCompare;
  pages["recurring-run"] = wireCompare;

  // One input per root parameter of a spec, typed, prefilled with its default.
  function parameterInputs(box, spec) {
    const plain = spec && spec.pipeline_spec ? spec.pipeline_spec : spec;
    const parameters = (((plain || {}).root || {}).inputDefinitions || {}).parameters || {};
    box.replaceChildren();
    const legend = document.createElement("legend");
    legend.textContent = "Parameters";
    box.append(legend);
    const names = Object.keys(parameters).sort();
    if (names.length === 0) {
      const none = document.createElement("p");
      none.className = "muted";
      none.textContent = "This pipeline has no parameters.";
      box.append(none);
    }
    for (const name of names) {
      const definition = parameters[name];
      const kind = definition.parameterType || "STRING";
      const id = "recurring-param-" + name;
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = name + " (" + kind + ")";
      let input;
      if (kind === "LIST" || kind === "STRUCT") {
        input = document.createElement("textarea");
        if (definition.defaultValue !== undefined) input.value = JSON.stringify(definition.defaultValue);
      } else {
        input = document.createElement("input");
        if (kind === "BOOLEAN") {
          input.type = "checkbox";
          input.checked = definition.defaultValue === true;
        } else if (kind === "NUMBER_INTEGER" || kind === "NUMBER_DOUBLE") {
          input.type = "number";
          input.step = kind === "NUMBER_INTEGER" ? "1" : "any";
        } else {
          input.type = "text";
        }
        if (kind !== "BOOLEAN" && definition.defaultValue !== undefined) input.value = String(definition.defaultValue);
      }
      input.id = id;
      input.name = "param-" + name;
      input.dataset.kind = kind;
      if (definition.defaultValue === undefined && !definition.isOptional && kind !== "BOOLEAN") input.required = true;
      box.append(label, input);
    }
  }

  // The parameters of a form's `param-*` inputs as JSON values; throws on a bad one.
  function parameterValues(form) {
    const parameters = {};
    for (const input of form.querySelectorAll("[name^=param-]")) {
      const name = input.name.slice("param-".length);
      const kind = input.dataset.kind;
      if (kind === "BOOLEAN") { parameters[name] = input.checked; continue; }
      const text = input.value;
      if (text === "") continue;
      if (kind === "NUMBER_INTEGER" || kind === "NUMBER_DOUBLE") {
        const number = Number(text);
        if (Number.isNaN(number)) throw showAndFail(name + ": not a number");
        parameters[name] = number;
      } else if (kind === "LIST" || kind === "STRUCT") {
        try { parameters[name] = JSON.parse(text); } catch (e) { throw showAndFail(name + ": not valid JSON: " + e.message); }
      } else {
        parameters[name] = text;
      }
    }
    return parameters;
  }

  pages["recurring-runs"] = () => {
    const form = document.getElementById("recurring-form");
    const select = form.elements["pipeline_version"];
    const box = document.getElementById("recurring-params");
    async function showParameters() {
      const [pipelineId, versionId] = select.value.split("/");
      if (!pipelineId || !versionId) return;
      const version = await api("GET", API + "/pipelines/" + encodeURIComponent(pipelineId) +
        "/versions/" + encodeURIComponent(versionId));
      parameterInputs(box, version.pipeline_spec);
      box.dataset.version = select.value;
    }
    select.addEventListener("change", () => { showParameters().catch(() => {}); });
    if (select.value) showParameters().catch(() => {});
    onSubmit(form, document.getElementById("recurring-submit"), async () => {
      const [pipelineId, versionId] = select.value.split("/");
      if (!pipelineId || !versionId) throw showAndFail("choose a pipeline version");
      const cron = form.elements["cron"].value.trim();
      const interval = form.elements["interval_seconds"].value.trim();
      let trigger;
      if (cron && interval) throw showAndFail("give a cron expression or an interval, not both");
      if (cron) trigger = { cron_schedule: { cron } };
      else if (interval) trigger = { periodic_schedule: { interval_second: interval } };
      else throw showAndFail("give a cron expression or an interval in seconds");
      const body = {
        display_name: form.elements["display_name"].value,
        pipeline_version_reference: { pipeline_id: pipelineId, pipeline_version_id: versionId },
        experiment_id: form.elements["experiment_id"].value || undefined,
        trigger,
        max_concurrency: form.elements["max_concurrency"].value || "1",
        mode: form.elements["enabled"].checked ? "ENABLE" : "DISABLE",
        no_catchup: form.elements["no_catchup"].checked,
        runtime_config: { parameters: parameterValues(form) },
      };
      const recurring = await api("POST", API + "/recurringruns", body);
      window.location = "/recurring/" + encodeURIComponent(recurring.recurring_run_id);
    });
  };
})();
