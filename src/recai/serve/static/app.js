// recai page: chat with streamed replies, item cards, like/dislike, and the "how I got this" trace.
// Model text is untrusted: everything is inserted with textContent / createElement, never innerHTML.
"use strict";

const state = {
  sessionId: sessionStorage.getItem("recai.session") || null,
  user: sessionStorage.getItem("recai.user") || "",
  token: sessionStorage.getItem("recai.token") || "",
  liked: new Set(),
  disliked: new Set(),
  busy: false,
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `the server answered ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
  }
}

function headers(extra = {}) {
  const out = { "Content-Type": "application/json", ...extra };
  if (state.token) out.Authorization = `Bearer ${state.token}`;
  return out;
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: headers(),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function setStatus(text) {
  $("status").textContent = text;
}

// ------------------------------------------------------------------ sessions
async function ensureSession() {
  if (state.sessionId) return state.sessionId;
  const created = await api("POST", "/sessions", state.user ? { user: state.user } : {});
  adoptSession(created);
  return state.sessionId;
}

function adoptSession(view) {
  state.sessionId = view.session_id;
  sessionStorage.setItem("recai.session", view.session_id);
  state.liked = new Set(view.profile.liked.map(String));
  state.disliked = new Set(view.profile.disliked.map(String));
}

function clearLog() {
  const log = $("log");
  for (const node of [...log.children]) {
    if (!node.classList.contains("intro")) node.remove();
  }
}

async function resetConversation() {
  if (state.busy) return;
  try {
    if (state.sessionId) {
      adoptSession(await api("POST", `/sessions/${encodeURIComponent(state.sessionId)}/reset`));
    }
  } catch (error) {
    if (error.code !== "session_not_found") return showError(error);
    state.sessionId = null;
  }
  clearLog();
  setStatus("Started over.");
  $("message").focus();
}

// ---------------------------------------------------------------------- chat
function addMessage(role) {
  const item = el("li", `message ${role}`);
  item.append(el("p", "who", role === "user" ? "You" : "recai"));
  $("log").append(item);
  return item;
}

function showError(error) {
  const item = addMessage("assistant");
  item.classList.add("error");
  item.append(el("p", null, `Sorry: ${error.message}`));
  setStatus(`Error: ${error.message}`);
  if (error.status === 401) {
    $("settings").open = true;
    $("token").focus();
  }
}

// Titles come back in **bold**; show them bold without interpreting any markup.
function renderReply(paragraph, text) {
  paragraph.replaceChildren();
  text.split("**").forEach((part, index) => {
    if (!part) return;
    paragraph.append(index % 2 === 1 ? el("strong", null, part) : document.createTextNode(part));
  });
}

function parseEvent(raw) {
  let name = "message";
  const data = [];
  for (const line of raw.split("\n")) {
    if (line.startsWith(":")) continue;
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (!data.length) return null;
  return { name, data: JSON.parse(data.join("\n")) };
}

async function send(text) {
  state.busy = true;
  $("send").disabled = true;
  const mine = addMessage("user");
  mine.append(el("p", null, text));
  mine.scrollIntoView({ block: "start", behavior: "smooth" });
  const answer = addMessage("assistant");
  const reply = el("p", "reply");
  reply.setAttribute("aria-busy", "true");
  answer.append(reply);
  setStatus("Thinking…");
  let replyText = "";
  try {
    await ensureSession();
    let response = await streamTurn(text);
    if (response.status === 404) {
      state.sessionId = null; // the server restarted or the session expired: start a new one
      await ensureSession();
      response = await streamTurn(text);
    }
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = parseEvent(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (!event) continue;
        if (event.name === "delta") {
          replyText += event.data.text;
          renderReply(reply, replyText);
        } else if (event.name === "items") {
          renderCards(answer, event.data.items);
        } else if (event.name === "trace") {
          renderTrace(answer, event.data);
        } else if (event.name === "done") {
          replyText = event.data.reply;
          renderReply(reply, replyText);
        } else if (event.name === "error") {
          throw new ApiError(500, event.data);
        }
      }
    }
    const count = answer.querySelectorAll(".card").length;
    setStatus(count ? `Reply complete, with ${count} recommendation${count === 1 ? "" : "s"}.` : "Reply complete.");
  } catch (error) {
    answer.remove();
    showError(error);
  } finally {
    reply.setAttribute("aria-busy", "false");
    state.busy = false;
    $("send").disabled = false;
  }
}

function streamTurn(text) {
  return fetch("/chat", {
    method: "POST",
    headers: headers({ Accept: "text/event-stream" }),
    body: JSON.stringify({ session_id: state.sessionId, message: text, stream: true }),
  });
}

// --------------------------------------------------------------------- cards
function renderCards(answer, items) {
  if (!items.length) return;
  const list = el("ul", "cards");
  list.setAttribute("aria-label", "Recommended items");
  const template = $("card-template");
  for (const item of items) {
    const node = template.content.firstElementChild.cloneNode(true);
    const titleId = `item-${item.id}-${Math.random().toString(36).slice(2, 8)}`;
    const title = node.querySelector(".card-title");
    title.textContent = item.title;
    title.id = titleId;
    node.querySelector("article").setAttribute("aria-labelledby", titleId);
    node.querySelector(".card-meta").textContent = [item.year, item.tags.join(", ")].filter(Boolean).join(" · ");
    node.querySelector(".card-summary").textContent = item.summary;
    const facts = node.querySelector(".card-facts");
    for (const fact of item.facts) {
      facts.append(el("dt", null, fact.label), el("dd", null, fact.value));
    }
    const like = node.querySelector(".like");
    const dislike = node.querySelector(".dislike");
    like.setAttribute("aria-label", `Like ${item.display_title}`);
    dislike.setAttribute("aria-label", `Dislike ${item.display_title}`);
    like.dataset.item = dislike.dataset.item = String(item.id);
    like.addEventListener("click", () => rate(item, "liked"));
    dislike.addEventListener("click", () => rate(item, "disliked"));
    list.append(node);
  }
  answer.append(list);
  syncButtons();
}

function syncButtons() {
  for (const button of document.querySelectorAll(".card-actions button")) {
    const set = button.classList.contains("like") ? state.liked : state.disliked;
    button.setAttribute("aria-pressed", String(set.has(button.dataset.item)));
  }
}

async function rate(item, value) {
  const key = String(item.id);
  const already = (value === "liked" ? state.liked : state.disliked).has(key);
  try {
    await ensureSession();
    const profile = await api("POST", `/sessions/${encodeURIComponent(state.sessionId)}/feedback`, {
      item_id: item.id,
      value: already ? "none" : value,
    });
    state.liked = new Set(profile.liked.map(String));
    state.disliked = new Set(profile.disliked.map(String));
    syncButtons();
    const verb = already ? "Cleared your rating of" : value === "liked" ? "You liked" : "You disliked";
    setStatus(`${verb} ${item.display_title}.`);
  } catch (error) {
    showError(error);
  }
}

// --------------------------------------------------------------------- trace
function renderTrace(answer, trace) {
  const details = el("details", "trace");
  details.append(el("summary", null, "How I got this"));
  const plans = trace.plans || [];
  plans.forEach((plan, index) => {
    const label = plans.length > 1 ? (index === 0 ? "First plan" : "Plan after replanning") : "Plan";
    const heading = el("p", null, `${label}: intent `);
    heading.append(el("code", null, plan.intent));
    details.append(heading);
    if (plan.steps && plan.steps.length) {
      const list = el("ol");
      for (const step of plan.steps) {
        const item = el("li");
        item.append(el("code", null, `${step.tool}(${JSON.stringify(step.args)})`));
        list.append(item);
      }
      details.append(list);
    }
  });
  const steps = trace.steps || [];
  if (steps.length) {
    details.append(el("p", null, "Tool steps, as run:"));
    const list = el("ol");
    for (const step of steps) {
      const item = el("li");
      item.append(el("code", null, String(step.tool)));
      const size = step.error ? "" : ` ${step.input_size} → ${step.output_size} candidates,`;
      item.append(document.createTextNode(`${size} ${Math.round(1000 * (step.latency_s || 0))} ms`));
      if (step.error) item.append(el("span", "step-error", ` failed: ${step.error}`));
      list.append(item);
    }
    details.append(list);
  }
  const llm = Object.entries(trace.llm || {})
    .map(([name, v]) => `${name}: ${v.prompt_tokens}+${v.completion_tokens} tokens, ${Number(v.latency_s).toFixed(2)} s`)
    .join("; ");
  const summary = `${trace.llm_calls || 0} LLM call(s)${llm ? ` (${llm})` : ""}, ${trace.replans || 0} replan(s), ` +
    `${Number(trace.latency_s || 0).toFixed(2)} s in all.`;
  details.append(el("p", "muted", summary));
  const removed = (trace.grounding && trace.grounding.removed) || [];
  if (removed.length) {
    details.append(el("p", "muted", `Held back (named items the tools did not return): ${removed.join(" | ")}`));
  }
  answer.append(details);
}

// A reload keeps the conversation: show its earlier turns (text only) and the profile.
async function restore() {
  if (!state.sessionId) return;
  try {
    const view = await api("GET", `/sessions/${encodeURIComponent(state.sessionId)}`);
    adoptSession(view);
    for (const turn of view.turns) {
      addMessage("user").append(el("p", null, turn.user));
      const answer = addMessage("assistant");
      const reply = el("p", "reply");
      renderReply(reply, turn.reply);
      answer.append(reply);
    }
  } catch (error) {
    state.sessionId = null;
    sessionStorage.removeItem("recai.session");
  }
}

// ---------------------------------------------------------------------- init
async function init() {
  $("user").value = state.user;
  $("token").value = state.token;
  try {
    const health = await api("GET", "/health");
    $("dataset").textContent = `on ${health.dataset} (${health.items} items)`;
    $("message").maxLength = health.max_message_chars;
    if (health.auth && !state.token) {
      $("settings").open = true;
      setStatus("This server needs an access token: enter it under Settings.");
    }
    await restore();
  } catch (error) {
    setStatus(`The server is not answering: ${error.message}`);
  }
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("message");
    const text = input.value.trim();
    if (!text || state.busy) return;
    input.value = "";
    send(text).then(() => input.focus());
  });
  $("reset").addEventListener("click", resetConversation);
  $("settings-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.user = $("user").value.trim();
    state.token = $("token").value.trim();
    sessionStorage.setItem("recai.user", state.user);
    sessionStorage.setItem("recai.token", state.token);
    state.sessionId = null;
    sessionStorage.removeItem("recai.session");
    clearLog();
    $("settings").open = false;
    setStatus(state.user ? `New conversation as ${state.user}.` : "New conversation.");
    $("message").focus();
  });
}

document.addEventListener("DOMContentLoaded", init);
