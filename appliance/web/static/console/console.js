// Entry point of the agent console: page strings, "who am I", the sign-in form.

import { LANG, t } from "./i18n.js";
import { byId } from "./dom.js";
import { DeskApi } from "./api.js";
import { Desk } from "./desk.js";
import { setBaseTitle, unlockAudio } from "./alerts.js";
import { watchSites } from "./sites.js";
import { Sections } from "./admin/shell.js";

const api = new DeskApi();
let desk = null;

/** Fill `data-i18n` (text), `data-i18n-label` (aria-label) and `data-i18n-placeholder`. */
function applyStrings() {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  }
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder));
  }
  setBaseTitle(t("title"));
}

function showSignIn(message = "") {
  byId("app").hidden = true;
  byId("signin").hidden = false;
  const error = byId("signin-error");
  error.textContent = message;
  error.hidden = !message;
  byId("signin-username").focus();
}

function startDesk(user) {
  if (desk) {
    // Signed in again after the session ended: start from a clean page.
    location.reload();
    return;
  }
  byId("signin").hidden = true;
  byId("app").hidden = false;
  desk = new Desk({ api, user, onUnauthorized: sessionEnded });
  desk.start();
  new Sections({ api, user }).start();
  if (user.role === "admin") watchSites(api);
}

function sessionEnded() {
  if (desk) desk.socket.stop();
  showSignIn(t("sessionExpired"));
}

function loginError(err) {
  if (err.status === 429) {
    const minutes = Math.ceil((err.retryAfterS || 0) / 60);
    return minutes > 0 ? t("lockedOut", { minutes }) : t("lockedOutSoon");
  }
  if (err.status === 401) {
    return /disabled/i.test(err.message || "") ? t("accountDisabled") : t("wrongPassword");
  }
  if (err.status === 0) return t("networkError");
  return t("errorGeneric", { message: err.message });
}

function setupSignIn() {
  const form = byId("signin-form");
  const button = byId("signin-submit");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    unlockAudio();
    const username = byId("signin-username").value.trim();
    const password = byId("signin-password").value;
    if (!username || !password) {
      showSignIn(t("wrongPassword"));
      return;
    }
    button.disabled = true;
    button.textContent = t("signingIn");
    try {
      const data = await api.login(username, password);
      api.csrf = data.csrf_token || "";
      byId("signin-password").value = "";
      startDesk(data.user);
    } catch (err) {
      showSignIn(loginError(err));
      byId("signin-password").select();
    } finally {
      button.disabled = false;
      button.textContent = t("signIn");
    }
  });
}

async function boot() {
  applyStrings();
  setupSignIn();
  api.onUnauthorized = () => sessionEnded();
  try {
    const data = await api.me();
    api.csrf = data.csrf_token || "";
    startDesk(data.user);
  } catch (err) {
    showSignIn(err.status === 401 ? "" : loginError(err));
  }
}

boot();
