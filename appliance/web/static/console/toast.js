// One line at the bottom of the screen for action results and errors.

import { t } from "./i18n.js";

let timer = 0;

export function toast(message, kind = "info") {
  const node = document.getElementById("toast");
  if (!node) return;
  node.textContent = message;
  node.className = `toast toast-${kind} toast-shown`;
  clearTimeout(timer);
  timer = setTimeout(() => {
    node.className = "toast";
    node.textContent = "";
  }, kind === "error" ? 8000 : 3500);
}

/** Show an ApiError (or anything thrown) as an error line in the page language. */
export function toastError(err) {
  if (err && err.status === 0) toast(t("networkError"), "error");
  else toast(t("errorGeneric", { message: (err && err.message) || String(err) }), "error");
}
