// The Tickets tab: messages visitors left while nobody was available, and the answer form.

import { h, fill } from "./dom.js";
import { t } from "./i18n.js";
import { fullTime, languageLabel, shortTime } from "./format.js";
import { toast, toastError } from "./toast.js";

export class TicketDesk {
  constructor({ api, viewEl, panelEl, onCount, openConversation }) {
    this.api = api;
    this.viewEl = viewEl;
    this.panelEl = panelEl;
    this.onCount = onCount;
    this.openConversation = openConversation;
    this.tickets = new Map();
    this.listEl = null;
    this.selectedId = "";
    this.chosen = false; // the agent picked a ticket (else the newest open one is shown)
    this.active = false;
  }

  openCount() {
    let n = 0;
    for (const ticket of this.tickets.values()) if (ticket.status !== "answered") n += 1;
    return n;
  }

  sorted() {
    return [...this.tickets.values()].sort((a, b) => {
      const openA = a.status === "answered" ? 1 : 0;
      const openB = b.status === "answered" ? 1 : 0;
      return openA - openB || (b.created_ms || 0) - (a.created_ms || 0);
    });
  }

  async load() {
    try {
      const [open, answered] = await Promise.all([this.api.tickets("open"), this.api.tickets("answered")]);
      this.tickets.clear();
      for (const ticket of [...(open.tickets || []), ...(answered.tickets || [])]) this.tickets.set(ticket.id, ticket);
    } catch (err) {
      toastError(err);
    }
    this.onCount(this.openCount());
    if (!this.active) return;
    const before = this.selectedId;
    this.pickDefault();
    this.renderList();
    this.renderDetail(before !== this.selectedId);
  }

  /** The tab was selected: list in the inbox column, the selected ticket in the middle. */
  show(listEl) {
    this.active = true;
    this.listEl = listEl;
    this.pickDefault();
    this.render();
    this.load(); // the list may have changed while the socket was down
  }

  pickDefault() {
    const box = this.viewEl.querySelector("#ticket-answer");
    const typing = box && box.value.trim();
    if (this.tickets.has(this.selectedId) && (this.chosen || typing)) return;
    const first = this.sorted()[0];
    this.selectedId = first ? first.id : "";
  }

  hide() {
    this.active = false;
    this.chosen = false;
  }

  upsert(ticket) {
    if (!ticket || !ticket.id) return;
    this.tickets.set(ticket.id, ticket);
    this.onCount(this.openCount());
    if (!this.active) return;
    if (!this.selectedId) this.selectedId = ticket.id;
    this.renderList();
    if (ticket.id === this.selectedId) this.renderDetail(false);
  }

  render() {
    this.renderList();
    this.renderDetail(true);
  }

  renderList() {
    if (!this.listEl) return;
    const tickets = this.sorted();
    if (!tickets.length) {
      fill(this.listEl, h("p", { class: "empty" }, t("noTickets")));
      return;
    }
    const list = h("ul", { class: "conv-list", "aria-label": t("ticketsLabel") });
    for (const ticket of tickets) {
      const answered = ticket.status === "answered";
      list.appendChild(
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: `conv-item ticket-item${ticket.id === this.selectedId ? " active" : ""}${answered ? " closed" : ""}`,
              "aria-current": ticket.id === this.selectedId ? "true" : null,
              onclick: () => this.select(ticket.id),
            },
            h("span", { class: "ci-subject" }, ticket.name || t("anonymous")),
            " ",
            h(
              "span",
              { class: "ci-meta" },
              h("span", { class: "ci-name" }, ticket.contact || ""),
              " ",
              h("span", { class: `badge ${answered ? "badge-closed" : "badge-queue"}` },
                answered ? t("ticketAnswered") : t("ticketOpen")),
              " ",
              h("time", { class: "ci-time" }, shortTime(ticket.created_ms)),
            ),
            " ",
            h("span", { class: "ci-last" }, ticket.message || ""),
          ),
        ),
      );
    }
    fill(this.listEl, list);
  }

  select(id) {
    this.selectedId = id;
    this.chosen = true;
    this.render();
    const box = this.viewEl.querySelector("#ticket-answer");
    if (box) box.focus();
  }

  /** `reset` clears the answer box; a pushed update of the shown ticket keeps what was typed. */
  renderDetail(reset) {
    const ticket = this.tickets.get(this.selectedId);
    if (!ticket) {
      fill(this.panelEl);
      fill(this.viewEl, h("p", { class: "placeholder" }, t("selectTicket")));
      return;
    }
    const oldBox = this.viewEl.querySelector("#ticket-answer");
    const typed = !reset && oldBox ? oldBox.value : "";
    const hadFocus = !reset && oldBox && document.activeElement === oldBox;
    const answered = ticket.status === "answered";
    const facts = h(
      "dl",
      { class: "facts" },
      h("dt", {}, t("visitorName")), h("dd", {}, ticket.name || t("anonymous")),
      h("dt", {}, t("ticketContact")), h("dd", {}, ticket.contact || t("unknown")),
      h("dt", {}, t("ticketReceived")), h("dd", {}, fullTime(ticket.created_ms)),
      h("dt", {}, t("ticketStatus")), h("dd", {}, answered ? t("ticketAnswered") : t("ticketOpen")),
      h("dt", {}, t("ticketLanguage")), h("dd", {}, languageLabel(ticket.language)),
    );
    const box = h("textarea", { id: "ticket-answer", rows: 5, placeholder: t("answerPlaceholder") });
    box.value = typed;
    const sendButton = h("button", { type: "submit", class: "primary" }, t("sendAnswer"));
    const form = h(
      "form",
      {
        class: "ticket-form",
        onsubmit: async (event) => {
          event.preventDefault();
          const text = box.value.trim();
          if (!text) return;
          sendButton.disabled = true;
          try {
            const updated = await this.api.answerTicket(ticket.id, text);
            this.upsert(updated || { ...ticket, status: "answered", answer: text });
            this.renderDetail(true);
            toast(t("answerSent"));
          } catch (err) {
            toastError(err);
          } finally {
            sendButton.disabled = false;
          }
        },
      },
      h("label", { for: "ticket-answer" }, t("answer")),
      box,
      h("div", { class: "composer-bar" }, sendButton),
    );
    fill(
      this.viewEl,
      h(
        "section",
        { class: "ticket", "aria-labelledby": "ticket-title" },
        h(
          "header",
          { class: "conv-head" },
          h("div", { class: "conv-title" },
            h("h2", { class: "conv-subject", id: "ticket-title" }, ticket.name || t("anonymous")),
            h("p", { class: "conv-meta" },
              h("span", { class: `badge ${answered ? "badge-closed" : "badge-queue"}` },
                answered ? t("ticketAnswered") : t("ticketOpen")),
              " ", ticket.contact || "")),
          ticket.conversation_id
            ? h("div", { class: "actions" },
              h("button", { type: "button", onclick: () => this.openConversation(ticket.conversation_id) },
                t("openConversation")))
            : null,
        ),
        h(
          "div",
          { class: "ticket-body" },
          h("h3", {}, t("ticketMessage")),
          h("blockquote", { class: "ticket-message" }, ticket.message || ""),
          answered && ticket.answer
            ? [
                h("h3", {}, ticket.answered_by ? t("answeredBy", { name: ticket.answered_by }) : t("ticketAnswered")),
                h("blockquote", { class: "ticket-answer-text" }, ticket.answer),
              ]
            : null,
          answered ? null : form,
        ),
      ),
    );
    fill(this.panelEl, h("h2", { class: "panel-title" }, t("visitorPanel")), facts);
    if (hadFocus && !answered) box.focus();
  }
}
