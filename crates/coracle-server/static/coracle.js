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
