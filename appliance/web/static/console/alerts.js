// Getting an agent's attention: desktop notification, a short beep, a flashing title.

import { t } from "./i18n.js";

let audio = null;
let flashTimer = 0;
let flashStopAt = 0;
let baseTitle = document.title;

/** Create/resume the AudioContext inside a user gesture so later beeps are allowed. */
export function unlockAudio() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  try {
    if (!audio) audio = new Ctx();
    if (audio.state === "suspended") audio.resume().catch(() => {});
  } catch {
    audio = null;
  }
}

export function beep() {
  unlockAudio();
  if (!audio) return;
  try {
    const start = audio.currentTime + 0.01;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.setValueAtTime(880, start);
    osc.frequency.setValueAtTime(1175, start + 0.12);
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(0.2, start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.28);
    osc.connect(gain).connect(audio.destination);
    osc.start(start);
    osc.stop(start + 0.3);
  } catch {
    // No audio device: the notification and the title still tell the agent.
  }
}

export function notificationsAvailable() {
  return "Notification" in window;
}

export function needsPermission() {
  return notificationsAvailable() && Notification.permission === "default";
}

export async function askPermission() {
  if (!notificationsAvailable()) return "denied";
  try {
    return await Notification.requestPermission();
  } catch {
    return Notification.permission;
  }
}

function desktopNotice(title, body, tag, onClick) {
  if (!notificationsAvailable() || Notification.permission !== "granted") return;
  try {
    const notice = new Notification(title, { body, tag, lang: document.documentElement.lang });
    notice.onclick = () => {
      window.focus();
      notice.close();
      onClick();
    };
  } catch {
    // Some browsers only allow notifications from a service worker; the beep is enough.
  }
}

export function setBaseTitle(title) {
  baseTitle = title;
  if (!flashTimer) document.title = title;
}

function stopFlash() {
  clearInterval(flashTimer);
  flashTimer = 0;
  document.title = baseTitle;
}

/** Alternate the tab title until the agent looks (or for ~10 s while already looking). */
export function flashTitle() {
  flashStopAt = Date.now() + 10000;
  if (flashTimer) return;
  let on = false;
  flashTimer = setInterval(() => {
    const looking = document.visibilityState === "visible" && document.hasFocus();
    if (looking && Date.now() > flashStopAt) {
      stopFlash();
      return;
    }
    on = !on;
    document.title = on ? `● ${t("titleFlash")}` : baseTitle;
  }, 1000);
}

window.addEventListener("focus", () => {
  if (flashTimer) flashStopAt = Math.min(flashStopAt, Date.now() + 3000);
});

/** A conversation needs a human: `kind` is "handoff" or "assigned". */
export function alertAgent(kind, summary, onClick) {
  const title = kind === "assigned" ? t("notifAssigned") : t("notifHandoff");
  const body = [summary.visitor_name, summary.subject].filter(Boolean).join(" — ");
  desktopNotice(title, body, `conversation-${summary.id}`, onClick);
  beep();
  flashTitle();
}
