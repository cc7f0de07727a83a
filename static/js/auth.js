// `/` (login form or the user's workspaces) and `/register/`.

import { api, el, errorText, wireLogout } from "./util.js";

// Only a path on this site: `?next=//evil.example` or `javascript:` go home.
function nextUrl() {
  const next = new URLSearchParams(window.location.search).get("next") || "/";
  return /^\/(?!\/)/.test(next) && !next.includes("\\") ? next : "/";
}

function showErrors(form, body, fallback) {
  for (const node of form.querySelectorAll("[data-error-for]")) node.textContent = "";
  const errors = (body && body.errors) || {};
  let shown = false;
  for (const [field, messages] of Object.entries(errors)) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    if (slot) {
      slot.textContent = [].concat(messages).join(" ");
      shown = true;
    }
  }
  const general = errors.non_field_errors ? [].concat(errors.non_field_errors).join(" ") : shown ? "" : errorText(body) || fallback;
  form.querySelector("[data-form-error]").textContent = general;
}

function wireForm(form, submit) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    form.querySelector("[data-form-error]").textContent = "";
    try {
      await submit(new FormData(form));
    } catch (error) {
      showErrors(form, error.body, error.message || gettext("Something went wrong; try again."));
    } finally {
      button.disabled = false;
    }
  });
}

const loginForm = document.getElementById("login-form");
if (loginForm) {
  wireForm(loginForm, async (data) => {
    await api.post("/api/auth/login/", { username: data.get("username").trim(), password: data.get("password") });
    window.location.assign(nextUrl());
  });
}

const registerForm = document.getElementById("register-form");
if (registerForm) {
  wireForm(registerForm, async (data) => {
    const body = { username: data.get("username").trim(), password: data.get("password") };
    const displayName = data.get("displayName").trim();
    if (displayName) body.displayName = displayName;
    await api.post("/api/auth/register/", body);
    window.location.assign("/");
  });
}

const workspaceList = document.getElementById("workspace-list");
if (workspaceList) {
  wireLogout();
  const roles = { admin: gettext("Admin"), teacher: gettext("Teacher"), student: gettext("Student") };
  const render = (workspaces) => {
    workspaceList.replaceChildren(
      ...workspaces.map((w) =>
        el(
          "li",
          {},
          el("a", { class: "card", href: `/workspaces/${w.id}/` }, el("span", { class: "card-title", text: w.name }), el("span", { class: "role", text: roles[w.role] || w.role })),
        ),
      ),
    );
    workspaceList.setAttribute("aria-busy", "false");
    document.getElementById("workspace-empty").hidden = workspaces.length > 0;
  };
  const load = async () => render(await api.get("/api/workspaces/"));
  load().catch((error) => {
    workspaceList.replaceChildren(el("li", { class: "form-error", text: error.message }));
  });
  const createForm = document.getElementById("workspace-create");
  wireForm(createForm, async (data) => {
    const created = await api.post("/api/workspaces/", { name: data.get("name").trim() });
    window.location.assign(`/workspaces/${created.id}/`);
  });
} else {
  wireLogout();
}
