// The agent's own presence: the "Status" combobox and activity frames.
// Activity (keys, pointer) is reported at most every 30 s; the server marks an idle agent away.

import { t } from "./i18n.js";
import { toastError } from "./toast.js";

const ACTIVITY_EVERY_MS = 30000;
const STATUSES = ["online", "away", "offline"];

export class Presence {
  constructor({ api, socket, select, me, onUser }) {
    this.api = api;
    this.socket = socket;
    this.select = select;
    this.me = me;
    this.onUser = onUser;
    this.lastActivity = 0;
    select.replaceChildren();
    for (const status of STATUSES) {
      const option = document.createElement("option");
      option.value = status;
      option.textContent = t(`presence_${status}`);
      select.appendChild(option);
    }
    this.show(me.presence || "online");
    select.addEventListener("change", () => this.change(select.value));
    const activity = () => this.activity();
    for (const name of ["keydown", "mousemove", "pointerdown", "wheel"]) {
      window.addEventListener(name, activity, { passive: true });
    }
  }

  show(status) {
    if (STATUSES.includes(status)) this.select.value = status;
    this.select.dataset.status = this.select.value;
  }

  async change(status) {
    try {
      const user = await this.api.presence(status);
      if (user) {
        this.show(user.presence || status);
        this.onUser(user);
      }
    } catch (err) {
      toastError(err);
      this.show(this.me.presence);
    }
  }

  activity() {
    const now = Date.now();
    if (now - this.lastActivity < ACTIVITY_EVERY_MS) return;
    if (this.socket.send({ type: "activity" })) this.lastActivity = now;
  }

  /** Socket `presence` frame: the agents list may say the server marked us away. */
  update(agents) {
    const mine = (agents || []).find((a) => a.name === this.me.name);
    if (mine) {
      this.me.presence = mine.presence;
      this.show(mine.presence);
    }
  }

  /** Send the first activity frame right after (re)connecting. */
  reset() {
    this.lastActivity = 0;
  }
}
