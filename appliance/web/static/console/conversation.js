// The middle column: one conversation's header, actions, messages with their decision traces,
// the visitor typing line and the composer; and the visitor panel beside it.

import { h, fill } from "./dom.js";
import { t } from "./i18n.js";
import { attachmentUrl } from "./api.js";
import { clockTime, displayName, fullTime, languageLabel, ownerLabel } from "./format.js";
import { renderTrace } from "./trace.js";
import { Composer } from "./composer.js";
import { TransferPicker } from "./transfer.js";
import { clearVisitorPanel, renderVisitorPanel } from "./visitor_panel.js";
import { toastError } from "./toast.js";

const TYPING_TIMEOUT_MS = 8000;

export class ConversationView {
  constructor({ api, socket, me, viewEl, panelEl, onSummary, onOpen, onRead, onAction }) {
    this.api = api;
    this.me = me;
    this.viewEl = viewEl;
    this.panelEl = panelEl;
    this.onSummary = onSummary;
    this.onOpen = onOpen;
    this.onRead = onRead;
    this.onAction = onAction;
    this.id = "";
    this.summary = null;
    this.messages = [];
    this.traces = {};
    this.token = 0;
    this.readTimer = 0;
    this.typingTimer = 0;
    this.traceTimer = 0;
    this.traceTries = new Map();
    this.composer = new Composer({ api, socket, onSent: (id, message) => this.addMessage(id, message) });
    this.picker = new TransferPicker({
      api,
      me,
      onDone: (summary) => this.applySummary(summary, "owner"),
      onClose: () => this.renderHeader(),
      conversationId: () => this.id,
      beforeAction: () => this.onAction(this.id),
    });
    this.showPlaceholder();
  }

  mine() {
    return Boolean(this.summary) && this.summary.owner === `agent:${this.me.name}`;
  }

  showPlaceholder() {
    this.close();
    fill(this.viewEl, h("p", { class: "placeholder" }, t("selectConversation")));
    clearVisitorPanel(this.panelEl);
  }

  /** Stop showing a conversation (e.g. the tickets tab takes the middle column). */
  close() {
    this.token += 1;
    this.id = "";
    this.summary = null;
    this.headEl = null;
    this.logEl = null;
    this.typingEl = null;
    this.composer.setConversation(null, false);
    this.picker.hide();
  }

  async open(id) {
    const token = ++this.token;
    const switching = id !== this.id;
    this.id = id;
    if (switching) {
      this.picker.hide();
      this.summary = null;
      this.headEl = null;
      this.logEl = null;
      this.typingEl = null;
      this.messages = [];
      this.traces = {};
      this.visitorTyping = false;
      fill(this.viewEl, h("p", { class: "placeholder" }, t("loading")));
    }
    let detail;
    try {
      detail = await this.api.conversation(id);
    } catch (err) {
      if (token === this.token) {
        toastError(err);
        if (switching) this.showPlaceholder();
      }
      return;
    }
    if (token !== this.token) return;
    const pending = switching ? [] : this.messages;
    this.summary = detail.conversation;
    this.traces = detail.traces || {};
    this.messages = mergeMessages(detail.messages || [], pending);
    this.detail = detail;
    this.render();
    renderVisitorPanel(this.panelEl, detail, { onOpenPast: (pastId) => this.onOpen(pastId) });
    this.onSummary(this.summary, "");
    this.markRead();
  }

  reload() {
    if (this.id) return this.open(this.id);
    return Promise.resolve();
  }

  // ---- rendering --------------------------------------------------------------------------

  render() {
    this.titleEl = h("div", { class: "conv-title" });
    this.actionsEl = h("div", { class: "actions", role: "group", "aria-label": t("actionsLabel") });
    this.headEl = h("header", { class: "conv-head" }, this.titleEl, this.actionsEl, this.picker.element);
    this.logEl = h("div", { class: "log", role: "log", "aria-label": t("messagesLabel"), tabindex: "0" });
    this.typingEl = h("p", { class: "typing", "aria-live": "polite" });
    fill(
      this.viewEl,
      h(
        "section",
        { class: "conv", "aria-label": t("conversationLabel") },
        this.headEl,
        this.logEl,
        this.typingEl,
        this.composer.element,
      ),
    );
    this.renderHeader();
    if (this.visitorTyping) this.setTyping(true);
    for (const message of this.messages) this.logEl.appendChild(this.messageEl(message));
    this.logEl.scrollTop = this.logEl.scrollHeight;
    this.requestMissingTraces();
  }

  renderHeader() {
    if (!this.headEl || !this.summary) return;
    const s = this.summary;
    const open = s.status !== "closed";
    if (!open && this.picker.visible) this.picker.hide();
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.action : undefined;
    const button = (action, label, onclick, extra = "") =>
      h("button", { type: "button", class: `action ${extra}`.trim(), "data-action": action, onclick }, label);
    const actions = fill(this.actionsEl);
    if (open && !this.mine()) actions.appendChild(button("take", t("takeOver"), () => this.act("take"), "primary"));
    if (open && s.owner !== "bot") actions.appendChild(button("handback", t("handBack"), () => this.act("handback")));
    if (open && !this.picker.visible) actions.appendChild(button("transfer", t("transfer"), () => this.picker.show()));
    if (open) actions.appendChild(button("close", t("resolve"), () => this.act("close")));
    if (!open) actions.appendChild(button("reopen", t("reopen"), () => this.act("reopen"), "primary"));

    const assignee = s.assignee ? displayName(s.assignee) : t("nobody");
    fill(
      this.titleEl,
      h("h2", { class: "conv-subject" }, s.subject || t("noSubject")),
      h(
        "p",
        { class: "conv-meta" },
        h("span", { class: `badge ${open ? "badge-open" : "badge-closed"}` }, open ? t("statusOpen") : t("statusClosed")),
        " ",
        h("span", {}, t("metaOwner") + t("colon"), h("strong", {}, ownerLabel(s, this.me.name))),
        " · ",
        h("span", {}, t("metaAssignee") + t("colon"), assignee),
        " · ",
        h("span", {}, languageLabel(s.language)),
        " · ",
        h("span", {}, t("metaStarted") + t("colon"), fullTime(s.started_ms)),
      ),
    );
    if (focused) {
      const again = actions.querySelector(`[data-action="${focused}"]`);
      if (again) again.focus();
    }
    this.composer.setConversation(s, open && this.mine());
  }

  authorOf(message) {
    switch (message.role) {
      case "visitor": return (this.summary && this.summary.visitor_name) || t("role_visitor");
      case "bot": return t("role_bot");
      case "agent": return displayName(message.author) || t("role_agent_msg");
      case "note": return displayName(message.author);
      default: return t("role_system");
    }
  }

  messageEl(message) {
    const role = ["visitor", "bot", "agent", "system", "note"].includes(message.role) ? message.role : "system";
    const time = h("time", { datetime: new Date(message.created_ms || 0).toISOString(), title: fullTime(message.created_ms) },
      clockTime(message.created_ms));
    if (role === "system") {
      return h("div", { class: "msg msg-system", "data-message-id": message.id },
        h("span", { class: "msg-text" }, message.text || ""), " ", time);
    }
    const head = h(
      "div",
      { class: "msg-head" },
      role === "note" ? h("span", { class: "note-label" }, t("privateNote")) : null,
      h("span", { class: "msg-author" }, this.authorOf(message)),
      " ",
      time,
    );
    const body = h("div", { class: "msg-bubble" }, head, h("div", { class: "msg-text" }, message.text || ""));
    for (const id of message.attachments || []) {
      body.appendChild(
        h("a", { href: attachmentUrl(id), target: "_blank", rel: "noopener", class: "attachment" },
          h("img", { src: attachmentUrl(id), alt: t("attachment"), loading: "lazy" })),
      );
    }
    const citations = (message.citations || []).map(citationText).filter(Boolean);
    if (role === "bot" && citations.length && !message.trace_id) {
      body.appendChild(h("p", { class: "citations" }, t("sources"), citations.join("; ")));
    }
    const wrap = h("article", { class: `msg msg-${role}`, "data-message-id": message.id }, body);
    if (role === "bot" && message.trace_id) {
      const slot = h("div", { class: "trace-slot", "data-trace-id": message.trace_id });
      if (this.traces[message.trace_id]) slot.appendChild(renderTrace(this.traces[message.trace_id]));
      wrap.appendChild(slot);
    }
    return wrap;
  }

  // ---- live updates -----------------------------------------------------------------------

  /** A message pushed by the socket or returned by our own reply/note. */
  addMessage(conversationId, message) {
    if (conversationId !== this.id || !message) return;
    if (this.messages.some((m) => m.id === message.id)) return;
    // A message fresh from the wire may not carry its clock yet: it happened just now.
    if (!message.created_ms) message = { ...message, created_ms: Date.now() };
    this.messages.push(message);
    if (!this.logEl || !this.summary) return; // still loading: merged when the detail arrives
    const nearBottom = this.logEl.scrollHeight - this.logEl.scrollTop - this.logEl.clientHeight < 120;
    this.logEl.appendChild(this.messageEl(message));
    if (nearBottom || message.role === "agent" || message.role === "note") this.logEl.scrollTop = this.logEl.scrollHeight;
    if (message.role === "visitor") this.setTyping(false);
    this.requestMissingTraces();
    this.markRead();
  }

  applySummary(summary, event) {
    this.onSummary(summary, event);
    this.updateSummary(summary);
  }

  updateSummary(summary) {
    if (!summary || summary.id !== this.id || !this.headEl) return;
    this.summary = summary;
    this.renderHeader();
  }

  setTyping(typing) {
    this.visitorTyping = typing;
    if (!this.typingEl) return; // shown by render() once the conversation has loaded
    clearTimeout(this.typingTimer);
    this.typingEl.textContent = typing ? t("visitorTyping") : "";
    if (typing) this.typingTimer = setTimeout(() => this.setTyping(false), TYPING_TIMEOUT_MS);
  }

  markRead() {
    clearTimeout(this.readTimer);
    const id = this.id;
    this.readTimer = setTimeout(async () => {
      if (!id || id !== this.id) return;
      try {
        await this.api.act(id, "read");
        this.onRead(id);
      } catch {
        // Unread counts are a convenience; the next open retries.
      }
    }, 250);
  }

  async act(action) {
    const id = this.id;
    if (!id) return;
    this.onAction(id);
    try {
      const summary = await this.api.act(id, action);
      if (summary) this.applySummary(summary, action === "take" ? "assigned" : "owner");
      if (action === "take" || action === "reopen") this.composer.focus();
    } catch (err) {
      toastError(err);
    }
  }

  /** Bot replies pushed live carry a trace_id whose summary only the detail endpoint has. */
  requestMissingTraces() {
    const missing = this.messages.filter((m) => m.role === "bot" && m.trace_id && !this.traces[m.trace_id]
      && (this.traceTries.get(m.trace_id) || 0) < 3);
    if (!missing.length) return;
    clearTimeout(this.traceTimer);
    this.traceTimer = setTimeout(async () => {
      const id = this.id;
      for (const m of missing) this.traceTries.set(m.trace_id, (this.traceTries.get(m.trace_id) || 0) + 1);
      let detail;
      try {
        detail = await this.api.conversation(id);
      } catch {
        return;
      }
      if (id !== this.id || !this.logEl) return;
      Object.assign(this.traces, detail.traces || {});
      for (const slot of this.logEl.querySelectorAll(".trace-slot")) {
        const trace = this.traces[slot.dataset.traceId];
        if (trace && !slot.firstChild) slot.appendChild(renderTrace(trace));
      }
      this.requestMissingTraces();
    }, 600);
  }
}

function mergeMessages(loaded, pending) {
  const seen = new Set(loaded.map((m) => m.id));
  const merged = loaded.slice();
  for (const m of pending) if (!seen.has(m.id)) merged.push(m);
  merged.sort((a, b) => (a.created_ms || 0) - (b.created_ms || 0));
  return merged;
}

function citationText(citation) {
  if (!citation) return "";
  if (typeof citation === "string") return citation;
  const doc = citation.document || citation.title || "";
  return citation.section ? `${doc} › ${citation.section}` : doc;
}
