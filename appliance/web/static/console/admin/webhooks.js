// Webhooks: the receivers of signed events (add, send a test event, remove) and the delivery
// log with every attempt. A new receiver's secret is shown once, right after adding it; the
// server never returns it again.

import { h } from "../dom.js";

export const STRINGS = {
  en: {
    whTitle: "Webhooks",
    whAdd: "Add a webhook",
    whUrl: "Receiver URL",
    whEvents: "Events",
    whSecret: "Secret (empty: generate one)",
    whAddButton: "Add webhook",
    whNewSecret: "New secret",
    whSecretOnce: "Secret of {url} (shown once; store it with the receiver):",
    whReceivers: "Receivers",
    whEmpty: "No webhooks yet.",
    whId: "Id",
    whPending: "Pending",
    whDelivered: "Delivered",
    whFailed: "Failed",
    whActions: "Actions",
    whTest: "Send test",
    whTestOf: "Send a test event to {url}",
    whTestSent: "Test event queued for {url}.",
    whRemove: "Remove",
    whRemoveOf: "Remove {url}",
    whRemoveConfirm: "Remove the webhook {url}? Its pending deliveries stop.",
    whRemoved: "Removed {url}.",
    whError: "Could not do that: {message}",
    whLog: "Delivery log",
    whBacklog: "{n} deliveries pending on this node.",
    whRefresh: "Refresh",
    whCreated: "Created",
    whEvent: "Event",
    whStatus: "Status",
    whAttempts: "Attempts",
    whLastStatus: "Last answer",
    whLastError: "Last error",
    whNext: "Next attempt",
    whLogEmpty: "Nothing delivered yet.",
    "status.pending": "pending",
    "status.delivered": "delivered",
    "status.failed": "failed",
    "status.cancelled": "cancelled",
    "event.message.created": "A message is added",
    "event.conversation.created": "A conversation starts",
    "event.conversation.status_changed": "Status changes (handoff, closed, reopened)",
    "event.conversation.assigned": "Assigned to an agent",
    "event.csat.submitted": "Satisfaction rating",
  },
  zh: {
    whTitle: "Webhook",
    whAdd: "添加 Webhook",
    whUrl: "接收地址",
    whEvents: "事件",
    whSecret: "密钥（留空则自动生成）",
    whAddButton: "添加 Webhook",
    whNewSecret: "新密钥",
    whSecretOnce: "{url} 的密钥（只显示这一次，请保存到接收方）：",
    whReceivers: "接收方",
    whEmpty: "还没有 Webhook。",
    whId: "编号",
    whPending: "待发送",
    whDelivered: "已送达",
    whFailed: "失败",
    whActions: "操作",
    whTest: "发送测试",
    whTestOf: "向 {url} 发送测试事件",
    whTestSent: "已为 {url} 排队一条测试事件。",
    whRemove: "删除",
    whRemoveOf: "删除 {url}",
    whRemoveConfirm: "删除 Webhook {url}？尚未发送的投递将停止。",
    whRemoved: "已删除 {url}。",
    whError: "操作失败：{message}",
    whLog: "投递记录",
    whBacklog: "本节点有 {n} 条投递待发送。",
    whRefresh: "刷新",
    whCreated: "创建时间",
    whEvent: "事件",
    whStatus: "状态",
    whAttempts: "尝试次数",
    whLastStatus: "最近应答",
    whLastError: "最近错误",
    whNext: "下次尝试",
    whLogEmpty: "还没有投递。",
    "status.pending": "待发送",
    "status.delivered": "已送达",
    "status.failed": "失败",
    "status.cancelled": "已取消",
    "event.message.created": "新增消息",
    "event.conversation.created": "会话开始",
    "event.conversation.status_changed": "状态变化（转人工、关闭、重新打开）",
    "event.conversation.assigned": "分配给客服",
    "event.csat.submitted": "满意度评价",
  },
};

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

export async function render(root, { api, t }) {
  const notice = h("p", { role: "status" });
  const url = h("input", { id: "wh-url", type: "url", required: true, placeholder: "https://", size: "48" });
  const secret = h("input", { id: "wh-secret", type: "text", autocomplete: "off", size: "32" });
  const boxes = h("fieldset", { class: "form-row" }, h("legend", {}, t("whEvents")));
  const secretShown = h("div", { class: "card", hidden: true, role: "region", "aria-label": t("whNewSecret") });
  const receivers = h("tbody");
  const log = h("tbody");
  const backlog = h("p");

  function fail(err) {
    notice.className = "danger-text";
    notice.textContent = t("whError", { message: err.message });
  }

  function say(text) {
    notice.className = "ok-text";
    notice.textContent = text;
  }

  async function load() {
    const [list, deliveries] = await Promise.all([
      api.get("/api/v1/admin/webhooks"), api.get("/api/v1/admin/webhooks/deliveries?limit=100")]);
    if (!boxes.querySelector("input")) {
      boxes.append(...list.events.map((name) => h("label", { style: "display: flex; gap: 4px; align-items: center" },
        h("input", { type: "checkbox", name: "wh-event", value: name, checked: true }), ` ${t(`event.${name}`)}`,
        h("code", {}, ` ${name}`))));
    }
    backlog.textContent = t("whBacklog", { n: list.backlog });
    receivers.replaceChildren(...list.webhooks.map((w) => h("tr", {},
      h("td", {}, w.url), h("td", {}, w.events.join(", ")), h("td", { class: "num" }, String(w.pending)),
      h("td", { class: "num" }, String(w.delivered)), h("td", { class: "num" }, String(w.failed)),
      h("td", {}, h("code", {}, w.id)),
      h("td", {},
        h("button", { type: "button", "aria-label": t("whTestOf", { url: w.url }), onclick: () => test(w) },
          t("whTest")), " ",
        h("button", { type: "button", "aria-label": t("whRemoveOf", { url: w.url }), onclick: () => remove(w) },
          t("whRemove"))))));
    if (!list.webhooks.length) receivers.appendChild(h("tr", {}, h("td", { colspan: "7" }, t("whEmpty"))));
    log.replaceChildren(...deliveries.deliveries.map((d) => h("tr", {},
      h("td", {}, when(d.created_at)), h("td", {}, d.event), h("td", {}, d.url),
      h("td", { class: d.status === "failed" ? "danger-text" : d.status === "delivered" ? "ok-text" : "" },
        t(`status.${d.status}`)),
      h("td", { class: "num" }, String(d.attempts)), h("td", { class: "num" }, d.last_status ? String(d.last_status) : ""),
      h("td", {}, d.last_error), h("td", {}, when(d.next_attempt_at)))));
    if (!deliveries.deliveries.length) log.appendChild(h("tr", {}, h("td", { colspan: "8" }, t("whLogEmpty"))));
  }

  async function add(event) {
    event.preventDefault();
    const events = [...boxes.querySelectorAll("input:checked")].map((box) => box.value);
    try {
      const made = await api.post("/api/v1/admin/webhooks", { url: url.value, events, secret: secret.value });
      secretShown.replaceChildren(h("p", {}, t("whSecretOnce", { url: made.webhook.url })),
        h("code", { "aria-label": t("whSecret") }, made.secret));
      secretShown.hidden = false;
      url.value = "";
      secret.value = "";
      notice.textContent = "";
      await load();
    } catch (err) {
      fail(err);
    }
  }

  async function test(w) {
    try {
      await api.post(`/api/v1/admin/webhooks/${encodeURIComponent(w.id)}/test`);
      say(t("whTestSent", { url: w.url }));
      await load();
    } catch (err) {
      fail(err);
    }
  }

  async function remove(w) {
    if (!window.confirm(t("whRemoveConfirm", { url: w.url }))) return;
    try {
      await api.del(`/api/v1/admin/webhooks/${encodeURIComponent(w.id)}`);
      secretShown.hidden = true;
      say(t("whRemoved", { url: w.url }));
      await load();
    } catch (err) {
      fail(err);
    }
  }

  const head = (...keys) => h("thead", {}, h("tr", {}, ...keys.map((k) => h("th", { scope: "col" }, t(k)))));
  const refresh = h("button", { type: "button", onclick: () => load().catch(fail) }, t("whRefresh"));
  root.append(
    h("h2", {}, t("whTitle")),
    h("form", { class: "card", "aria-label": t("whAdd"), onsubmit: add },
      h("h3", {}, t("whAdd")),
      h("div", { class: "form-row" }, h("label", { for: "wh-url" }, t("whUrl"), url),
        h("label", { for: "wh-secret" }, t("whSecret"), secret)),
      boxes,
      h("button", { type: "submit" }, t("whAddButton"))),
    notice,
    secretShown,
    h("table", { class: "grid", "aria-label": t("whReceivers") },
      head("whUrl", "whEvents", "whPending", "whDelivered", "whFailed", "whId", "whActions"), receivers),
    h("div", { class: "form-row" }, h("h3", {}, t("whLog")), refresh),
    backlog,
    h("table", { class: "grid", "aria-label": t("whLog") },
      head("whCreated", "whEvent", "whUrl", "whStatus", "whAttempts", "whLastStatus", "whLastError", "whNext"), log),
  );
  await load();
  const timer = setInterval(() => load().catch(() => {}), 3000);
  return () => clearInterval(timer);
}
