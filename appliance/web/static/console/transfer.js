// The small "Transfer to" picker under the conversation header.

import { h, fill } from "./dom.js";
import { t } from "./i18n.js";
import { learnAgents, presenceLabel } from "./format.js";
import { toastError } from "./toast.js";

export class TransferPicker {
  constructor({ api, me, onDone, onClose, conversationId, beforeAction }) {
    this.api = api;
    this.me = me;
    this.onDone = onDone;
    this.onClose = onClose;
    this.conversationId = conversationId;
    this.beforeAction = beforeAction;
    this.visible = false;
    this.agents = [];
    this.select = h("select", { id: "transfer-to", onchange: () => this.describe() });
    this.info = h("span", { class: "transfer-info", "aria-live": "polite" });
    this.confirm = h("button", { type: "submit", class: "primary" }, t("confirmTransfer"));
    this.element = h(
      "form",
      { class: "transfer", hidden: true, onsubmit: (event) => { event.preventDefault(); this.submit(); } },
      h("label", { for: "transfer-to" }, t("transferTo")),
      this.select,
      this.info,
      this.confirm,
      h("button", { type: "button", onclick: () => this.cancel() }, t("cancel")),
    );
    this.element.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        this.cancel();
      }
    });
  }

  async show() {
    this.visible = true;
    this.element.hidden = false;
    fill(this.select, h("option", { value: "queue" }, t("backToQueue")));
    this.info.textContent = "";
    this.onClose(); // re-render the header without the Transfer button
    this.select.focus();
    try {
      const data = await this.api.agents();
      learnAgents(data.agents);
      this.agents = (data.agents || []).filter((a) => a.name !== this.me.name && !a.disabled);
    } catch (err) {
      toastError(err);
      this.agents = [];
    }
    if (!this.visible) return;
    for (const agent of this.agents) {
      this.select.appendChild(h("option", { value: agent.name }, agent.display_name || agent.name));
    }
    this.describe();
  }

  describe() {
    const agent = this.agents.find((a) => a.name === this.select.value);
    this.info.textContent = agent
      ? `${presenceLabel(agent.presence)} · ${agent.load ?? 0}/${agent.capacity ?? "?"}`
      : this.agents.length ? "" : t("noAgents");
  }

  hide() {
    this.visible = false;
    this.element.hidden = true;
  }

  cancel() {
    this.hide();
    this.onClose();
    const button = document.querySelector('[data-action="transfer"]');
    if (button) button.focus();
  }

  async submit() {
    const id = this.conversationId();
    if (!id) return;
    const to = this.select.value || "queue";
    this.confirm.disabled = true;
    this.beforeAction();
    try {
      const summary = await this.api.act(id, "transfer", { to });
      this.hide();
      if (summary) this.onDone(summary);
      else this.onClose();
    } catch (err) {
      toastError(err);
    } finally {
      this.confirm.disabled = false;
    }
  }
}
