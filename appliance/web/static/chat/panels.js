// What the status frame drives besides the composer: the queue/agent banner, the
// leave-a-message form (queue with no agent online or out of hours) and the rating form.

import { api } from "./session.js";

/** The banner sentence for a status frame, or "" for none. */
export function statusLine(status, t) {
  if (status.status === "closed") return t("closed");
  if (status.owner === "agent") {
    return status.agent ? t("chattingWith", { name: status.agent }) : t("chattingWithAgent");
  }
  if (status.owner === "queue") {
    const position = Number(status.position) || 0;
    // Nobody can answer now (no one online, or outside opening hours): no wait to promise.
    if (!status.agent && (!status.agents_online || !status.open_now)) {
      return position > 0 ? t("queuePositionClosed", { n: position }) : "";
    }
    if (position <= 0) return status.agent ? t("queueSoonNamed", { name: status.agent }) : t("queueSoon");
    const minutes = Math.ceil((Number(status.wait_s) || 0) / 60);
    return minutes > 0 ? t("queuePosition", { n: position, m: minutes }) : t("queuePositionNoWait", { n: position });
  }
  return "";
}

function showError(form, text) {
  const error = form.querySelector(".panel__error");
  error.textContent = text;
  error.hidden = !text;
}

function setBusy(form, busy) {
  for (const control of form.elements) control.disabled = busy;
}

export class OfflinePanel {
  /** context() returns {conversationId, token, language}; onSent(ticket) after a 201. */
  constructor(section, { t, context, onSent }) {
    this.section = section;
    this.form = section.querySelector("form");
    this.done = section.querySelector("#offline-done");
    this.t = t;
    this.sent = false;
    this.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const values = Object.fromEntries(["name", "contact", "message"]
        .map((key) => [key, this.form.elements[key].value.trim()]));
      if (!values.name || !values.contact || !values.message) {
        showError(this.form, t("ticketMissing"));
        this.form.querySelector(values.name ? (values.contact ? "[name=message]" : "[name=contact]") : "[name=name]").focus();
        return;
      }
      const { conversationId, token, language } = context();
      const body = { ...values, language };
      if (conversationId) body.conversation_id = conversationId;
      setBusy(this.form, true);
      showError(this.form, "");
      try {
        const ticket = await api("/api/v1/tickets", { method: "POST", token, json: body });
        this.sent = true;
        this.form.hidden = true;
        this.done.hidden = false;
        this.section.hidden = false;
        onSent(ticket || {});
      } catch (error) {
        showError(this.form, error.message || t("errorGeneric"));
      } finally {
        setBusy(this.form, false);
      }
    });
  }

  show(visible) {
    this.section.hidden = !(visible || this.sent);
  }

  /** Fill empty fields from what the visitor already told us (the pre-chat name and email). */
  prefill({ name = "", email = "" }) {
    const fields = this.form.elements;
    if (!fields.name.value) fields.name.value = name;
    if (!fields.contact.value) fields.contact.value = email;
  }

  reset() {
    this.sent = false;
    this.form.reset();
    this.form.hidden = false;
    this.done.hidden = true;
    showError(this.form, "");
    this.section.hidden = true;
  }
}

export class RatingPanel {
  /** context() returns {conversationId, token}; onRated() after the rating was stored. */
  constructor(section, { t, context, onRated }) {
    this.section = section;
    this.form = section.querySelector("form");
    this.done = section.querySelector("#rating-done");
    this.group = section.querySelector("#stars");
    this.t = t;
    this.score = 0;
    this.rated = false;
    this.stars = [1, 2, 3, 4, 5].map((n) => this.star(n));
    this.group.append(...this.stars);
    this.paint(0);
    this.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!this.score) {
        showError(this.form, t("ratingMissing"));
        this.stars[0].focus();
        return;
      }
      const { conversationId, token } = context();
      setBusy(this.form, true);
      showError(this.form, "");
      try {
        await api(`/api/v1/conversations/${encodeURIComponent(conversationId)}/rating`, {
          method: "POST", token, json: { score: this.score, comment: this.form.elements.comment.value.trim() },
        });
        this.rated = true;
        this.form.hidden = true;
        this.done.hidden = false;
        this.section.hidden = false;
        onRated();
      } catch (error) {
        showError(this.form, error.message || t("errorGeneric"));
      } finally {
        setBusy(this.form, false);
      }
    });
  }

  star(n) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "star";
    button.setAttribute("role", "radio");
    button.setAttribute("aria-label", this.t(n === 1 ? "star_one" : "star_other", { n }));
    button.textContent = "★";
    button.addEventListener("click", () => this.choose(n));
    button.addEventListener("mouseenter", () => this.paint(n, true));
    button.addEventListener("mouseleave", () => this.paint(this.score));
    button.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1 }[event.key];
      if (event.key === "Home" || event.key === "End" || step) {
        event.preventDefault();
        const next = event.key === "Home" ? 1 : event.key === "End" ? 5 : Math.min(5, Math.max(1, (this.score || n) + step));
        this.choose(next);
        this.stars[next - 1].focus();
      }
    });
    return button;
  }

  choose(n) {
    this.score = n;
    this.paint(n);
    showError(this.form, "");
  }

  paint(upTo, hovering = false) {
    this.stars.forEach((button, index) => {
      const n = index + 1;
      button.classList.toggle("star--lit", n <= upTo);
      button.classList.toggle("star--hover", hovering && n <= upTo);
      if (!hovering) {
        button.setAttribute("aria-checked", String(n === this.score));
        button.tabIndex = n === (this.score || 1) ? 0 : -1;
      }
    });
  }

  show(visible) {
    this.section.hidden = !(visible || this.rated);
  }

  reset() {
    this.score = 0;
    this.rated = false;
    this.form.reset();
    this.form.hidden = false;
    this.done.hidden = true;
    showError(this.form, "");
    this.paint(0);
    this.section.hidden = true;
  }
}
