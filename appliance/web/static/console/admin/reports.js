// Reports: how the desk and the bot did per day over a date range (the desk's time zone),
// drawn from the appliance's own conversations and decision traces; the same figures as CSV.

import { h } from "../dom.js";
import { barChart } from "./chart.js";

export const STRINGS = {
  en: {
    repTitle: "Reports",
    repRange: "Date range",
    repFrom: "From",
    repTo: "To",
    repShow: "Show",
    repCsv: "Download CSV",
    repZone: "Days in the desk's time zone ({zone}).",
    repSummary: "Summary",
    repConversations: "Conversations per day",
    repBotResolved: "Bot-resolved rate",
    repHandoff: "Handoff rate",
    repFirstResponse: "First response time (median)",
    repResolution: "Resolution time (median)",
    repCsat: "Satisfaction (CSAT, ratings of 4–5)",
    repLatency: "Turn latency p99",
    repFallback: "Fallback rate",
    repNone: "—",
    repError: "Could not load the report: {message}",
    repTotConversations: "Conversations",
    repTotBot: "Bot-resolved",
    repTotHandoff: "Handoff rate",
    repTotFirst: "First response (median)",
    repTotResolution: "Resolution (median)",
    repTotCsat: "CSAT",
    repTotRatings: "{n} ratings, average {avg}",
    repTotLatency: "Turn latency p99",
    repTotTurns: "{n} bot turns, p50 {p50}",
    repTotFallback: "Fallback rate",
  },
  zh: {
    repTitle: "报表",
    repRange: "日期范围",
    repFrom: "开始日期",
    repTo: "结束日期",
    repShow: "查看",
    repCsv: "下载 CSV",
    repZone: "按客服台时区（{zone}）计日。",
    repSummary: "汇总",
    repConversations: "每日会话数",
    repBotResolved: "机器人解决率",
    repHandoff: "转人工率",
    repFirstResponse: "首次响应时长（中位数）",
    repResolution: "解决时长（中位数）",
    repCsat: "满意度（CSAT，4–5 分占比）",
    repLatency: "单轮延迟 p99",
    repFallback: "降级率",
    repNone: "—",
    repError: "无法加载报表：{message}",
    repTotConversations: "会话",
    repTotBot: "机器人解决",
    repTotHandoff: "转人工率",
    repTotFirst: "首次响应（中位数）",
    repTotResolution: "解决时长（中位数）",
    repTotCsat: "满意度",
    repTotRatings: "{n} 条评价，平均 {avg} 分",
    repTotLatency: "单轮延迟 p99",
    repTotTurns: "{n} 轮机器人回复，p50 {p50}",
    repTotFallback: "降级率",
  },
};

const DAY_MS = 86_400_000;

function isoDay(date) {
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 10);
}

const percent = (v) => (v === null || v === undefined ? "—" : `${Math.round(v * 1000) / 10}%`);

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 10) return `${Math.round(seconds * 10) / 10} s`;
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 6) / 10} min`;
  return `${Math.round(seconds / 360) / 10} h`;
}

const ms = (v) => (v === null || v === undefined ? "—" : `${Math.round(v)} ms`);

export async function render(root, { api, t }) {
  const today = new Date();
  const from = h("input", { id: "rep-from", type: "date", value: isoDay(new Date(today.getTime() - 13 * DAY_MS)) });
  const to = h("input", { id: "rep-to", type: "date", value: isoDay(today) });
  const csv = h("a", { class: "button-link", download: "" }, t("repCsv"));
  const zone = h("p", { class: "muted" });
  const error = h("p", { class: "danger-text", role: "alert", hidden: true });
  const summary = h("dl", { class: "report-summary", "aria-label": t("repSummary") });
  const charts = h("div", { class: "report-charts" });

  function query(extra = {}) {
    const params = new URLSearchParams({ since: from.value, until: to.value, ...extra });
    return `/api/v1/admin/reports?${params}`;
  }

  function card(label, value, note) {
    return h("div", { class: "report-figure" }, h("dt", {}, label), h("dd", {}, h("strong", {}, value),
      note ? h("span", { class: "muted" }, note) : null));
  }

  async function load(event) {
    if (event) event.preventDefault();
    error.hidden = true;
    let data;
    try {
      data = await api.get(query());
    } catch (err) {
      error.textContent = t("repError", { message: err.message });
      error.hidden = false;
      return;
    }
    csv.href = query({ format: "csv" });
    zone.textContent = t("repZone", { zone: data.timezone });
    const all = data.totals;
    summary.replaceChildren(
      card(t("repTotConversations"), String(all.conversations)),
      card(t("repTotBot"), percent(all.bot_resolved_rate), String(all.bot_resolved)),
      card(t("repTotHandoff"), percent(all.handoff_rate), String(all.handed_off)),
      card(t("repTotFirst"), duration(all.first_response_s_median)),
      card(t("repTotResolution"), duration(all.resolution_s_median)),
      card(t("repTotCsat"), percent(all.csat),
        t("repTotRatings", { n: all.ratings, avg: all.rating_avg === null ? "—" : all.rating_avg })),
      card(t("repTotLatency"), ms(all.turn_p99_ms), t("repTotTurns", { n: all.turns, p50: ms(all.turn_p50_ms) })),
      card(t("repTotFallback"), percent(all.fallback_rate), String(all.fallbacks)),
    );
    // One bar per day in every chart, so the days line up from chart to chart; a day with
    // nothing to measure (no conversation, no rating, no turn) is an empty slot.
    const days = data.days;
    const bars = (field, scale = 1) => days.map((d) => ({ label: d.date.slice(5), value: (d[field] || 0) * scale }));
    const pct = (v) => `${Math.round(v * 10) / 10}%`;
    charts.replaceChildren(
      barChart({ title: t("repConversations"), bars: bars("conversations") }),
      barChart({ title: t("repBotResolved"), bars: bars("bot_resolved_rate", 100), format: pct }),
      barChart({ title: t("repHandoff"), bars: bars("handoff_rate", 100), format: pct }),
      barChart({ title: t("repFirstResponse"), bars: bars("first_response_s_median"), format: duration }),
      barChart({ title: t("repResolution"), bars: bars("resolution_s_median"), format: duration }),
      barChart({ title: t("repCsat"), bars: bars("csat", 100), format: pct }),
      barChart({ title: t("repLatency"), bars: bars("turn_p99_ms"), format: ms }),
      barChart({ title: t("repFallback"), bars: bars("fallback_rate", 100), format: pct }),
    );
  }

  root.append(
    h("h2", {}, t("repTitle")),
    h("form", { class: "card form-row", "aria-label": t("repRange"), onsubmit: load },
      h("label", { for: "rep-from" }, t("repFrom"), " ", from),
      h("label", { for: "rep-to" }, t("repTo"), " ", to),
      h("button", { type: "submit" }, t("repShow")), csv),
    zone, error, summary, charts,
  );
  await load();
}
