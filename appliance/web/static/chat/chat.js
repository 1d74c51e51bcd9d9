// The visitor chat page (/chat, and inside the widget iframe with ?embed=1). It wires the
// session (protocol), the log (rendering), the composer and the status panels together.
// The only things that cross to a host page are the postMessage events appliance:close and
// appliance:unread.

import { AttachmentImages, uploadImage } from "./attachments.js";
import { Composer } from "./composer.js";
import { applyStrings, pickLanguage, translator } from "./i18n.js";
import { MessageLog } from "./log.js";
import { OfflinePanel, RatingPanel, statusLine } from "./panels.js";
import { VisitorSession } from "./session.js";

const query = new URLSearchParams(location.search);
const language = pickLanguage();
const t = translator(language);
const embedded = query.get("embed") === "1";
const page = query.get("page") || document.referrer || "";
const $ = (selector) => document.querySelector(selector);

/** Dark text on a light accent, white on a dark one (hex colours only; others keep white). */
// Limits the visitor runs into are said in their language; other problems in the server's words.
const PROBLEMS = { 429: "tooFast", 413: "tooLarge", 415: "notImage" };

function problemText(status, message) {
  if (PROBLEMS[status]) return t(PROBLEMS[status]);
  return message || t("errorGeneric");
}

function inkFor(color) {
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(color.trim());
  if (!hex) return "#fff";
  const digits = hex[1].length === 3 ? [...hex[1]].map((d) => d + d).join("") : hex[1];
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(digits.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 ? "#111827" : "#fff";
}

/** The look an admin chose on the Settings page ({} when it cannot be read: the built-in look). */
async function storedLook() {
  try {
    const response = await fetch("/api/v1/widget/settings", { signal: AbortSignal.timeout(3000) });
    return response.ok ? await response.json() : {};
  } catch {
    return {};
  }
}

// What the embed (or a link) says in the query wins over the Settings page, which wins over the
// built-in title, welcome line and accent.
function setUpPage(look) {
  document.documentElement.lang = language === "zh" ? "zh-CN" : "en";
  document.body.classList.toggle("embedded", embedded);
  applyStrings(document, t);
  const title = (query.get("title") || "").trim() || look.title || t("title");
  $("#chat-title").textContent = title;
  document.title = embedded ? title : `${title} · ${t("pageTitle")}`;
  const greeting = (language === "zh" ? look.greeting_zh : look.greeting_en) || "";
  if (greeting) $("#empty").textContent = greeting;
  const color = (query.get("color") || "").trim() || look.color || "";
  if (color && CSS.supports("color", color)) {
    document.documentElement.style.setProperty("--accent", color);
    const ink = inkFor(color);
    document.documentElement.style.setProperty("--accent-ink", ink);
    if (ink !== "#fff") {
      const darker = `color-mix(in srgb, ${color} 40%, #000)`;
      document.documentElement.style.setProperty("--accent-text", CSS.supports("color", darker) ? darker : "#1b2330");
    }
  }
}

/** The host page's origin (from the page parameter the widget sets), for postMessage. */
function hostOrigin() {
  try {
    return new URL(page).origin;
  } catch {
    return "*";
  }
}

function tellHost(message) {
  if (!embedded || window.parent === window) return;
  const origin = hostOrigin();
  window.parent.postMessage(message, origin === "null" ? "*" : origin);
}

setUpPage(await storedLook());

const state = { status: null, unread: 0, agentTypingTimer: 0 };
const logRoot = $("#log");
const emptyNote = $("#empty");
const banner = $("#banner");
const typingLine = $("#typing");
const connLine = $("#conn");
const restart = $("#restart");

let session;
const composer = new Composer($("#composer"), {
  t,
  onSubmit: (draft) => sendOwn(draft),
  onTyping: (on) => session.typing(on),
  onHandoff: () => session.handoff(),
});
const images = new AttachmentImages(() => session.token);
const scroller = $(".chat__body");
const log = new MessageLog(logRoot, { t, images, scroller, onChange: () => refreshEmpty() });

function refreshEmpty() {
  const empty = log.isEmpty;
  emptyNote.hidden = !empty;
  composer.showPrechat(empty && !session?.conversationId);
}

// Unseen: the tab is hidden, or the widget has hidden our iframe (then nothing of the page
// intersects the host's viewport; a display:none frame keeps its size, so size cannot tell).
let onScreen = true;
const unseen = () => document.hidden || !onScreen;

function countUnread() {
  if (!unseen()) return;
  state.unread += 1;
  tellHost({ type: "appliance:unread", count: state.unread });
}

function seen() {
  if (!unseen() && state.unread) {
    state.unread = 0;
    tellHost({ type: "appliance:unread", count: 0 });
  }
}

document.addEventListener("visibilitychange", seen);
if (embedded && "IntersectionObserver" in window) {
  new IntersectionObserver((entries) => {
    onScreen = entries[entries.length - 1].isIntersecting;
    seen();
  }).observe(document.body);
}

function setAgentTyping(on) {
  const near = log.nearEnd();
  clearTimeout(state.agentTypingTimer);
  typingLine.hidden = !on;
  if (near) log.scrollToEnd();
  if (on) state.agentTypingTimer = setTimeout(() => setAgentTyping(false), 15000);
}

function applyStatus(status) {
  const near = log.nearEnd();
  state.status = status;
  const line = statusLine(status, t);
  banner.textContent = line;
  banner.hidden = !line;
  banner.dataset.owner = status.status === "closed" ? "closed" : status.owner || "bot";
  const closed = status.status === "closed";
  composer.setClosed(closed);
  composer.setHandoffVisible(!closed && (status.owner || "bot") === "bot");
  const offlineNow = !closed && status.owner === "queue" && (!status.agents_online || !status.open_now);
  if (offlineNow) offline.prefill(composer.profile());
  offline.show(offlineNow);
  rating.show(closed && !status.rated);
  restart.hidden = !closed;
  if (closed) setAgentTyping(false);
  if (near) log.scrollToEnd();
}

function resetView() {
  log.clear();
  state.status = null;
  banner.hidden = true;
  banner.textContent = "";
  restart.hidden = true;
  offline.reset();
  rating.reset();
  setAgentTyping(false);
  composer.setClosed(false);
  composer.setHandoffVisible(true);
  composer.setAttachAllowed(Boolean(session.token));
  refreshEmpty();
}

function sendOwn({ text, files }) {
  const handle = log.addOwn(text, files.map((f) => f.url));
  handle.setState(session.connected ? "pending" : "queued");
  const profile = { ...composer.profile(), page };
  composer.showPrechat(false);
  const entry = session.sendMessage(text, {
    profile,
    anchor: handle.item,
    ready: files.length === 0,
    onSent: () => handle.setState("pending"),
    onAck: () => handle.setState("sent"),
    onFail: () => handle.setState("failed"),
  });
  if (!session.connected) handle.setState("queued");
  if (files.length) uploadAll(entry, files);
}

async function uploadAll(entry, files) {
  const ids = [];
  for (const { file, url, name } of files) {
    try {
      const id = await uploadImage(file, session.token);
      images.remember(id, url);
      ids.push(id);
    } catch (error) {
      log.notice(t("uploadFailed", { name, reason: problemText(error.status, error.message) }));
    }
  }
  entry.frame.attachments = ids;
  entry.ready = true;
  const queued = session.outbox.indexOf(entry);
  if (!entry.frame.text && !ids.length && queued >= 0) {
    session.outbox.splice(queued, 1);
    entry.onFail?.(null);
  }
  session.flush();
}

const context = () => ({ conversationId: session.conversationId, token: session.token, language });
const offline = new OfflinePanel($("#offline"), {
  t, context, onSent: (ticket) => session.rememberToken(ticket.visitor_token),
});
const rating = new RatingPanel($("#rating"), { t, context, onRated: () => {} });

$("#restart-button").addEventListener("click", () => {
  session.newConversation();
  resetView();
  composer.focus();
});

if (embedded) {
  const close = $("#close");
  close.hidden = false;
  close.addEventListener("click", () => tellHost({ type: "appliance:close" }));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") tellHost({ type: "appliance:close" });
  });
}

session = new VisitorSession({
  language,
  handlers: {
    state(name) {
      connLine.textContent = name === "reconnecting" ? t("reconnecting") : "";
      connLine.dataset.state = name;
      for (const item of logRoot.querySelectorAll('[data-own="pending"], [data-own="queued"]')) {
        item.dataset.own = name === "open" ? "pending" : "queued";
        const note = item.querySelector(".msg__state");
        note.hidden = name === "open";
        note.textContent = name === "open" ? "" : t("queued");
      }
    },
    token(text, entry) {
      log.appendToken(text, entry?.anchor);
    },
    reply(frame, entry) {
      composer.setAttachAllowed(Boolean(session.token));
      if (log.finishReply(frame, entry?.anchor)) countUnread();
      refreshEmpty();
    },
    message(message) {
      if (message.role === "visitor" || message.role === "note") return;
      if (message.role === "agent") setAgentTyping(false);
      const before = log.byId.has(message.id);
      log.add(message);
      if (!before && message.role === "agent") countUnread();
    },
    history(messages) {
      log.merge(messages.filter((m) => m.role !== "note"));
      composer.setAttachAllowed(Boolean(session.token));
      refreshEmpty();
    },
    status(frame) {
      applyStatus(frame);
    },
    typing(frame) {
      if (frame.who && frame.who !== "agent") return;
      setAgentTyping(Boolean(frame.typing));
    },
    error(frame) {
      log.discardDraft();
      log.notice(problemText(frame.status, frame.message));
    },
    reset() {
      resetView();
    },
  },
});

composer.setAttachAllowed(Boolean(session.token));
refreshEmpty();
session.start();
