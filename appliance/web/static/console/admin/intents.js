// Intents and rules: try a sentence (the intent, its confidence, the top three, whether it is in
// scope, the rule that would fire), teach an intent an example or stop teaching one (live at
// once: the answer comes when this node's classifier is retrained), and the intents with their
// examples from the config or the console. Rules are listed read-only: they live in the config.

import { h } from "../dom.js";

export const STRINGS = {
  en: {
    inTitle: "Intents and rules",
    inTry: "Try a sentence",
    inSentence: "Sentence",
    inTryButton: "Try",
    inResult: "Result",
    inPredicted: "Intent",
    inConfidence: "Confidence",
    inScope: "In scope",
    inOutOfScope: "Out of scope: the bot would not act on this intent",
    inInScope: "In scope",
    inWouldDo: "A turn would",
    "do.intent": "act on the intent ({action})",
    "do.rule": "answer with the rule {rule} ({action})",
    "do.none": "go on to the knowledge base and the model",
    inTop: "Top intents",
    inRank: "#",
    inRuleFires: "Rule that fires: {name} ({matches}; {action})",
    inNoRule: "No rule fires.",
    inNoModel: "No intent has an example yet: every sentence is out of scope.",
    inAdd: "Add an example",
    inIntent: "Intent",
    inExample: "Example sentence",
    inAddButton: "Add example",
    inAddNote: "A name no intent has makes a new intent (action none: it shows in traces and routes nothing).",
    inAdded: "Added “{text}” to {intent}; live after {s} s of retraining.",
    inRemoved: "Removed “{text}” from {intent}; live after {s} s of retraining.",
    inRemove: "Remove",
    inRemoveOf: "Remove the example “{text}” of {intent}",
    inRemoveConfirm: "Stop teaching {intent} the example “{text}”?",
    inError: "Could not do that: {message}",
    inIntents: "Intents",
    inTraining: "Trained on {examples} examples of {intents} intents in {s} s.",
    inGate: "In scope from confidence {c} and similarity {s} (learned from held-out examples).",
    inAction: "Action",
    inSummary: "Action: {action} · Defined in: {origin} · Examples: {total} ({config} config, {console} console)",
    inExamplesOf: "Examples of {intent}",
    inText: "Text",
    inOrigin: "From",
    inNoExamples: "No examples left: this intent is never predicted.",
    inRules: "Rules",
    inRulesNote: "Rules come from the config's [[rules]] and are checked in order.",
    inNoRules: "No rules in the config.",
    inName: "Name",
    inMatches: "Matches",
    inStage: "Stage",
    inKeywords: "keywords: {list}",
    inRegex: "regex: {re}",
    inOnIntent: "intent: {name}",
    "origin.config": "config",
    "origin.console": "console",
    "action.none": "none",
    "action.handoff": "hand off to a person",
    "action.answer": "canned answer",
    "action.tool": "call a tool",
    "stage.always": "before retrieval",
    "stage.fallback": "when every model failed",
  },
  zh: {
    inTitle: "意图与规则",
    inTry: "试一句话",
    inSentence: "句子",
    inTryButton: "试一试",
    inResult: "结果",
    inPredicted: "意图",
    inConfidence: "置信度",
    inScope: "在范围内",
    inOutOfScope: "超出范围：机器人不会按此意图处理",
    inInScope: "在范围内",
    inWouldDo: "对话中将会",
    "do.intent": "按意图处理（{action}）",
    "do.rule": "按规则 {rule} 回复（{action}）",
    "do.none": "继续检索知识库并询问模型",
    inTop: "最可能的意图",
    inRank: "#",
    inRuleFires: "触发的规则：{name}（{matches}；{action}）",
    inNoRule: "没有规则触发。",
    inNoModel: "还没有任何意图有例句：每句话都超出范围。",
    inAdd: "添加例句",
    inIntent: "意图",
    inExample: "例句",
    inAddButton: "添加例句",
    inAddNote: "输入不存在的意图名会新建意图（动作为无：只在追踪中显示，不做路由）。",
    inAdded: "已把“{text}”加入 {intent}；重新训练 {s} 秒后生效。",
    inRemoved: "已从 {intent} 删除“{text}”；重新训练 {s} 秒后生效。",
    inRemove: "删除",
    inRemoveOf: "删除 {intent} 的例句“{text}”",
    inRemoveConfirm: "不再用例句“{text}”训练 {intent}？",
    inError: "操作失败：{message}",
    inIntents: "意图",
    inTraining: "用 {intents} 个意图的 {examples} 条例句训练，耗时 {s} 秒。",
    inGate: "置信度达到 {c} 且相似度达到 {s} 时视为在范围内（由留出例句学得）。",
    inAction: "动作",
    inSummary: "动作：{action} · 定义于：{origin} · 例句：{total}（配置 {config}，控制台 {console}）",
    inExamplesOf: "{intent} 的例句",
    inText: "文本",
    inOrigin: "来源",
    inNoExamples: "没有例句了：永远不会预测为这个意图。",
    inRules: "规则",
    inRulesNote: "规则来自配置文件的 [[rules]]，按顺序检查。",
    inNoRules: "配置中没有规则。",
    inName: "名称",
    inMatches: "匹配",
    inStage: "阶段",
    inKeywords: "关键词：{list}",
    inRegex: "正则：{re}",
    inOnIntent: "意图：{name}",
    "origin.config": "配置",
    "origin.console": "控制台",
    "action.none": "无",
    "action.handoff": "转人工",
    "action.answer": "固定回复",
    "action.tool": "调用工具",
    "stage.always": "检索之前",
    "stage.fallback": "所有模型都失败时",
  },
};

const percent = (p) => `${(p * 100).toFixed(1)} %`;

export async function render(root, { api, t }) {
  const notice = h("p", { role: "status" });
  const sentence = h("input", { id: "in-sentence", type: "text", required: true, size: "60", autocomplete: "off" });
  const result = h("div", { class: "card", role: "region", "aria-label": t("inResult"), hidden: true });
  const intentName = h("input", { id: "in-intent", type: "text", required: true, list: "in-intent-names",
    autocomplete: "off", size: "20" });
  const names = h("datalist", { id: "in-intent-names" });
  const example = h("input", { id: "in-example", type: "text", required: true, size: "48", autocomplete: "off" });
  const training = h("p", { class: "muted" });
  const intents = h("div", { class: "admin-page" });
  const rules = h("tbody");

  function fail(err) {
    notice.className = "danger-text";
    notice.textContent = t("inError", { message: err.message });
  }

  function say(text) {
    notice.className = "ok-text";
    notice.textContent = text;
  }

  const head = (...keys) => h("thead", {}, h("tr", {}, ...keys.map((k) => h("th", { scope: "col" }, t(k)))));
  const actionOf = (action) => t(`action.${action}`);

  function matches(rule) {
    return [rule.keywords.length ? t("inKeywords", { list: rule.keywords.join(", ") }) : "",
      rule.regex ? t("inRegex", { re: rule.regex }) : "", rule.intent ? t("inOnIntent", { name: rule.intent }) : ""]
      .filter(Boolean).join("; ");
  }

  function showResult(r) {
    const row = (label, value, cls) => h("tr", {}, h("th", { scope: "row" }, t(label)), h("td", { class: cls }, value));
    const outcome = r.stage === "rule" ? t("do.rule", { rule: r.rule.name, action: actionOf(r.rule.action) })
      : r.stage === "intent" ? t("do.intent", { action: actionOf(r.action) }) : t("do.none");
    result.replaceChildren(
      h("h3", {}, t("inResult")),
      r.intent === null ? h("p", {}, t("inNoModel")) : h("table", { class: "grid", "aria-label": t("inResult") },
        h("tbody", {},
          row("inPredicted", r.intent),
          row("inConfidence", percent(r.confidence)),
          row("inScope", r.in_scope ? t("inInScope") : t("inOutOfScope"), r.in_scope ? "ok-text" : "danger-text"),
          row("inWouldDo", outcome))),
      r.top.length ? h("table", { class: "grid", "aria-label": t("inTop") },
        head("inRank", "inPredicted", "inConfidence"),
        h("tbody", {}, ...r.top.map((c, i) => h("tr", {}, h("td", { class: "num" }, String(i + 1)),
          h("td", {}, c.intent), h("td", { class: "num" }, percent(c.confidence)))))) : null,
      h("p", {}, r.rule ? t("inRuleFires", { name: r.rule.name, matches: matches(r.rule), action: actionOf(r.rule.action) })
        : t("inNoRule")),
    );
    result.hidden = false;
  }

  function intentCard(intent) {
    const rows = intent.examples.map((e) => h("tr", {},
      h("td", {}, e.text),
      h("td", {}, h("span", { class: e.origin === "console" ? "badge badge-agent" : "badge" }, t(`origin.${e.origin}`))),
      h("td", {}, h("button", { type: "button", "aria-label": t("inRemoveOf", { text: e.text, intent: intent.name }),
        onclick: () => remove(intent, e) }, t("inRemove")))));
    if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: "3" }, t("inNoExamples"))));
    return h("details", { class: "card" },
      h("summary", {}, h("strong", {}, intent.name), " · ",
        t("inSummary", { action: actionOf(intent.action), origin: t(`origin.${intent.origin}`), ...intent.counts })),
      h("table", { class: "grid", "aria-label": t("inExamplesOf", { intent: intent.name }) },
        head("inText", "inOrigin", "inRemove"), h("tbody", {}, ...rows)));
  }

  async function load() {
    const data = await api.get("/api/v1/admin/intents");
    example.maxLength = data.max_example_chars;
    names.replaceChildren(...data.intents.map((i) => h("option", { value: i.name })));
    const open = new Set([...intents.querySelectorAll("details[open] strong")].map((s) => s.textContent));
    intents.replaceChildren(...data.intents.map(intentCard));
    for (const details of intents.querySelectorAll("details")) {
      if (open.has(details.querySelector("strong").textContent)) details.open = true;
    }
    const tr = data.training;
    training.textContent = [t("inTraining", { examples: tr.examples, intents: tr.intents, s: tr.seconds }),
      data.gate ? t("inGate", { c: percent(data.gate.confidence), s: data.gate.similarity.toFixed(2) }) : ""]
      .filter(Boolean).join(" ");
    rules.replaceChildren(...data.rules.map((r) => h("tr", {}, h("td", {}, r.name), h("td", {}, matches(r)),
      h("td", {}, actionOf(r.action)), h("td", {}, t(`stage.${r.stage}`)))));
    if (!data.rules.length) rules.appendChild(h("tr", {}, h("td", { colspan: "4" }, t("inNoRules"))));
  }

  async function tryIt(event) {
    event.preventDefault();
    try {
      showResult(await api.post("/api/v1/admin/intents/try", { text: sentence.value }));
      notice.textContent = "";
    } catch (err) {
      fail(err);
    }
  }

  async function add(event) {
    event.preventDefault();
    const intent = intentName.value.trim();
    try {
      const done = await api.post(`/api/v1/admin/intents/${encodeURIComponent(intent)}/examples`,
        { text: example.value });
      say(t("inAdded", { text: done.example.text, intent: done.example.intent, s: done.applied_s }));
      example.value = "";
      await load();
    } catch (err) {
      fail(err);
    }
  }

  async function remove(intent, e) {
    if (!window.confirm(t("inRemoveConfirm", { text: e.text, intent: intent.name }))) return;
    try {
      const done = await api.del(
        `/api/v1/admin/intents/${encodeURIComponent(intent.name)}/examples/${encodeURIComponent(e.id)}`);
      say(t("inRemoved", { text: e.text, intent: intent.name, s: done.applied_s }));
      await load();
    } catch (err) {
      fail(err);
    }
  }

  root.append(
    h("h2", {}, t("inTitle")),
    h("form", { class: "card", "aria-label": t("inTry"), onsubmit: tryIt },
      h("h3", {}, t("inTry")),
      h("div", { class: "form-row" }, h("label", { for: "in-sentence" }, t("inSentence"), sentence),
        h("button", { type: "submit" }, t("inTryButton")))),
    result,
    h("form", { class: "card", "aria-label": t("inAdd"), onsubmit: add },
      h("h3", {}, t("inAdd")),
      h("div", { class: "form-row" }, h("label", { for: "in-intent" }, t("inIntent"), intentName), names,
        h("label", { for: "in-example" }, t("inExample"), example),
        h("button", { type: "submit" }, t("inAddButton"))),
      h("p", { class: "muted" }, t("inAddNote"))),
    notice,
    h("section", { "aria-label": t("inIntents") }, h("h3", {}, t("inIntents")), training, intents),
    h("section", { "aria-label": t("inRules") }, h("h3", {}, t("inRules")), h("p", { class: "muted" }, t("inRulesNote")),
      h("table", { class: "grid", "aria-label": t("inRules") }, head("inName", "inMatches", "inAction", "inStage"),
        rules)),
  );
  await load();
}
