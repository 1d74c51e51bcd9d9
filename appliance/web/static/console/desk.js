// The signed-in console: wires the inbox, the conversation view, tickets, presence and the
// agent socket together. Live state comes only from socket frames (no polling); after a
// reconnect everything shown is fetched again.

import { byId } from "./dom.js";
import { t } from "./i18n.js";
import { learnAgents, roleLabel } from "./format.js";
import { AgentSocket } from "./socket.js";
import { Inbox } from "./inbox.js";
import { ConversationView } from "./conversation.js";
import { TicketDesk } from "./tickets.js";
import { Presence } from "./presence.js";
import { alertAgent, askPermission, needsPermission, unlockAudio } from "./alerts.js";
import { toast } from "./toast.js";

const SELF_ACTION_MS = 5000;

export class Desk {
  constructor({ api, user, onUnauthorized }) {
    this.api = api;
    this.me = user;
    this.onUnauthorized = onUnauthorized;
    this.selfActions = new Map();
    this.alerted = new Map();

    this.socket = new AgentSocket({
      onFrame: (frame) => this.onFrame(frame),
      onOpen: (reconnected) => this.onSocketOpen(reconnected),
      onState: (state) => this.showConnection(state),
      onUnauthorized: () => this.onUnauthorized(),
    });
    this.inbox = new Inbox({
      api,
      me: this.me,
      tabsEl: byId("tabs"),
      listEl: byId("inbox-list"),
      onOpen: (id) => this.openConversation(id),
      onTicketsTab: (listEl) => this.showTickets(listEl),
      onTab: (tab) => this.onTab(tab),
    });
    this.view = new ConversationView({
      api,
      socket: this.socket,
      me: this.me,
      viewEl: byId("view"),
      panelEl: byId("visitor"),
      onSummary: (summary, event) => this.inbox.upsert(summary, event),
      onOpen: (id) => this.openConversation(id),
      onRead: (id) => this.inbox.setOpen(id),
      onAction: (id) => this.selfActions.set(id, Date.now()),
    });
    this.tickets = new TicketDesk({
      api,
      viewEl: byId("view"),
      panelEl: byId("visitor"),
      onCount: (n) => this.inbox.setTicketCount(n),
      openConversation: (id) => this.openConversation(id),
    });
    this.presence = new Presence({
      api,
      socket: this.socket,
      select: byId("presence"),
      me: this.me,
      onUser: (user) => this.setUser(user),
    });
  }

  start() {
    learnAgents([this.me]);
    this.api.agents().then((data) => learnAgents(data.agents)).catch(() => {});
    this.showUser();
    this.setupHeader();
    this.socket.start();
    this.inbox.renderTabs();
    this.inbox.reload();
    this.tickets.load();
    const wanted = /^#c=(.+)$/.exec(location.hash);
    if (wanted) this.openConversation(decodeURIComponent(wanted[1]));
  }

  setupHeader() {
    const notify = byId("notify-btn");
    notify.hidden = !needsPermission();
    notify.onclick = async () => {
      unlockAudio();
      await askPermission();
      notify.hidden = !needsPermission();
    };
    byId("signout").onclick = () => this.signOut();
    const unlock = () => unlockAudio();
    window.addEventListener("pointerdown", unlock, { once: true });
    window.addEventListener("keydown", unlock, { once: true });
  }

  showUser() {
    byId("me-name").textContent = this.me.display_name || this.me.name;
    byId("me-role").textContent = roleLabel(this.me.role) || this.me.role;
  }

  setUser(user) {
    if (!user || user.name !== this.me.name) return;
    Object.assign(this.me, user);
    this.showUser();
    this.presence.show(this.me.presence);
  }

  showConnection(state) {
    const node = byId("conn");
    node.dataset.state = state;
    node.textContent = state === "live" ? t("connLive") : state === "lost" ? t("connLost") : t("connConnecting");
  }

  async signOut() {
    this.socket.stop();
    try {
      await this.api.logout();
    } catch {
      // Signing out of a session that already ended is still signed out.
    }
    location.replace(location.pathname + location.search);
  }

  // ---- navigation -------------------------------------------------------------------------

  openConversation(id) {
    if (!id) return;
    if (this.inbox.tab === "tickets") {
      this.tickets.hide();
      this.inbox.select("open");
    }
    this.inbox.setOpen(id);
    history.replaceState(null, "", `${location.pathname}${location.search}#c=${encodeURIComponent(id)}`);
    this.view.open(id);
  }

  onTab(tab) {
    if (tab === "tickets") return;
    this.tickets.hide();
    if (!this.view.id) this.view.showPlaceholder();
  }

  showTickets(listEl) {
    this.view.close();
    this.inbox.setOpen("");
    history.replaceState(null, "", `${location.pathname}${location.search}`);
    this.tickets.show(listEl);
  }

  // ---- socket -----------------------------------------------------------------------------

  onSocketOpen(reconnected) {
    this.presence.reset();
    this.presence.activity();
    if (!reconnected) return;
    this.inbox.resync();
    this.view.reload();
    this.tickets.load();
  }

  /** A handoff is usually followed at once by its routing ("assigned"): one alert for both. */
  recentlyAlerted(id) {
    const at = this.alerted.get(id);
    this.alerted.set(id, Date.now());
    return Boolean(at) && Date.now() - at < SELF_ACTION_MS;
  }

  isSelfAction(id) {
    const at = this.selfActions.get(id);
    return Boolean(at) && Date.now() - at < SELF_ACTION_MS;
  }

  onFrame(frame) {
    switch (frame.type) {
      case "hello":
        this.setUser(frame.user);
        break;
      case "conversation": {
        const summary = frame.conversation;
        if (!summary || !summary.id) break;
        this.inbox.upsert(summary, frame.event);
        this.view.updateSummary(summary);
        const mine = summary.owner === `agent:${this.me.name}` || summary.assignee === this.me.name;
        const wantsMe = frame.event === "handoff" || (frame.event === "assigned" && mine);
        if (wantsMe && !this.isSelfAction(summary.id) && !this.recentlyAlerted(summary.id)) {
          alertAgent(frame.event, summary, () => this.openConversation(summary.id));
        }
        break;
      }
      case "message":
        this.view.addMessage(frame.conversation_id, frame.message);
        break;
      case "typing":
        if (frame.conversation_id === this.view.id) this.view.setTyping(Boolean(frame.typing));
        break;
      case "presence":
        learnAgents(frame.agents);
        this.presence.update(frame.agents);
        break;
      case "ticket":
        this.tickets.upsert(frame.ticket);
        break;
      case "error":
        toast(frame.message || frame.error || "error", "error");
        break;
      default:
        break;
    }
  }
}
