// The reply box: Enter sends, Shift+Enter breaks the line, "/" opens canned replies, the
// "Private note" toggle sends to /note instead of /reply. Replies need ownership; notes don't.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { toastError } from "./toast.js";

const TYPING_REPEAT_MS = 3000;
const TYPING_IDLE_MS = 2500;

export class Composer {
  constructor({ api, socket, onSent }) {
    this.api = api;
    this.socket = socket;
    this.onSent = onSent;
    this.summary = null;
    this.canReply = false;
    this.drafts = new Map();
    this.canned = null;
    this.matches = [];
    this.active = -1;
    this.typingSentAt = 0;
    this.typingIdle = 0;
    this.sending = false;

    this.hint = h("p", { class: "composer-hint", id: "composer-hint", hidden: true });
    this.cannedList = h("ul", {
      class: "canned", id: "canned-list", role: "listbox", "aria-label": t("cannedLabel"), hidden: true,
    });
    this.text = h("textarea", {
      id: "reply",
      rows: 3,
      "aria-label": t("reply"),
      "aria-describedby": "composer-hint",
      "aria-controls": "canned-list",
      "aria-autocomplete": "list",
      placeholder: t("replyPlaceholder"),
      oninput: () => this.onInput(),
      onkeydown: (event) => this.onKey(event),
      onblur: () => setTimeout(() => this.hideCanned(), 150),
    });
    this.note = h("input", { type: "checkbox", id: "note-toggle", onchange: () => this.refresh() });
    this.sendButton = h("button", { type: "submit", class: "primary" }, t("send"));
    this.element = h(
      "form",
      { class: "composer", onsubmit: (event) => { event.preventDefault(); this.send(); } },
      this.cannedList,
      this.hint,
      this.text,
      h(
        "div",
        { class: "composer-bar" },
        h("label", { class: "note-toggle", for: "note-toggle" }, this.note, " ", t("privateNote")),
        this.sendButton,
      ),
    );
  }

  /** Point the composer at a conversation; `canReply` = the signed-in agent owns it, open. */
  setConversation(summary, canReply) {
    const previousId = this.summary ? this.summary.id : "";
    const nextId = summary ? summary.id : "";
    if (previousId !== nextId) {
      if (previousId) {
        this.stopTyping();
        this.drafts.set(previousId, this.text.value);
      }
      this.text.value = this.drafts.get(nextId) || "";
      this.hideCanned();
    }
    this.summary = summary;
    this.canReply = canReply;
    this.refresh();
  }

  refresh() {
    const note = this.note.checked;
    const enabled = Boolean(this.summary) && (note || this.canReply);
    this.text.disabled = !enabled;
    this.sendButton.disabled = !enabled || this.sending;
    this.element.classList.toggle("note-mode", note);
    this.text.placeholder = note ? t("notePlaceholder") : t("replyPlaceholder");
    this.sendButton.textContent = note ? t("addNote") : t("send");
    if (note || this.canReply || !this.summary) {
      this.hint.hidden = true;
      this.hint.textContent = "";
    } else {
      this.hint.hidden = false;
      this.hint.textContent = this.summary.status === "closed" ? t("closedNoReply") : t("takeOverToReply");
    }
  }

  focus() {
    if (!this.text.disabled) this.text.focus();
  }

  // ---- keys and typing ----------------------------------------------------------------------

  onKey(event) {
    if (event.isComposing || event.keyCode === 229) return; // IME (pinyin) is choosing a word
    if (!this.cannedList.hidden && this.matches.length) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        this.active = (this.active + step + this.matches.length) % this.matches.length;
        this.renderCanned();
        return;
      }
      if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        this.pick(this.matches[Math.max(0, this.active)]);
        return;
      }
    }
    if (event.key === "Escape" && !this.cannedList.hidden) {
      event.preventDefault();
      this.hideCanned();
      return;
    }
    if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      this.send();
    }
  }

  onInput() {
    this.updateCanned();
    if (this.note.checked || !this.summary || !this.canReply) return;
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_REPEAT_MS) {
      this.typingSentAt = now;
      this.socket.send({ type: "typing", conversation_id: this.summary.id, typing: true });
    }
    clearTimeout(this.typingIdle);
    this.typingIdle = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.typingIdle);
    if (this.typingSentAt && this.summary) {
      this.socket.send({ type: "typing", conversation_id: this.summary.id, typing: false });
    }
    this.typingSentAt = 0;
  }

  // ---- canned replies -----------------------------------------------------------------------

  async updateCanned() {
    const match = /^\/(\S*)$/.exec(this.text.value);
    if (!match) {
      this.hideCanned();
      return;
    }
    if (this.canned === null) {
      this.canned = [];
      try {
        const data = await this.api.canned();
        this.canned = data.replies || [];
      } catch (err) {
        this.canned = null;
        toastError(err);
        return;
      }
    }
    const again = /^\/(\S*)$/.exec(this.text.value);
    if (!again) return;
    const query = again[1].toLowerCase();
    const key = (reply) => String(reply.shortcut || "").replace(/^\//, "").toLowerCase();
    const starts = this.canned.filter((r) => key(r).startsWith(query));
    const contains = this.canned.filter((r) => !key(r).startsWith(query) && key(r).includes(query));
    this.matches = [...starts, ...contains];
    this.active = this.matches.length ? 0 : -1;
    this.renderCanned();
  }

  renderCanned() {
    this.cannedList.replaceChildren();
    if (!this.matches.length) {
      this.cannedList.appendChild(h("li", { class: "canned-empty" }, t("noCanned")));
    }
    this.matches.forEach((reply, index) => {
      const shortcut = `/${String(reply.shortcut || "").replace(/^\//, "")}`;
      const option = h(
        "li",
        {
          role: "option",
          id: `canned-${index}`,
          class: index === this.active ? "canned-item active" : "canned-item",
          "aria-selected": index === this.active ? "true" : "false",
          onmousedown: (event) => event.preventDefault(),
          onclick: () => this.pick(reply),
        },
        h("span", { class: "canned-shortcut" }, shortcut),
        " ",
        h("span", { class: "canned-text" }, reply.text || ""),
      );
      this.cannedList.appendChild(option);
      if (index === this.active) option.scrollIntoView({ block: "nearest" });
    });
    this.cannedList.hidden = false;
    this.text.setAttribute("aria-expanded", "true");
  }

  hideCanned() {
    this.cannedList.hidden = true;
    this.matches = [];
    this.active = -1;
    this.text.setAttribute("aria-expanded", "false");
  }

  pick(reply) {
    if (!reply) return;
    this.text.value = reply.text || "";
    this.hideCanned();
    this.text.focus();
    this.text.setSelectionRange(this.text.value.length, this.text.value.length);
  }

  // ---- sending ----------------------------------------------------------------------------

  async send() {
    const text = this.text.value.trim();
    if (!text || !this.summary || this.sending || this.text.disabled) return;
    const note = this.note.checked;
    if (!note && !this.canReply) return;
    const id = this.summary.id;
    this.sending = true;
    this.refresh();
    this.stopTyping();
    try {
      const message = await this.api.act(id, note ? "note" : "reply", { text });
      if (this.summary && this.summary.id === id) {
        this.text.value = "";
        this.drafts.delete(id);
      }
      if (message) this.onSent(id, message);
    } catch (err) {
      toastError(err);
    } finally {
      this.sending = false;
      this.refresh();
      this.focus();
    }
  }
}
