// The console's sections: the desk (the default) and the administration pages, one ES module
// each under admin/, loaded when first opened. The address says which section is open
// (`#/kb`, `#/reports`, ...), so a section can be bookmarked and the browser's back button works.
//
// A page module exports `STRINGS` ({en: {...}, zh: {...}}, its own catalogue) and
// `async function render(root, ctx)`, where `root` is an empty element to fill and `ctx` is
// {api, user, t} (`t` reads the page's catalogue, then the console's). `render` may return a
// function, called when the admin leaves the page (to stop a timer or a poll).

import { LANG, t as consoleT } from "../i18n.js";
import { byId, fill, h } from "../dom.js";

/** The sections, in the order of the navigation; `roles` who may open them. */
export const SECTIONS = [
  { id: "", label: "navDesk", roles: ["agent", "supervisor", "admin"] },
  { id: "kb", label: "navKnowledge", roles: ["admin"] },
  { id: "intents", label: "navIntents", roles: ["admin"] },
  { id: "models", label: "navModels", roles: ["admin"] },
  { id: "users", label: "navUsers", roles: ["admin"] },
  { id: "webhooks", label: "navWebhooks", roles: ["admin"] },
  { id: "settings", label: "navSettings", roles: ["admin"] },
  { id: "reports", label: "navReports", roles: ["supervisor", "admin"] },
  { id: "conversations", label: "navConversations", roles: ["supervisor", "admin"] },
  { id: "audit", label: "navAudit", roles: ["admin"] },
];

/** A `t` that reads `strings` (a page's catalogue) first, then the console's. */
export function catalogue(strings) {
  return (key, vars = {}) => {
    const table = strings[LANG] || {};
    if (!(key in table) && !(key in (strings.en || {}))) return consoleT(key, vars);
    let text = key in table ? table[key] : strings.en[key];
    for (const [name, value] of Object.entries(vars)) text = text.split(`{${name}}`).join(String(value));
    return text;
  };
}

export class Sections {
  constructor({ api, user }) {
    this.api = api;
    this.user = user;
    this.allowed = SECTIONS.filter((s) => s.roles.includes(user.role));
    this.leave = null;
    this.shown = null;
  }

  start() {
    const nav = byId("sections");
    byId("app").dataset.section = "desk";
    if (this.allowed.length < 2) return; // an agent has only the desk: no navigation
    fill(nav, ...this.allowed.map((s) => h("a", { href: `#/${s.id}`, "data-section": s.id }, consoleT(s.label))));
    nav.hidden = false;
    window.addEventListener("hashchange", () => this.show());
    this.show();
  }

  current() {
    const id = location.hash.replace(/^#\/?/, "").split(/[/?]/)[0];
    return this.allowed.some((s) => s.id === id) ? id : "";
  }

  async show() {
    const id = this.current();
    if (id === this.shown) return;
    this.shown = id;
    if (this.leave) {
      this.leave();
      this.leave = null;
    }
    for (const link of byId("sections").querySelectorAll("a")) {
      if (link.dataset.section === id) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const app = byId("app");
    const root = byId("admin");
    app.dataset.section = id || "desk";
    root.hidden = !id;
    if (!id) return;
    const label = consoleT(SECTIONS.find((s) => s.id === id).label);
    fill(root, h("p", { class: "muted" }, consoleT("loading")));
    try {
      const page = await import(`./${id}.js`);
      if (this.shown !== id) return; // the admin moved on while it loaded
      const t = catalogue(page.STRINGS || {});
      const body = h("section", { class: "admin-page", "aria-label": label });
      fill(root, body);
      const leave = await page.render(body, { api: this.api, user: this.user, t });
      if (this.shown === id && typeof leave === "function") this.leave = leave;
      else if (typeof leave === "function") leave();
    } catch (err) {
      fill(root, h("p", { class: "form-error", role: "alert" },
        consoleT("errorGeneric", { message: (err && err.message) || String(err) })));
    }
  }
}
