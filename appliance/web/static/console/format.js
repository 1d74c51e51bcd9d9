// How desk data reads to an agent: owners, times, languages, presence.

import { LANG, t } from "./i18n.js";

const LOCALE = LANG === "zh" ? "zh-CN" : "en-GB";
const timeFmt = new Intl.DateTimeFormat(LOCALE, { hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(LOCALE, { month: "short", day: "numeric" });
const fullFmt = new Intl.DateTimeFormat(LOCALE, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
});

/** Today: "14:05"; earlier: "2 Dec" / "12月2日". */
export function shortTime(ms) {
  if (!ms) return "";
  const date = new Date(ms);
  const now = new Date();
  return date.toDateString() === now.toDateString() ? timeFmt.format(date) : dayFmt.format(date);
}

export function fullTime(ms) {
  return ms ? fullFmt.format(new Date(ms)) : t("unknown");
}

export function clockTime(ms) {
  return ms ? timeFmt.format(new Date(ms)) : "";
}

// Account name → display name, learned from the agents list and presence frames.
const agentNames = new Map();

export function learnAgents(users) {
  for (const user of users || []) if (user && user.name) agentNames.set(user.name, user.display_name || user.name);
}

export function displayName(name) {
  const bare = String(name || "").replace(/^agent:/, "");
  return agentNames.get(bare) || bare;
}

/** "bot" | "queue" | "agent:<name>" → what the agent reads. */
export function ownerLabel(summary, me) {
  const owner = summary.owner || "";
  if (owner === "bot") return t("ownerBot");
  if (owner === "queue") return summary.position ? t("ownerQueuePos", { n: summary.position }) : t("ownerQueue");
  if (owner.startsWith("agent:")) {
    const name = owner.slice("agent:".length);
    return name === me ? t("ownerYou") : displayName(name);
  }
  return owner || t("unknown");
}

export function ownerKind(owner) {
  if (owner === "bot" || owner === "queue") return owner;
  return owner && owner.startsWith("agent:") ? "agent" : "other";
}

export function languageLabel(code) {
  if (!code) return t("unknown");
  const key = `lang_${String(code).toLowerCase().slice(0, 2)}`;
  const text = t(key);
  return text === key ? code : text;
}

export function presenceLabel(status) {
  return t(`presence_${status}`);
}

export function roleLabel(role) {
  return t(`role_${role}`);
}
