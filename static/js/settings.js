// The workspace settings page, /workspaces/{id}/settings/ (admins and
// teachers; chatsite/pages.py answers students with a short 403 page):
// "Members" (admins change roles and remove people), "Invites" (create,
// copy the join link, revoke), and, through settings-moderation.js,
// "Reports" and the admins' "Moderation log". Everything goes through the
// HTTP API of PROTOCOL.md part 2, which checks every permission again; user
// text only ever reaches the page through textContent (util.js, el()).

import { Reports, AuditLog } from "./settings-moderation.js";
import { api, el, errorText, formatDateTime, readJsonScript, wireLogout } from "./util.js";

const page = readJsonScript("page-data");
const me = page.me;
const workspaceId = page.workspaceId;
const isAdmin = page.role === "admin";
const base = `/api/workspaces/${workspaceId}`;
const $ = (id) => document.getElementById(id);
const ROLES = { admin: gettext("Admin"), teacher: gettext("Teacher"), student: gettext("Student") };
// Keys that step a closed <select> to another option (and fire "change" at
// once in Chromium): a role is then only applied on Enter or "Save".
const STEP_KEYS = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End", "PageUp", "PageDown"]);

const members = new Map(); // userId -> {user, role}
const names = new Map(); // userId -> name, kept after a removal (the log names them)

function nameOf(userId) {
  return names.get(userId) || null;
}

function status(text) {
  $("settings-status").textContent = text;
}

function showError(id, error) {
  $(id).textContent = error ? errorText(error.body) || error.message || gettext("Something went wrong.") : "";
}

function focusHeading(id) {
  const heading = $(id);
  heading.tabIndex = -1;
  heading.focus();
}

// The page's <dialog>: resolves true when the danger button was pressed;
// Cancel (focused first) and Escape resolve false and give focus back.
function confirmAction({ title, text, action }) {
  const dialog = $("settings-confirm");
  $("settings-confirm-title").textContent = title;
  $("settings-confirm-text").textContent = text;
  dialog.querySelector("[data-confirm]").textContent = action;
  const opener = document.activeElement;
  dialog.returnValue = "";
  dialog.showModal();
  dialog.querySelector('button[value="cancel"]').focus();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        const confirmed = dialog.returnValue === "confirm";
        if (!confirmed && opener && opener.isConnected) opener.focus();
        resolve(confirmed);
      },
      { once: true },
    );
  });
}

// --- members -------------------------------------------------------------------

function memberRow(member) {
  const { user } = member;
  const name = user.displayName || user.username;
  const who = el("span", { class: "settings-name" }, el("strong", { text: name }), " ", el("span", { class: "muted small", text: `@${user.username}` }));
  if (!isAdmin || user.id === me.id) {
    const role = el("span", { class: "role", text: ROLES[member.role] || member.role });
    const you = user.id === me.id ? el("span", { class: "muted small", text: gettext("(you)") }) : null;
    return el("li", { class: "settings-row" }, who, el("span", { class: "settings-controls" }, role, you));
  }
  const selectId = `role-${user.id}`;
  const select = el("select", { id: selectId }, ...Object.entries(ROLES).map(([value, label]) => el("option", { value, selected: value === member.role, text: label })));
  const save = el("button", { type: "button", class: "button-small", hidden: true }, gettext("Save"), el("span", { class: "visually-hidden", text: ` ${interpolate(gettext("role of %(name)s"), { name }, true)}` }));
  const remove = el("button", { type: "button", class: "button-small button-danger-quiet" }, gettext("Remove"), el("span", { class: "visually-hidden", text: ` ${name}` }));
  let stepping = false;
  const apply = () => changeRole(member, select, save);
  select.addEventListener("keydown", (event) => {
    if (STEP_KEYS.has(event.key) || event.key.length === 1) {
      stepping = true;
      setTimeout(() => {
        stepping = false;
      }, 0);
    } else if (event.key === "Enter" && !save.hidden) {
      event.preventDefault();
      apply();
    }
  });
  select.addEventListener("change", () => {
    if (select.value === member.role) save.hidden = true;
    else if (stepping) save.hidden = false; // chosen with arrow keys: wait for Enter or Save
    else apply();
  });
  save.addEventListener("click", apply);
  remove.addEventListener("click", () => removeMember(member, remove));
  const controls = el("span", { class: "settings-controls" }, el("label", { for: selectId, class: "visually-hidden", text: interpolate(gettext("Role of %(name)s"), { name }, true) }), select, save, remove);
  return el("li", { class: "settings-row", dataset: { userId: String(user.id) } }, who, controls);
}

async function changeRole(member, select, save) {
  const name = member.user.displayName || member.user.username;
  const role = select.value;
  if (role === member.role) return;
  showError("members-error", null);
  select.disabled = true;
  try {
    const updated = await api.patch(`${base}/members/${member.user.id}/`, { role });
    member.role = updated && updated.role ? updated.role : role;
    status(interpolate(gettext("%(name)s is now %(role)s."), { name, role: ROLES[member.role].toLowerCase() }, true));
    audit?.load();
  } catch (error) {
    showError("members-error", error);
  } finally {
    select.value = member.role;
    save.hidden = true;
    select.disabled = false;
    select.focus();
  }
}

async function removeMember(member, button) {
  const name = member.user.displayName || member.user.username;
  const ok = await confirmAction({ title: interpolate(gettext("Remove %(name)s?"), { name }, true), text: interpolate(gettext("%(name)s leaves this workspace and loses access to all of its channels at once."), { name }, true), action: gettext("Remove") });
  if (!ok) return;
  showError("members-error", null);
  button.disabled = true;
  try {
    await api.delete(`${base}/members/${member.user.id}/`);
  } catch (error) {
    showError("members-error", error);
    button.disabled = false;
    button.focus();
    return;
  }
  members.delete(member.user.id);
  renderMembers();
  status(interpolate(gettext("%(name)s was removed from the workspace."), { name }, true));
  focusHeading("members-title");
  audit?.load();
}

function renderMembers() {
  const sorted = [...members.values()].sort((a, b) => (a.user.displayName || a.user.username).localeCompare(b.user.displayName || b.user.username));
  $("settings-members").replaceChildren(...sorted.map(memberRow));
}

async function loadMembers() {
  try {
    const workspace = await api.get(`${base}/`);
    members.clear();
    for (const member of workspace.members) {
      members.set(member.user.id, member);
      names.set(member.user.id, member.user.displayName || member.user.username);
    }
    renderMembers();
  } catch (error) {
    $("settings-members").replaceChildren();
    showError("members-error", error);
  }
}

// --- invites -------------------------------------------------------------------

function joinLink(code) {
  return `${window.location.origin}/invite/${encodeURIComponent(code)}/`;
}

function inviteRow(invite) {
  const descId = `invite-${invite.code}`;
  const expires = new Date(invite.expiresAt);
  const until = Number.isNaN(expires.getTime()) ? "" : ` · ${interpolate(gettext("expires %(when)s"), { when: formatDateTime(invite.expiresAt) }, true)}`;
  const description = el(
    "p",
    { id: descId, class: "settings-name" },
    el("strong", { text: interpolate(gettext("%(role)s invite"), { role: ROLES[invite.role] || invite.role }, true) }),
    " ",
    el("span", { class: "muted small", text: `${interpolate(ngettext("%(uses)s of %(max)s use", "%(uses)s of %(max)s uses", invite.maxUses), { uses: invite.uses, max: invite.maxUses }, true)}${until}` }),
  );
  const link = el("input", { type: "text", readonly: true, class: "invite-link", value: joinLink(invite.code), "aria-label": gettext("Join link"), "aria-describedby": descId });
  const copy = el("button", { type: "button", class: "button-small", "aria-describedby": descId, text: gettext("Copy link") });
  const revoke = el("button", { type: "button", class: "button-small button-danger-quiet", "aria-describedby": descId, text: gettext("Revoke") });
  copy.addEventListener("click", () => copyLink(link));
  revoke.addEventListener("click", () => revokeInvite(invite, revoke));
  link.addEventListener("focus", () => link.select());
  return el("li", { class: "settings-row invite", dataset: { code: invite.code } }, description, el("span", { class: "settings-controls" }, link, copy, revoke));
}

// The clipboard API where the browser allows it; otherwise the link is
// selected in its box for Ctrl+C.
async function copyLink(input) {
  try {
    if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
    await navigator.clipboard.writeText(input.value);
    status(gettext("Link copied. Share it with the people who should join."));
  } catch {
    input.focus();
    input.select();
    let copied = false;
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
    status(copied ? gettext("Link copied.") : gettext("The link is selected: press Ctrl+C (⌘C on a Mac) to copy it."));
  }
}

async function revokeInvite(invite, button) {
  const ok = await confirmAction({ title: gettext("Revoke this invite?"), text: gettext("Its link stops working at once. People who already joined stay."), action: gettext("Revoke") });
  if (!ok) return;
  showError("invites-error", null);
  button.disabled = true;
  try {
    await api.delete(`${base}/invites/${encodeURIComponent(invite.code)}/`);
  } catch (error) {
    showError("invites-error", error);
    button.disabled = false;
    return;
  }
  button.closest("li").remove();
  if (!$("settings-invites").children.length) renderInvites([]);
  status(gettext("The invite was revoked."));
  focusHeading("invites-title");
}

function renderInvites(invites) {
  const list = $("settings-invites");
  if (!invites.length) list.replaceChildren(el("li", { class: "muted empty", text: gettext("No usable invites.") }));
  else list.replaceChildren(...invites.map(inviteRow));
}

async function loadInvites() {
  try {
    renderInvites(await api.get(`${base}/invites/`));
  } catch (error) {
    $("settings-invites").replaceChildren();
    showError("invites-error", error);
  }
}

function wireInviteForm() {
  const form = $("invite-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("invites-error", null);
    const button = form.querySelector('button[type="submit"]');
    const body = { role: $("invite-role").value, maxUses: Number($("invite-uses").value), expiresInHours: Number($("invite-hours").value) };
    button.disabled = true;
    try {
      const invite = await api.post(`${base}/invites/`, body);
      const list = $("settings-invites");
      list.querySelector("li.empty")?.remove();
      const row = inviteRow(invite);
      list.prepend(row);
      status(interpolate(gettext("A %(role)s invite was created. Copy its link and share it."), { role: ROLES[invite.role].toLowerCase() }, true));
      row.querySelector("input").focus();
    } catch (error) {
      showError("invites-error", error);
    } finally {
      button.disabled = false;
    }
  });
}

// --- start ---------------------------------------------------------------------

const context = { base, nameOf, roleOf: (userId) => members.get(userId)?.role || null, status, showError, confirmAction, focusHeading };
let audit = null;
const reports = new Reports({ ...context, onResolved: () => audit?.load() });
if (isAdmin) audit = new AuditLog(context);

async function start() {
  wireLogout();
  wireInviteForm();
  await loadMembers(); // the names the other sections show
  await Promise.all([loadInvites(), reports.load(), audit?.load()]);
}

start().catch((error) => status(error.message || gettext("Could not load the settings.")));
