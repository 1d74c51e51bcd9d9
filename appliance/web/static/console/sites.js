// The administrator's view of replication: one chip per paired site in the top bar (in sync,
// events still to send, or not connected), from GET /api/v1/admin/sync every few seconds.

import { t } from "./i18n.js";
import { byId } from "./dom.js";

const POLL_MS = 5000;

export function watchSites(api) {
  const box = byId("sites");
  async function refresh() {
    let status;
    try {
      status = await api.get("/api/v1/admin/sync");
    } catch {
      return; // the session ended or the server restarts: the next poll tries again
    }
    const peers = (status && status.peers) || [];
    box.hidden = peers.length === 0;
    box.replaceChildren(...peers.map(chip));
  }
  refresh();
  return setInterval(refresh, POLL_MS);
}

function chip(peer) {
  const node = document.createElement("span");
  node.className = "site";
  let state = "ok";
  let text = t("siteInSync");
  if (!peer.connected) {
    state = "down";
    text = t("siteDown");
  } else if (peer.backlog) {
    state = "behind";
    text = t("siteBehind", { n: peer.backlog });
  }
  node.dataset.state = state;
  node.textContent = `${peer.name || peer.node_id.slice(0, 12)} · ${text}`;
  const details = [peer.address || t("siteDialsUs")];
  if (peer.last_error && !peer.connected) details.push(t("siteLastError", { error: peer.last_error }));
  if (peer.notice) details.push(peer.notice);
  node.title = details.join("\n");
  return node;
}
