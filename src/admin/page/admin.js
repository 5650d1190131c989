// mailroot admin page. No framework, no build step.
//
// SECURITY: everything from the server (addresses, HELO names, error texts, config values)
// is put into the DOM as text only: el() below takes strings as text nodes, attributes
// are set with setAttribute. This file never assigns HTML markup from data.
"use strict";

const TOKEN_KEY = "mailroot.admin.token";
const STATS_EVERY_MS = 2000;
// The queue listing is a scan of the spool on the server: it is read again only when the
// counters say something moved (or after an action), and at least every QUEUE_EVERY_MS.
const QUEUE_EVERY_MS = 30000;
// Rows drawn at most (the rest is counted, not drawn).
const MAX_ROWS = 500;
const SITES_EVERY_MS = 5000;
const ARM_MS = 4000;

// ---------------------------------------------------------------- DOM helpers

/** Element with attributes and children; strings and numbers become text nodes. */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "onclick") e.addEventListener("click", v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
  return e;
}

function $(id) { return document.getElementById(id); }

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

function fmt(n) {
  return typeof n === "number" ? n.toLocaleString("en-US") : String(n);
}

function setStatus(text, kind) {
  const s = $("status");
  s.textContent = text;
  s.className = kind || "";
}

// ---------------------------------------------------------------- API

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function headers() {
  const t = token();
  return t ? { "Authorization": "Bearer " + t } : {};
}

async function getJson(path) {
  const r = await fetch(path, { headers: headers(), cache: "no-store" });
  if (!r.ok) {
    const err = new Error(path + ": HTTP " + r.status);
    err.status = r.status;
    throw err;
  }
  return r.json();
}

/** POST and report the result in the status bar; true when it worked. */
async function post(path, what) {
  if (!token()) {
    setStatus(what + ": enter the admin token first ([admin] token in the config)", "bad");
    $("token").focus();
    return false;
  }
  let r, body = {};
  try {
    r = await fetch(path, { method: "POST", headers: headers(), cache: "no-store" });
    const text = await r.text();
    try { body = JSON.parse(text); } catch (_) { body = { error: text.trim() }; }
  } catch (e) {
    setStatus(what + ": " + e.message, "bad");
    return false;
  }
  if (r.ok) {
    setStatus(what + ": " + (body.result || "done"), "ok");
    return true;
  }
  const why = r.status === 401 ? "refused (401): wrong or missing admin token" : (body.error || ("HTTP " + r.status));
  setStatus(what + ": " + why, "bad");
  return false;
}

// ---------------------------------------------------------------- counters

let lastStats = null;
let queueSig = "";

function counterMap(stats) {
  const m = new Map();
  for (const c of stats.counters || []) {
    const key = c.prom + (c.label ? "{" + c.label + "}" : "");
    m.set(key, c);
  }
  return m;
}

function val(m, prom) {
  const c = m.get(prom);
  return c ? Number(c.value) : 0;
}

function rate(m, prev, prom, secs) {
  if (!prev || secs <= 0) return "";
  const d = val(m, prom) - val(prev, prom);
  return (d / secs).toFixed(1) + "/s";
}

async function refreshStats() {
  let stats;
  try {
    stats = await getJson("/api/stats");
  } catch (e) {
    $("updated").textContent = e.status === 401 ? "token required to read counters" : "server unreachable";
    return;
  }
  const now = Date.now();
  const m = counterMap(stats);
  const prev = lastStats ? lastStats.map : null;
  const secs = lastStats ? (now - lastStats.at) / 1000 : 0;
  $("ctr-received").textContent = fmt(val(m, "mailroot_messages_received_total"));
  $("rate-received").textContent = rate(m, prev, "mailroot_messages_received_total", secs);
  $("ctr-delivered").textContent = fmt(val(m, "mailroot_messages_delivered_total"));
  $("rate-delivered").textContent = rate(m, prev, "mailroot_messages_delivered_total", secs);
  const local = val(m, "mailroot_queue_local_messages");
  const remote = val(m, "mailroot_queue_remote_messages");
  const retry = val(m, "mailroot_queue_retry_messages");
  $("ctr-queued").textContent = fmt(local + remote + retry);
  const parked = val(m, "mailroot_queue_parked_messages");
  $("sub-queued").textContent = "local " + local + " · remote " + remote + " · retry " + retry +
    " · parked " + parked;
  $("ctr-sessions").textContent = fmt(val(m, "mailroot_inbound_connections"));
  $("sub-sessions").textContent = fmt(val(m, "mailroot_inbound_connections_total")) + " total";
  $("ctr-outbound").textContent = fmt(val(m, "mailroot_outbound_connections"));
  $("sub-outbound").textContent = fmt(val(m, "mailroot_outbound_connections_total")) + " total";
  $("ctr-ndrs").textContent = fmt(val(m, "mailroot_ndrs_generated_total"));
  $("sub-ndrs").textContent = rate(m, prev, "mailroot_ndrs_generated_total", secs);

  const tbody = $("counter-table").tBodies[0];
  clear(tbody);
  for (const c of stats.counters || []) {
    const key = c.prom + (c.label ? "{" + c.label + "}" : "");
    let r = "";
    if (prev && secs > 0 && c.kind === "counter") {
      const p = prev.get(key);
      r = ((Number(c.value) - (p ? Number(p.value) : 0)) / secs).toFixed(1);
    }
    tbody.appendChild(el("tr", {}, el("td", {}, c.iis), el("td", { class: "num" }, fmt(Number(c.value))),
      el("td", { class: "num" }, r)));
  }
  lastStats = { map: m, at: now };
  // Anything that changes the queue moves one of these: read the queue again.
  const sig = ["mailroot_messages_received_total", "mailroot_messages_delivered_total",
    "mailroot_ndrs_generated_total", "mailroot_message_delivery_retries_total",
    "mailroot_queue_local_messages", "mailroot_queue_remote_messages",
    "mailroot_queue_retry_messages", "mailroot_pickup_messages_retrieved_total"]
    .map(p => val(m, p)).join(",");
  if (sig !== queueSig) {
    queueSig = sig;
    refreshQueue(false);
    // The runner counts before it writes the state file: look once more a moment later.
    setTimeout(() => refreshQueue(false), 1500);
  }
  $("updated").textContent = "updated " + new Date(now).toLocaleTimeString();
}

// ---------------------------------------------------------------- sites

let lastSitesText = "";

async function refreshSites() {
  const tbody = $("sites").tBodies[0];
  const note = $("sites-note");
  let sites;
  try {
    sites = await getJson("/api/sites");
  } catch (e) {
    clear(tbody);
    $("sites").hidden = true;
    note.hidden = false;
    note.textContent = e.status === 404
      ? "This server does not offer site control (/api/sites)."
      : "Sites unavailable: " + e.message;
    return;
  }
  note.hidden = true;
  $("sites").hidden = false;
  // Unchanged: keep the rows (and an armed Stop button) as they are.
  const text = JSON.stringify(sites);
  if (text === lastSitesText && tbody.rows.length) return;
  lastSitesText = text;
  clear(tbody);
  for (const s of sites) {
    // Pause/resume answers new connections 421; stop closes the listeners (a second
    // click confirms: idle sessions are told 421); start binds them again.
    const act = (verb) => async () => {
      if (await post("/api/sites/" + encodeURIComponent(s.name) + "/" + verb, verb + " site " + s.name)) {
        refreshSites();
      }
      refreshEvents();
    };
    const attrs = (verb) => ({ "data-site": s.name, "data-action": verb });
    const buttons = [];
    if (s.state === "stopped") {
      buttons.push(plainButton("Start", attrs("start"), act("start")));
    } else {
      const verb = s.state === "paused" ? "resume" : "pause";
      buttons.push(plainButton(verb === "resume" ? "Resume" : "Pause", attrs(verb), act(verb)));
      buttons.push(armedButton("Stop", "Stop: sure?", attrs("stop"), act("stop")));
    }
    tbody.appendChild(el("tr", { class: "site", "data-site": s.name },
      el("td", {}, s.name),
      el("td", {}, el("span", { class: "state " + s.state, "data-state": s.state }, s.state)),
      el("td", {}, (s.listen || []).join(", ")),
      el("td", { class: "actions" }, ...buttons)));
  }
}

// ---------------------------------------------------------------- queue

const expanded = new Set();
const details = new Map();
let lastQueueText = "";

function domainOf(address) {
  const at = address.lastIndexOf("@");
  return at < 0 ? "(no domain)" : address.slice(at + 1).toLowerCase();
}

function messageState(m, rcpts) {
  if (m.held) return "held";
  if (rcpts.some(r => r.status === "pending" && r.attempts > 0)) return "deferred";
  return m.state;
}

/** A button that needs a second click within ARM_MS (destructive actions). */
function armedButton(label, confirmLabel, attrs, action) {
  let armedUntil = 0;
  const b = el("button", Object.assign({ type: "button", class: "small danger" }, attrs), label);
  b.addEventListener("click", async (ev) => {
    ev.stopPropagation();
    if (Date.now() > armedUntil) {
      armedUntil = Date.now() + ARM_MS;
      b.textContent = confirmLabel;
      b.classList.add("armed");
      setTimeout(() => { if (Date.now() >= armedUntil) { b.textContent = label; b.classList.remove("armed"); } }, ARM_MS);
      return;
    }
    armedUntil = 0;
    b.disabled = true;
    await action();
    b.disabled = false;
  });
  return b;
}

function plainButton(label, attrs, action) {
  const b = el("button", Object.assign({ type: "button", class: "small" }, attrs), label);
  b.addEventListener("click", async (ev) => {
    ev.stopPropagation();
    b.disabled = true;
    await action();
    b.disabled = false;
  });
  return b;
}

async function queueAction(id, verb) {
  if (await post("/api/queue/" + encodeURIComponent(id) + "/" + verb, verb + " " + id)) {
    if (verb === "delete" || verb === "bounce") { expanded.delete(id); details.delete(id); }
    await refreshQueue(true);
  }
  refreshEvents();
}

function actionCell(m) {
  const id = m.id;
  const hold = m.held
    ? plainButton("Release", { "data-action": "release", "data-id": id }, () => queueAction(id, "release"))
    : plainButton("Hold", { "data-action": "hold", "data-id": id }, () => queueAction(id, "hold"));
  return el("td", { class: "actions" }, hold,
    armedButton("Bounce", "Send NDR?", { "data-action": "bounce", "data-id": id }, () => queueAction(id, "bounce")),
    armedButton("Delete", "Really delete?", { "data-action": "delete", "data-id": id }, () => queueAction(id, "delete")));
}

/** The envelope part of a detail (`GET /api/queue/{id}` is `queue show --json`: `site`,
 *  `client_addr`, `helo`, `dsn`, per-recipient `notify` lists). */
function envelopeOf(d) {
  const dsn = d.dsn || {};
  return {
    envid: dsn.envid, ret: dsn.ret || "", body: dsn.body, smtputf8: dsn.smtputf8,
    client_addr: d.client_addr, helo: d.helo, site: d.site,
    recipients: (d.recipients || []).map(r => ({
      address: r.address,
      notify: Array.isArray(r.notify) ? r.notify.join(",") : (r.notify || ""),
      orcpt: r.orcpt,
    })),
  };
}

function detailView(d) {
  const env = envelopeOf(d);
  const kv = (pairs) => el("dl", { class: "kv" }, pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const dsn = new Map((env.recipients || []).map(r => [r.address, r]));
  const rows = (d.recipients || []).map(r => {
    const p = dsn.get(r.address) || {};
    return el("tr", {},
      el("td", { class: "addr" }, r.address),
      el("td", {}, el("span", { class: "state " + r.status }, r.status)),
      el("td", { class: "num" }, r.attempts ? String(r.attempts) : ""),
      el("td", {}, r.next_retry || ""),
      el("td", { class: "error-text" }, r.last_error || ""),
      el("td", {}, p.notify || ""),
      el("td", { class: "addr" }, p.orcpt || ""));
  });
  return el("div", { class: "detail" },
    el("h4", {}, "Envelope"),
    kv([
      ["Queue ID", d.id],
      ["Sender", d.sender === "" ? "<> (null sender)" : d.sender],
      ["Arrived", d.arrival],
      ["Size", fmt(d.size) + " bytes"],
      ["Held", d.held ? "yes, since " + (d.held_since || "?") : "no"],
      ["Client", (env.client_addr || "") + " (HELO " + (env.helo || "") + ")"],
      ["Site", env.site || ""],
      ["BODY / SMTPUTF8", (env.body || "") + (env.smtputf8 ? " / yes" : " / no")],
      ["RET / ENVID", (env.ret || "-") + " / " + (env.envid || "-")],
    ]),
    el("h4", {}, "Recipients"),
    el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, ["Recipient", "Status", "Attempts", "Next attempt", "Last error", "NOTIFY", "ORCPT"]
        .map(h => el("th", {}, h)))),
      el("tbody", {}, rows)),
    Array.isArray(d.headers) && d.headers.length ? [
      el("h4", {}, "Header"),
      el("dl", { class: "kv small" }, d.headers.flatMap(h => [el("dt", {}, h.name), el("dd", {}, h.value)])),
    ] : null);
}

async function loadDetail(id) {
  try {
    details.set(id, await getJson("/api/queue/" + encodeURIComponent(id)));
  } catch (e) {
    details.set(id, { error: e.status === 404 ? "no longer queued" : e.message });
  }
  renderQueue(lastQueue);
}

let lastQueue = [];

function renderQueue(list) {
  const box = $("queue");
  clear(box);
  const held = list.filter(m => m.held).length;
  $("queue-count").textContent = String(list.length) + (held ? " \u00B7 " + held + " held" : "");
  $("queue-empty").hidden = list.length > 0;
  if (list.length > MAX_ROWS) {
    box.appendChild(el("p", { class: "muted" }, "Showing the oldest " + MAX_ROWS + " of " +
      list.length + " messages (mailroot queue list shows them all)."));
    list = list.slice(0, MAX_ROWS);
  }
  // Group by destination domain of the pending recipients (a message may be in several).
  const groups = new Map();
  for (const m of list) {
    const pending = m.recipients.filter(r => r.status === "pending");
    const byDomain = new Map();
    for (const r of (pending.length ? pending : m.recipients)) {
      const d = domainOf(r.address);
      if (!byDomain.has(d)) byDomain.set(d, []);
      byDomain.get(d).push(r);
    }
    for (const [d, rcpts] of byDomain) {
      if (!groups.has(d)) groups.set(d, []);
      groups.get(d).push({ m, rcpts });
    }
  }
  const domains = [...groups.keys()].sort();
  for (const d of domains) {
    const entries = groups.get(d);
    const tbody = el("tbody");
    for (const { m, rcpts } of entries) {
      const open = expanded.has(m.id);
      const st = messageState(m, rcpts);
      const attempts = Math.max(0, ...rcpts.map(r => r.attempts || 0));
      const lastErr = (rcpts.find(r => r.last_error) || {}).last_error || "";
      const row = el("tr", { class: "msg" + (open ? " open" : ""), "data-id": m.id, "data-domain": d, title: "Click for details" },
        el("td", { class: "toggle" }, open ? "\u25BE" : "\u25B8"),
        el("td", { class: "id" }, m.id),
        el("td", {}, m.arrival.replace("T", " ").replace(/\.\d+Z$/, "Z")),
        el("td", { class: "addr sender" }, m.sender === "" ? "<>" : m.sender),
        el("td", { class: "addr rcpts" }, rcpts.map(r => r.address).join(", ")),
        el("td", {}, el("span", { class: "state " + st, "data-state": st }, st)),
        el("td", { class: "num" }, attempts ? String(attempts) : ""),
        el("td", { class: "error-text small" }, lastErr),
        actionCell(m));
      row.addEventListener("click", () => {
        if (expanded.has(m.id)) { expanded.delete(m.id); renderQueue(lastQueue); return; }
        expanded.add(m.id);
        renderQueue(lastQueue);
        loadDetail(m.id);
      });
      tbody.appendChild(row);
      if (open) {
        const det = details.get(m.id);
        const content = !det ? el("span", { class: "muted" }, "loading\u2026")
          : det.error ? el("span", { class: "error-text" }, det.error) : detailView(det);
        tbody.appendChild(el("tr", { class: "detail", "data-id": m.id }, el("td", { colspan: 9 }, content)));
      }
    }
    const table = el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, ["", "Queue ID", "Arrived (UTC)", "Sender", "Recipients", "State", "Tries", "Last error", "Actions"]
        .map(h => el("th", {}, h)))),
      tbody);
    box.appendChild(el("div", { class: "domain", "data-domain": d },
      el("h3", {}, d, " ", el("span", { class: "count" }, "(" + entries.length + (entries.length === 1 ? " message)" : " messages)"))),
      table));
  }
}

async function refreshQueue(force) {
  let list;
  try {
    list = await getJson("/api/queue");
  } catch (e) {
    return;
  }
  const text = JSON.stringify(list);
  if (!force && text === lastQueueText) return;
  lastQueueText = text;
  lastQueue = list;
  const ids = new Set(list.map(m => m.id));
  for (const id of [...expanded]) if (!ids.has(id)) { expanded.delete(id); details.delete(id); }
  renderQueue(list);
  for (const id of expanded) loadDetail(id);
}

// ---------------------------------------------------------------- event log

const EVENTS_SHOWN = 25;
let lastEventsText = "";

async function refreshEvents() {
  const note = $("events-note");
  let events;
  try {
    events = await getJson("/api/events?limit=" + EVENTS_SHOWN);
  } catch (e) {
    $("events").hidden = true;
    note.hidden = false;
    note.textContent = e.status === 404 ? "This server has no event log (/api/events)." : "Events unavailable: " + e.message;
    return;
  }
  $("events").hidden = false;
  note.hidden = true;
  const text = JSON.stringify(events);
  if (text === lastEventsText) return;
  lastEventsText = text;
  const tbody = $("events").tBodies[0];
  clear(tbody);
  for (const ev of events.slice().reverse()) {
    const details = Object.entries(ev)
      .filter(([k]) => k !== "ts" && k !== "event" && k !== "by")
      .map(([k, v]) => k + "=" + (typeof v === "string" ? v : JSON.stringify(v)))
      .join("  ");
    tbody.appendChild(el("tr", { class: "event", "data-event": String(ev.event || "") },
      el("td", { class: "small" }, String(ev.ts || "").replace("T", " ").replace("Z", "")),
      el("td", {}, String(ev.event || "")),
      el("td", {}, String(ev.by || "")),
      el("td", { class: "small addr" }, details)));
  }
}

// ---------------------------------------------------------------- configuration

function configValue(v) {
  if (Array.isArray(v)) {
    if (v.some(x => x && typeof x === "object")) return JSON.stringify(v);
    return "[" + v.map(x => JSON.stringify(x)).join(", ") + "]";
  }
  if (v && typeof v === "object") return JSON.stringify(v);
  return typeof v === "string" ? v : JSON.stringify(v);
}

function configSection(title, table) {
  const pairs = [];
  for (const [k, v] of Object.entries(table)) {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      for (const [k2, v2] of Object.entries(v)) pairs.push([k + "." + k2, v2]);
    } else {
      pairs.push([k, v]);
    }
  }
  if (!pairs.length) {
    return el("div", { class: "cfg", "data-section": title }, el("h3", {}, title),
      el("dl", { class: "kv" }, el("dt", {}, "(empty)"), el("dd", {}, "")));
  }
  return el("div", { class: "cfg", "data-section": title },
    el("h3", {}, title),
    el("dl", { class: "kv" }, pairs.flatMap(([k, v]) => {
      const text = configValue(v);
      return [el("dt", {}, k), el("dd", { class: text === "********" ? "masked" : "" }, text)];
    })));
}

async function refreshConfig() {
  let cfg;
  try {
    cfg = await getJson("/api/config");
  } catch (e) {
    return;
  }
  const box = $("config");
  clear(box);
  const top = {};
  const sections = [];
  for (const [k, v] of Object.entries(cfg)) {
    if (Array.isArray(v) && v.length && v.every(x => x && typeof x === "object")) {
      v.forEach((t, i) => sections.push(["[[" + k + "]] " + (t.name !== undefined ? t.name : i), t]));
    } else if (v && typeof v === "object" && !Array.isArray(v)) {
      sections.push(["[" + k + "]", v]);
    } else {
      top[k] = v;
    }
  }
  box.appendChild(configSection("general", top));
  for (const [title, t] of sections) box.appendChild(configSection(title, t));
}

// ---------------------------------------------------------------- start

function showTokenState() {
  $("token-state").textContent = token() ? "token set for this tab" : "no token: read-only";
}

function start() {
  $("token").value = token();
  showTokenState();
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token").value.trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
    showTokenState();
    refreshAll();
  });
  $("flush").addEventListener("click", async () => {
    if (await post("/api/flush", "flush")) refreshQueue(true);
  });
  $("refresh").addEventListener("click", () => refreshAll());
  refreshAll();
  setInterval(refreshStats, STATS_EVERY_MS);
  setInterval(() => refreshQueue(false), QUEUE_EVERY_MS);
  setInterval(refreshSites, SITES_EVERY_MS);
  setInterval(refreshEvents, SITES_EVERY_MS);
}

function refreshAll() {
  refreshStats();
  refreshSites();
  refreshQueue(true);
  refreshEvents();
  refreshConfig();
}

document.addEventListener("DOMContentLoaded", start);
