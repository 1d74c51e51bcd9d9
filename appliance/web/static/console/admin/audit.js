// Audit log: every admin action, newest first, and the result of the hash-chain check
// (the same as `appliance audit verify`).

import { h } from "../dom.js";

export const STRINGS = {
  en: {
    auditTitle: "Audit log",
    auditChain: "Hash chain",
    auditOk: "Chain intact: {n} records checked.",
    auditBroken: "Chain broken at {origin} #{seq}: {reason}",
    auditVerify: "Check again",
    auditWhen: "When",
    auditActor: "Who",
    auditAction: "Action",
    auditTarget: "Target",
    auditDetail: "Detail",
    auditIp: "Address",
    auditRecords: "Records",
    auditEmpty: "No audit records yet.",
    auditShow: "Show",
  },
  zh: {
    auditTitle: "审计日志",
    auditChain: "哈希链",
    auditOk: "哈希链完整：已校验 {n} 条记录。",
    auditBroken: "哈希链在 {origin} #{seq} 处断开：{reason}",
    auditVerify: "重新校验",
    auditWhen: "时间",
    auditActor: "操作人",
    auditAction: "操作",
    auditTarget: "对象",
    auditDetail: "详情",
    auditIp: "地址",
    auditRecords: "记录",
    auditEmpty: "还没有审计记录。",
    auditShow: "显示条数",
  },
};

export async function render(root, { api, t }) {
  const chain = h("p", { role: "status" }, t("loading"));
  const verify = h("button", { type: "button" }, t("auditVerify"));
  const limit = h("select", { id: "audit-limit" },
    ...[100, 500, 1000].map((n) => h("option", { value: String(n) }, String(n))));
  const body = h("tbody");
  const table = h("table", { class: "grid", "aria-label": t("auditRecords") },
    h("thead", {}, h("tr", {}, ...["auditWhen", "auditActor", "auditAction", "auditTarget", "auditDetail",
      "auditIp"].map((k) => h("th", { scope: "col" }, t(k))))), body);

  async function check() {
    verify.disabled = true;
    try {
      const v = await api.get("/api/v1/admin/audit/verify");
      chain.className = v.ok ? "ok-text" : "danger-text";
      chain.textContent = v.ok ? t("auditOk", { n: v.records })
        : t("auditBroken", { origin: v.first ? v.first.origin.slice(0, 12) : "?", seq: v.first ? v.first.seq : "?",
          reason: v.first ? v.first.reason : v.problems.join("; ") });
    } finally {
      verify.disabled = false;
    }
  }

  async function load() {
    const data = await api.get(`/api/v1/admin/audit?limit=${limit.value}`);
    body.replaceChildren(...data.records.map((r) => h("tr", {},
      h("td", {}, new Date(r.at_ms).toLocaleString()), h("td", {}, r.actor), h("td", {}, r.action),
      h("td", {}, r.target), h("td", {}, r.detail), h("td", {}, r.ip))));
    if (!data.records.length) body.appendChild(h("tr", {}, h("td", { colspan: "6" }, t("auditEmpty"))));
  }

  verify.addEventListener("click", check);
  limit.addEventListener("change", load);
  root.append(
    h("h2", {}, t("auditTitle")),
    h("div", { class: "card" }, h("h3", {}, t("auditChain")), chain, verify),
    h("div", { class: "form-row" }, h("label", { for: "audit-limit" }, t("auditShow")), limit),
    table,
  );
  await Promise.all([check(), load()]);
}
