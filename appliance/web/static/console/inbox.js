// The inbox column: filter tabs with counts and the list of conversations.
// Invariant: `known` holds the last Summary seen for every conversation id (from any list or
// frame), so a pushed frame can move a conversation between counts without refetching. When a
// frame names a conversation we never saw, the counts are refetched once (debounced).

import { h, fill } from "./dom.js";
import { t } from "./i18n.js";
import { ownerKind, ownerLabel, shortTime } from "./format.js";
import { toastError } from "./toast.js";

export const TABS = ["mine", "queue", "bot", "open", "resolved", "tickets"];
const COUNTED = ["mine", "queue", "bot", "open", "resolved"];

export class Inbox {
  constructor({ api, me, tabsEl, listEl, onOpen, onTicketsTab, onTab }) {
    this.api = api;
    this.me = me;
    this.tabsEl = tabsEl;
    this.listEl = listEl;
    this.onOpen = onOpen;
    this.onTicketsTab = onTicketsTab;
    this.onTab = onTab;
    this.tab = "open";
    this.items = [];
    this.next = null;
    this.counts = { mine: 0, queue: 0, bot: 0, open: 0, resolved: 0, tickets: 0 };
    this.known = new Map();
    this.openId = "";
    this.loadToken = 0;
    this.refreshTimer = 0;
    this.loading = false;
    this.buildTabs();
  }

  mineOwner() {
    return `agent:${this.me.name}`;
  }

  /** Which counters a conversation adds to (the server's filters, mirrored). */
  categories(summary) {
    if (summary.status === "closed") return ["resolved"];
    const cats = ["open"];
    if (summary.owner === "bot") cats.push("bot");
    else if (summary.owner === "queue") {
      cats.push("queue");
      // Routing assigns a queued conversation to an agent before they take it: it is theirs too.
      if (summary.assignee === this.me.name) cats.push("mine");
    } else if (summary.owner === this.mineOwner()) cats.push("mine");
    return cats;
  }

  matches(summary, filter) {
    return this.categories(summary).includes(filter);
  }

  // ---- tabs -------------------------------------------------------------------------------

  buildTabs() {
    this.tabButtons = new Map();
    fill(this.tabsEl);
    for (const tab of TABS) {
      const count = h("span", { class: "tab-count" }, "0");
      const button = h(
        "button",
        {
          type: "button",
          role: "tab",
          id: `tab-${tab}`,
          class: "tab",
          "aria-controls": "inbox-panel",
          "data-tab": tab,
          onclick: () => this.select(tab),
          onkeydown: (event) => this.tabKey(event, tab),
        },
        h("span", { class: "tab-name" }, t(`tab_${tab}`)),
        " ",
        count,
      );
      this.tabButtons.set(tab, { button, count });
      this.tabsEl.appendChild(button);
    }
    this.renderTabs();
  }

  tabKey(event, tab) {
    const index = TABS.indexOf(tab);
    let next = -1;
    if (event.key === "ArrowRight" || event.key === "ArrowDown") next = (index + 1) % TABS.length;
    else if (event.key === "ArrowLeft" || event.key === "ArrowUp") next = (index - 1 + TABS.length) % TABS.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = TABS.length - 1;
    if (next < 0) return;
    event.preventDefault();
    this.select(TABS[next]);
    this.tabButtons.get(TABS[next]).button.focus();
  }

  renderTabs() {
    for (const [tab, { button, count }] of this.tabButtons) {
      const selected = tab === this.tab;
      button.setAttribute("aria-selected", selected ? "true" : "false");
      button.tabIndex = selected ? 0 : -1;
      count.textContent = String(this.counts[tab] ?? 0);
      count.classList.toggle("tab-count-hot", tab === "queue" && this.counts.queue > 0);
    }
    const panel = this.listEl.closest("[role=tabpanel]");
    if (panel) panel.setAttribute("aria-labelledby", `tab-${this.tab}`);
  }

  setTicketCount(n) {
    this.counts.tickets = n;
    this.renderTabs();
  }

  async select(tab) {
    if (this.tab === tab && this.items.length && tab !== "tickets") return;
    if (this.tab !== tab) {
      this.items = [];
      this.next = null;
    }
    this.tab = tab;
    this.renderTabs();
    this.onTab(tab);
    if (tab === "tickets") {
      this.onTicketsTab(this.listEl);
      return;
    }
    await this.reload();
  }

  // ---- loading ----------------------------------------------------------------------------

  /** Fetch the first page of the current filter (also corrects every count). */
  async reload() {
    if (this.tab === "tickets") {
      this.onTicketsTab(this.listEl);
      return;
    }
    const token = ++this.loadToken;
    const filter = this.tab;
    this.loading = true;
    if (!this.items.length) this.renderList();
    try {
      const data = await this.api.conversations(filter);
      if (token !== this.loadToken) return;
      this.items = (data.conversations || []).slice();
      this.next = data.next || null;
      this.takeCounts(data.counts);
      for (const summary of this.items) this.remember(summary);
    } catch (err) {
      if (token === this.loadToken) toastError(err);
    } finally {
      if (token === this.loadToken) {
        this.loading = false;
        this.sortItems();
        this.renderList();
      }
    }
  }

  async loadMore() {
    if (!this.next || this.tab === "tickets") return;
    const token = this.loadToken;
    try {
      const data = await this.api.conversations(this.tab, this.next);
      if (token !== this.loadToken) return;
      const have = new Set(this.items.map((s) => s.id));
      for (const summary of data.conversations || []) {
        this.remember(summary);
        if (!have.has(summary.id)) this.items.push(summary);
      }
      this.next = data.next || null;
      this.takeCounts(data.counts);
      this.renderList();
    } catch (err) {
      toastError(err);
    }
  }

  takeCounts(counts) {
    if (!counts) return;
    for (const key of COUNTED) if (typeof counts[key] === "number") this.counts[key] = counts[key];
    this.renderTabs();
  }

  remember(summary) {
    if (summary.id === this.openId) summary.unread = 0;
    this.known.set(summary.id, summary);
  }

  /** Forget what may be stale (after a reconnect) and fetch again. */
  resync() {
    this.known.clear();
    return this.reload();
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.reload(), 400);
  }

  // ---- live updates -----------------------------------------------------------------------

  /** A Summary from a socket frame or an action's response. */
  upsert(summary, event = "") {
    const previous = this.known.get(summary.id);
    if (previous) {
      for (const cat of this.categories(previous)) this.counts[cat] = Math.max(0, this.counts[cat] - 1);
      for (const cat of this.categories(summary)) this.counts[cat] += 1;
    } else if (event === "created") {
      for (const cat of this.categories(summary)) this.counts[cat] += 1;
    } else {
      this.scheduleRefresh();
    }
    this.remember(summary);
    this.renderTabs();
    if (this.tab === "tickets") return;
    const index = this.items.findIndex((s) => s.id === summary.id);
    const belongs = this.matches(summary, this.tab);
    if (belongs && index >= 0) this.items[index] = summary;
    else if (belongs) this.items.push(summary);
    else if (index >= 0) this.items.splice(index, 1);
    this.sortItems();
    this.renderList();
  }

  sortItems() {
    this.items.sort((a, b) => (b.updated_ms || 0) - (a.updated_ms || 0));
  }

  setOpen(id) {
    this.openId = id || "";
    const summary = this.known.get(this.openId);
    if (summary) summary.unread = 0;
    this.renderList();
  }

  // ---- list -------------------------------------------------------------------------------

  renderList() {
    if (this.tab === "tickets") return;
    const focusedId = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.conversationId : undefined;
    if (!this.items.length) {
      fill(this.listEl, h("p", { class: "empty" }, this.loading ? t("loading") : t("emptyInbox")));
      return;
    }
    const list = h("ul", { class: "conv-list", "aria-label": t(`tab_${this.tab}`) });
    for (const summary of this.items) list.appendChild(h("li", {}, this.item(summary)));
    const more = this.next
      ? h("button", { type: "button", class: "load-more", onclick: () => this.loadMore() }, t("loadMore"))
      : null;
    fill(this.listEl, list, more);
    if (focusedId) {
      const again = this.listEl.querySelector(`[data-conversation-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
  }

  item(summary) {
    const unread = summary.id === this.openId ? 0 : summary.unread || 0;
    const kind = ownerKind(summary.owner);
    const mine = summary.owner === this.mineOwner();
    const lastPrefix = {
      bot: t("lastBot"), agent: t("lastAgent"), note: t("lastNote"), system: t("lastSystem"), visitor: t("lastVisitor"),
    }[summary.last_role] || "";
    const classes = ["conv-item", `owner-${kind}`];
    if (summary.id === this.openId) classes.push("active");
    if (unread) classes.push("has-unread");
    if (summary.status === "closed") classes.push("closed");
    return h(
      "button",
      {
        type: "button",
        class: classes.join(" "),
        "data-conversation-id": summary.id,
        "aria-current": summary.id === this.openId ? "true" : null,
        onclick: () => this.onOpen(summary.id),
      },
      h("span", { class: "ci-subject" }, summary.subject || t("noSubject")),
      " ",
      h(
        "span",
        { class: "ci-meta" },
        h("span", { class: "ci-name" }, summary.visitor_name || t("anonymous")),
        " ",
        h("span", { class: `ci-owner badge badge-${mine ? "mine" : kind}` }, ownerLabel(summary, this.me.name)),
        " ",
        h("time", { class: "ci-time", datetime: new Date(summary.updated_ms || 0).toISOString() },
          shortTime(summary.updated_ms)),
      ),
      " ",
      summary.last_text ? h("span", { class: "ci-last" }, lastPrefix + summary.last_text) : null,
      unread ? h("span", { class: "ci-unread" }, String(unread), h("span", { class: "sr-only" }, ` ${t("unread")}`)) : null,
    );
  }
}
