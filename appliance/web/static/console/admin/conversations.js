// Conversations: full-text search over every message (English and Chinese) with filters, each
// conversation opened with its messages and decision traces, and the selection exported.

import { h } from "../dom.js";
import { renderTrace } from "../trace.js";

const SOURCES = ["llm", "local_model", "knowledge_qa", "extractive", "rule", "intent", "handoff", "leave_message",
  "agent", "no_answer"];

export const STRINGS = {
  en: {
    convTitle: "Conversations",
    convFilters: "Search conversations",
    convQuery: "Text",
    convQueryHint: "words in any message, English or Chinese",
    convFrom: "Started from",
    convTo: "to",
    convAgent: "Agent",
    convSource: "Reply source",
    convResolved: "Resolved",
    convAny: "Any",
    convYes: "Resolved",
    convNo: "Open",
    convSearch: "Search",
    convExportCsv: "Export CSV",
    convExportJsonl: "Export JSON lines",
    convFound: "Conversations found: {n}",
    convResults: "Results",
    convStarted: "Started",
    convSubject: "Conversation",
    convStatus: "Status",
    convOwner: "With",
    convMessages: "Messages",
    convMatches: "Matching messages",
    convOpen: "Open",
    convOpenOf: "Open the conversation {subject}",
    convNone: "No conversation matches.",
    convMore: "More",
    convDetail: "Conversation {id}",
    convTraceJson: "Trace as JSON",
    convClose: "Close",
    convError: "Search failed: {message}",
    "status.open": "Open",
    "status.closed": "Resolved",
    "role.visitor": "Visitor",
    "role.bot": "Bot",
    "role.agent": "Agent",
    "role.system": "System",
    "role.note": "Note",
  },
  zh: {
    convTitle: "会话检索",
    convFilters: "检索会话",
    convQuery: "关键词",
    convQueryHint: "任意消息中的词语，中英文均可",
    convFrom: "开始日期",
    convTo: "至",
    convAgent: "客服",
    convSource: "回复来源",
    convResolved: "是否已解决",
    convAny: "全部",
    convYes: "已解决",
    convNo: "进行中",
    convSearch: "检索",
    convExportCsv: "导出 CSV",
    convExportJsonl: "导出 JSON Lines",
    convFound: "找到 {n} 个会话",
    convResults: "检索结果",
    convStarted: "开始时间",
    convSubject: "会话",
    convStatus: "状态",
    convOwner: "处理方",
    convMessages: "消息数",
    convMatches: "匹配的消息",
    convOpen: "查看",
    convOpenOf: "查看会话 {subject}",
    convNone: "没有匹配的会话。",
    convMore: "更多",
    convDetail: "会话 {id}",
    convTraceJson: "决策轨迹 JSON",
    convClose: "关闭",
    convError: "检索失败：{message}",
    "status.open": "进行中",
    "status.closed": "已解决",
    "role.visitor": "访客",
    "role.bot": "机器人",
    "role.agent": "客服",
    "role.system": "系统",
    "role.note": "备注",
  },
};

const when = (ms) => new Date(ms).toLocaleString();

export async function render(root, { api, t }) {
  const q = h("input", { id: "conv-q", type: "search", size: "32", placeholder: t("convQueryHint") });
  const from = h("input", { id: "conv-from", type: "date" });
  const to = h("input", { id: "conv-to", type: "date" });
  const agent = h("input", { id: "conv-agent", type: "text", size: "12" });
  const source = h("select", { id: "conv-source" }, h("option", { value: "" }, t("convAny")),
    ...SOURCES.map((s) => h("option", { value: s }, s)));
  const resolved = h("select", { id: "conv-resolved" }, h("option", { value: "" }, t("convAny")),
    h("option", { value: "true" }, t("convYes")), h("option", { value: "false" }, t("convNo")));
  const csv = h("a", { class: "button-link", download: "" }, t("convExportCsv"));
  const jsonl = h("a", { class: "button-link", download: "" }, t("convExportJsonl"));
  const count = h("p", { role: "status" });
  const body = h("tbody");
  const more = h("button", { type: "button", hidden: true }, t("convMore"));
  const detail = h("section", { class: "card conv-detail", hidden: true });
  let next = null;

  function filters() {
    const params = new URLSearchParams();
    for (const [name, field] of [["q", q], ["since", from], ["until", to], ["agent", agent], ["source", source],
      ["resolved", resolved]]) {
      if (field.value.trim()) params.set(name, field.value.trim());
    }
    return params;
  }

  function exportLink(format) {
    const params = filters();
    params.set("format", format);
    return `/api/v1/admin/conversations/export?${params}`;
  }

  async function open(c) {
    const data = await api.get(`/api/v1/desk/conversations/${encodeURIComponent(c.id)}`);
    const list = h("ol", { class: "conv-messages" }, ...data.messages.map((m) => h("li", { class: `conv-msg conv-msg--${m.role}` },
      h("div", { class: "muted" }, `${t(`role.${m.role}`)}${m.author ? ` · ${m.author}` : ""}`,
        m.source && m.role === "bot" ? ` · ${m.source}` : "", ` · ${when(m.created_ms)}`),
      h("p", { class: "conv-text" }, m.text),
      m.trace_id ? [renderTrace(data.traces[m.trace_id]), h("a", {
        href: `/api/v1/admin/traces/${encodeURIComponent(m.trace_id)}`, target: "_blank", rel: "noopener",
      }, t("convTraceJson"))] : null)));
    const heading = t("convDetail", { id: c.id });
    detail.setAttribute("aria-label", heading);
    detail.replaceChildren(h("h3", {}, heading, " ", h("span", { class: "muted" }, c.subject)),
      h("button", { type: "button", onclick: () => { detail.hidden = true; } }, t("convClose")), list);
    detail.hidden = false;
    detail.scrollIntoView({ block: "nearest" });
  }

  function row(c) {
    const subject = c.subject || c.id;
    return h("tr", {},
      h("td", {}, when(c.started_ms)),
      h("td", {}, h("strong", {}, subject), c.visitor_name ? h("div", { class: "muted" }, c.visitor_name) : null),
      h("td", {}, t(`status.${c.status}`) || c.status, c.rating ? ` · ★${c.rating}` : ""),
      h("td", {}, c.owner.startsWith("agent:") ? c.owner.slice(6) : c.assignee || c.owner),
      h("td", { class: "num" }, String(c.messages)),
      h("td", {}, ...c.hits.map((m) => h("p", { class: "conv-hit" }, h("span", { class: "muted" },
        `${t(`role.${m.role}`)}: `), m.text))),
      h("td", {}, h("button", { type: "button", "aria-label": t("convOpenOf", { subject }), onclick: () => open(c)
        .catch((err) => { count.textContent = t("convError", { message: err.message }); }) }, t("convOpen"))));
  }

  async function search(event, append = false) {
    if (event) event.preventDefault();
    const params = filters();
    if (append && next !== null) params.set("before", String(next));
    csv.href = exportLink("csv");
    jsonl.href = exportLink("jsonl");
    try {
      const data = await api.get(`/api/v1/admin/conversations?${params}`);
      count.className = "";
      count.textContent = t("convFound", { n: data.total });
      if (!append) body.replaceChildren();
      body.append(...data.conversations.map(row));
      if (!body.children.length) body.appendChild(h("tr", {}, h("td", { colspan: "7" }, t("convNone"))));
      next = data.next;
      more.hidden = next === null;
    } catch (err) {
      count.className = "danger-text";
      count.textContent = t("convError", { message: err.message });
    }
  }

  more.addEventListener("click", () => search(null, true));
  const head = ["convStarted", "convSubject", "convStatus", "convOwner", "convMessages", "convMatches", "convOpen"];
  root.append(
    h("h2", {}, t("convTitle")),
    h("form", { class: "card", role: "search", "aria-label": t("convFilters"), onsubmit: search },
      h("div", { class: "form-row" },
        h("label", { for: "conv-q" }, t("convQuery"), " ", q),
        h("label", { for: "conv-from" }, t("convFrom"), " ", from),
        h("label", { for: "conv-to" }, t("convTo"), " ", to)),
      h("div", { class: "form-row" },
        h("label", { for: "conv-agent" }, t("convAgent"), " ", agent),
        h("label", { for: "conv-source" }, t("convSource"), " ", source),
        h("label", { for: "conv-resolved" }, t("convResolved"), " ", resolved),
        h("button", { type: "submit" }, t("convSearch")), csv, jsonl)),
    count,
    h("table", { class: "grid", "aria-label": t("convResults") },
      h("thead", {}, h("tr", {}, ...head.map((k) => h("th", { scope: "col" }, t(k))))), body),
    more, detail,
  );
  await search();
}
