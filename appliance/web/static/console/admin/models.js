// Models: the routing table (active model, canary and its percentage, fallback order) with every
// change the CLI has (add, use, canary, promote, roll back, fallback, remove), each model's
// circuit breaker, and each arm over time from the stored traces (requests, errors, p50/p99
// latency, thumbs-down) to judge a canary against the active model. Changes are live when the
// server answers; the page reloads itself every few seconds.

import { h } from "../dom.js";
import { lineChart } from "./chart.js";

export const STRINGS = {
  en: {
    mdlTitle: "Models",
    mdlRouting: "Routing",
    mdlActive: "Active model",
    mdlCanary: "Canary",
    mdlCanaryOf: "{name} for {percent}% of conversations",
    mdlPrevious: "Roll back to",
    mdlFallback: "Fallback order",
    mdlNone: "none",
    mdlBuiltin: "none (the built-in model answers)",
    mdlPromote: "Promote the canary",
    mdlPromoteHint: "{name} becomes the active model for everyone.",
    mdlRollback: "Roll back",
    mdlRollbackCanary: "Ends the canary: every conversation goes back to {name}.",
    mdlRollbackPrevious: "Makes {name} the active model again.",
    mdlSetCanary: "Set a canary",
    mdlCanaryModel: "Canary model",
    mdlCanaryPercent: "Canary percentage",
    mdlCanaryButton: "Set canary",
    mdlCanaryNote: "Conversations stay in their arm; raising the percentage only moves more into the canary.",
    mdlCanarySet: "{name} now answers {percent}% of conversations.",
    mdlModels: "Models",
    mdlName: "Name",
    mdlKind: "Kind",
    mdlEndpoint: "Endpoint",
    mdlRole: "Role",
    mdlBreaker: "Breaker",
    mdlInFlight: "In flight",
    mdlActions: "Actions",
    mdlEmpty: "No models yet: add one below. Until then the built-in model answers.",
    mdlUse: "Use",
    mdlUseOf: "Use {name}",
    mdlUsed: "{name} is now the active model.",
    mdlRemove: "Remove",
    mdlRemoveOf: "Remove {name}",
    mdlRemoveConfirm: "Remove the model {name}?",
    mdlRemoved: "Removed {name}.",
    "role.active": "active",
    "role.canary": "canary {percent}%",
    "role.fallback": "fallback {n}",
    "role.previous": "previous",
    "breaker.closed": "closed",
    "breaker.open": "open",
    "breaker.half_open": "half-open",
    "kind.openai": "OpenAI-compatible",
    "kind.local": "built-in",
    "arm.active": "active",
    "arm.canary": "canary",
    "arm.fallback": "fallback",
    "arm.local": "built-in",
    mdlFallbackEmpty: "No fallback: when the model fails, the degradation chain answers.",
    mdlUp: "Move up",
    mdlUpOf: "Move {name} up",
    mdlDown: "Move down",
    mdlDownOf: "Move {name} down",
    mdlDrop: "Take out",
    mdlDropOf: "Take {name} out of the fallback order",
    mdlFallbackAdd: "Add to the fallback order",
    mdlFallbackAddButton: "Add",
    mdlFallbackSaved: "Fallback order: {names}.",
    mdlAdd: "Add a model",
    mdlAddHint: "A model of the same name is replaced.",
    mdlBaseUrl: "Base URL",
    mdlUpstreamModel: "Upstream model id",
    mdlKeyEnv: "API key variable",
    mdlRpm: "Requests/min (0: no limit)",
    mdlTpm: "Tokens/min (0: no limit)",
    mdlConcurrency: "Max concurrency",
    mdlTimeout: "Timeout (s)",
    mdlRetries: "Retries",
    mdlVision: "Accepts images",
    mdlAddButton: "Add model",
    mdlAdded: "Added {name}.",
    mdlError: "Could not do that: {message}",
    mdlHistory: "Arms over time",
    mdlWindow: "Window",
    "window.hour": "Last hour, per minute",
    "window.day": "Last 24 hours, per hour",
    "window.month": "Last 30 days, per day",
    mdlNoTraffic: "No model traffic in this window yet.",
    mdlTurns: "{n} turns with model calls in this window.",
    mdlChartRequests: "Requests",
    mdlChartErrors: "Errors",
    mdlChartP50: "Latency p50 (ms)",
    mdlChartP99: "Latency p99 (ms)",
    mdlChartDown: "Thumbs-down",
    mdlTotals: "Arms over the window",
    mdlArm: "Arm",
    mdlRequests: "Requests",
    mdlErrors: "Errors",
    mdlErrorRate: "Error rate",
    mdlP50: "p50 ms",
    mdlP99: "p99 ms",
    mdlRated: "Rated",
    mdlDownRate: "Thumbs-down rate",
    mdlRefresh: "Refresh",
  },
  zh: {
    mdlTitle: "模型",
    mdlRouting: "路由",
    mdlActive: "当前模型",
    mdlCanary: "灰度",
    mdlCanaryOf: "{name} 承接 {percent}% 的会话",
    mdlPrevious: "可回滚到",
    mdlFallback: "备用顺序",
    mdlNone: "无",
    mdlBuiltin: "无（由内置模型回答）",
    mdlPromote: "灰度转正",
    mdlPromoteHint: "{name} 将成为所有会话的当前模型。",
    mdlRollback: "回滚",
    mdlRollbackCanary: "结束灰度：所有会话回到 {name}。",
    mdlRollbackPrevious: "重新启用 {name} 作为当前模型。",
    mdlSetCanary: "设置灰度",
    mdlCanaryModel: "灰度模型",
    mdlCanaryPercent: "灰度比例",
    mdlCanaryButton: "设置灰度",
    mdlCanaryNote: "会话固定在所属分组；提高比例只会让更多会话进入灰度。",
    mdlCanarySet: "{name} 现在承接 {percent}% 的会话。",
    mdlModels: "模型列表",
    mdlName: "名称",
    mdlKind: "类型",
    mdlEndpoint: "接口",
    mdlRole: "角色",
    mdlBreaker: "熔断器",
    mdlInFlight: "进行中",
    mdlActions: "操作",
    mdlEmpty: "还没有模型：请在下方添加。在此之前由内置模型回答。",
    mdlUse: "启用",
    mdlUseOf: "启用 {name}",
    mdlUsed: "{name} 已成为当前模型。",
    mdlRemove: "删除",
    mdlRemoveOf: "删除 {name}",
    mdlRemoveConfirm: "删除模型 {name}？",
    mdlRemoved: "已删除 {name}。",
    "role.active": "当前",
    "role.canary": "灰度 {percent}%",
    "role.fallback": "备用 {n}",
    "role.previous": "上一个",
    "breaker.closed": "闭合",
    "breaker.open": "断开",
    "breaker.half_open": "半开",
    "kind.openai": "OpenAI 兼容",
    "kind.local": "内置",
    "arm.active": "当前",
    "arm.canary": "灰度",
    "arm.fallback": "备用",
    "arm.local": "内置",
    mdlFallbackEmpty: "没有备用模型：模型失败时由降级链回答。",
    mdlUp: "上移",
    mdlUpOf: "上移 {name}",
    mdlDown: "下移",
    mdlDownOf: "下移 {name}",
    mdlDrop: "移出",
    mdlDropOf: "将 {name} 移出备用顺序",
    mdlFallbackAdd: "加入备用顺序",
    mdlFallbackAddButton: "加入",
    mdlFallbackSaved: "备用顺序：{names}。",
    mdlAdd: "添加模型",
    mdlAddHint: "同名模型会被替换。",
    mdlBaseUrl: "接口地址",
    mdlUpstreamModel: "上游模型 ID",
    mdlKeyEnv: "API 密钥环境变量",
    mdlRpm: "每分钟请求数（0 为不限）",
    mdlTpm: "每分钟 token 数（0 为不限）",
    mdlConcurrency: "最大并发",
    mdlTimeout: "超时（秒）",
    mdlRetries: "重试次数",
    mdlVision: "支持图片",
    mdlAddButton: "添加模型",
    mdlAdded: "已添加 {name}。",
    mdlError: "操作失败：{message}",
    mdlHistory: "各分组趋势",
    mdlWindow: "时间范围",
    "window.hour": "最近 1 小时（按分钟）",
    "window.day": "最近 24 小时（按小时）",
    "window.month": "最近 30 天（按天）",
    mdlNoTraffic: "此时间范围内还没有模型调用。",
    mdlTurns: "此时间范围内有 {n} 轮调用了模型。",
    mdlChartRequests: "请求数",
    mdlChartErrors: "错误数",
    mdlChartP50: "延迟 p50（毫秒）",
    mdlChartP99: "延迟 p99（毫秒）",
    mdlChartDown: "点踩数",
    mdlTotals: "时间范围内各分组汇总",
    mdlArm: "分组",
    mdlRequests: "请求数",
    mdlErrors: "错误数",
    mdlErrorRate: "错误率",
    mdlP50: "p50 毫秒",
    mdlP99: "p99 毫秒",
    mdlRated: "评价数",
    mdlDownRate: "点踩率",
    mdlRefresh: "刷新",
  },
};

const WINDOWS = {
  hour: { span: 3_600_000, bucket: "minute" },
  day: { span: 86_400_000, bucket: "hour" },
  month: { span: 30 * 86_400_000, bucket: "day" },
};

const count = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(2));
const ms = (v) => (v >= 10 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(1));
const percent = (v) => `${(v * 100).toFixed(1)}%`;

export async function render(root, { api, t }) {
  const notice = h("p", { role: "status" });
  const routing = h("dl", { class: "facts" });
  const promote = h("button", { type: "button", onclick: () => act(() => api.post("/api/v1/admin/models/promote")) },
    t("mdlPromote"));
  const rollback = h("button", { type: "button", onclick: () => act(() => api.post("/api/v1/admin/models/rollback")) },
    t("mdlRollback"));
  const routingHint = h("p", { class: "muted" });
  const canaryModel = h("select", { id: "models-canary-model", required: true });
  const canaryPercent = h("input", { id: "models-canary-percent", type: "number", min: "0", max: "100", step: "any",
    required: true, value: "10", size: "6" });
  const models = h("tbody");
  const fallback = h("ol", { class: "fallback-order", "aria-label": t("mdlFallback") });
  const fallbackPick = h("select", { id: "models-fallback-add" });
  const fallbackAdd = h("button", { type: "button", onclick: () => addFallback() }, t("mdlFallbackAddButton"));
  const windowPick = h("select", { id: "models-window", onchange: () => loadSeries().catch(fail) },
    ...Object.keys(WINDOWS).map((k) => h("option", { value: k }, t(`window.${k}`))));
  const turns = h("p", { class: "muted" });
  const charts = h("div", { class: "charts" });
  const totals = h("tbody");
  let table = { models: {}, fallback: [] };

  function fail(err) {
    notice.className = "danger-text";
    notice.textContent = t("mdlError", { message: err.message });
  }

  function say(text) {
    notice.className = "ok-text";
    notice.textContent = text;
  }

  /** Run a change, say what it did, and reload; a refusal (4xx) is shown in its own words. */
  async function act(change, done) {
    try {
      const changed = await change();
      notice.textContent = "";
      if (done) say(done(changed));
      await load();
    } catch (err) {
      fail(err);
    }
  }

  function roleOf(name) {
    const roles = [];
    if (name === table.active) roles.push(t("role.active"));
    if (name === table.canary) roles.push(t("role.canary", { percent: table.canary_percent }));
    const place = table.fallback.indexOf(name);
    if (place >= 0) roles.push(t("role.fallback", { n: place + 1 }));
    if (name === table.previous_active) roles.push(t("role.previous"));
    return roles.join(", ");
  }

  function options(select, names, keep) {
    const value = keep ?? select.value;
    select.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
    if (names.includes(value)) select.value = value;
  }

  function showRouting() {
    const fact = (label, value) => [h("dt", {}, label), h("dd", {}, value)];
    routing.replaceChildren(
      ...fact(t("mdlActive"), table.active || t("mdlBuiltin")),
      ...fact(t("mdlCanary"), table.canary
        ? t("mdlCanaryOf", { name: table.canary, percent: table.canary_percent }) : t("mdlNone")),
      ...fact(t("mdlPrevious"), table.previous_active || t("mdlNone")),
      ...fact(t("mdlFallback"), table.fallback.length ? table.fallback.join(" → ") : t("mdlNone")));
    promote.disabled = !table.canary;
    rollback.disabled = !table.canary && !table.previous_active;
    routingHint.textContent = table.canary
      ? `${t("mdlPromoteHint", { name: table.canary })} ${t("mdlRollbackCanary", { name: table.active })}`
      : table.previous_active ? t("mdlRollbackPrevious", { name: table.previous_active }) : "";
    const names = Object.keys(table.models).sort();
    options(canaryModel, names.filter((n) => n !== table.active), canaryModel.value || table.canary);
    options(fallbackPick, names.filter((n) => !table.fallback.includes(n)));
    fallbackAdd.disabled = !fallbackPick.options.length;
  }

  function showModels(health) {
    const breakers = Object.fromEntries(health.map((m) => [m.model, m]));
    const names = Object.keys(table.models).sort();
    models.replaceChildren(...names.map((name) => {
      const spec = table.models[name];
      const b = breakers[name];
      const state = b ? b.breaker : "closed";
      return h("tr", {},
        h("td", {}, h("strong", {}, name)),
        h("td", {}, t(`kind.${spec.kind}`)),
        h("td", {}, spec.kind === "openai" ? h("code", {}, `${spec.base_url} · ${spec.model}`) : ""),
        h("td", {}, roleOf(name)),
        h("td", { class: state === "closed" ? "ok-text" : "danger-text" }, t(`breaker.${state}`)),
        h("td", { class: "num" }, String(b ? b.in_flight : 0)),
        h("td", {},
          h("button", { type: "button", "aria-label": t("mdlUseOf", { name }), disabled: name === table.active,
            onclick: () => act(() => api.post("/api/v1/admin/models/use", { name }), () => t("mdlUsed", { name })) },
          t("mdlUse")), " ",
          h("button", { type: "button", "aria-label": t("mdlRemoveOf", { name }),
            disabled: name === table.active || name === table.canary, onclick: () => remove(name) }, t("mdlRemove"))));
    }));
    if (!names.length) models.appendChild(h("tr", {}, h("td", { colspan: "7" }, t("mdlEmpty"))));
  }

  function setFallback(names) {
    return act(() => api.post("/api/v1/admin/models/fallback", { names }),
      () => t("mdlFallbackSaved", { names: names.length ? names.join(" → ") : t("mdlNone") }));
  }

  function showFallback() {
    const order = table.fallback;
    const moved = (i, j) => {
      const next = [...order];
      [next[i], next[j]] = [next[j], next[i]];
      return next;
    };
    fallback.replaceChildren(...order.map((name, i) => h("li", {},
      h("span", {}, name), " ",
      h("button", { type: "button", "aria-label": t("mdlUpOf", { name }), disabled: i === 0,
        onclick: () => setFallback(moved(i, i - 1)) }, "↑"),
      h("button", { type: "button", "aria-label": t("mdlDownOf", { name }), disabled: i === order.length - 1,
        onclick: () => setFallback(moved(i, i + 1)) }, "↓"),
      h("button", { type: "button", "aria-label": t("mdlDropOf", { name }),
        onclick: () => setFallback(order.filter((n) => n !== name)) }, t("mdlDrop")))));
    if (!order.length) fallback.appendChild(h("li", { class: "muted" }, t("mdlFallbackEmpty")));
  }

  function addFallback() {
    if (fallbackPick.value) return setFallback([...table.fallback, fallbackPick.value]);
    return undefined;
  }

  async function remove(name) {
    if (!window.confirm(t("mdlRemoveConfirm", { name }))) return;
    await act(() => api.del(`/api/v1/admin/models/${encodeURIComponent(name)}`), () => t("mdlRemoved", { name }));
  }

  async function setCanary(event) {
    event.preventDefault();
    const name = canaryModel.value;
    const value = Number(canaryPercent.value);
    await act(() => api.post("/api/v1/admin/models/canary", { name, percent: value }),
      (changed) => t("mdlCanarySet", { name, percent: changed.canary_percent }));
  }

  async function load() {
    const data = await api.get("/api/v1/admin/models/");
    table = data.table;
    showRouting();
    showModels(data.metrics.models);
    showFallback();
    await loadSeries();
  }

  async function loadSeries() {
    const chosen = WINDOWS[windowPick.value];
    const until = Date.now() + 1;
    const since = until - chosen.span;
    const data = await api.get(`/api/v1/admin/models/series?since=${since}&until=${until}&bucket=${chosen.bucket}`);
    const name = (a) => `${a.model} · ${t(`arm.${a.arm}`)}`;
    turns.textContent = data.arms.length ? t("mdlTurns", { n: data.turns }) : t("mdlNoTraffic");
    const starts = [];
    const width = data.bucket_ms;
    for (let at = Math.floor(since / width) * width; at < until; at += width) starts.push(at);
    // Counts are 0 in a bucket without traffic; a latency only where the arm answered.
    const counted = (field) => data.arms.map((a) => {
      const by = new Map(a.points.map((p) => [p.at_ms, p[field]]));
      return { name: name(a), points: starts.map((at) => [at, by.get(at) || 0]) };
    });
    const timed = (field) => data.arms.map((a) => ({ name: name(a),
      points: a.points.filter((p) => p.requests > p.errors).map((p) => [p.at_ms, p[field]]) }));
    const xFormat = chosen.bucket === "day"
      ? (x) => new Date(x).toLocaleDateString()
      : chosen.bucket === "hour"
        ? (x) => new Date(x).toLocaleString([], { month: "numeric", day: "numeric", hour: "2-digit",
          minute: "2-digit" })
        : (x) => new Date(x).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const chart = (key, series, format) => lineChart({ title: t(key), series, format, xFormat,
      xDomain: [starts[0], starts[starts.length - 1]] });
    charts.replaceChildren(...(data.arms.length ? [
      chart("mdlChartRequests", counted("requests"), count),
      chart("mdlChartErrors", counted("errors"), count),
      chart("mdlChartP50", timed("latency_p50_ms"), ms),
      chart("mdlChartP99", timed("latency_p99_ms"), ms),
      chart("mdlChartDown", counted("thumbs_down"), count),
    ] : []));
    totals.replaceChildren(...data.arms.map((a) => h("tr", {},
      h("td", {}, a.model), h("td", {}, t(`arm.${a.arm}`)),
      h("td", { class: "num" }, String(a.totals.requests)), h("td", { class: "num" }, String(a.totals.errors)),
      h("td", { class: "num" }, percent(a.totals.error_rate)),
      h("td", { class: "num" }, ms(a.totals.latency_p50_ms)), h("td", { class: "num" }, ms(a.totals.latency_p99_ms)),
      h("td", { class: "num" }, String(a.totals.rated)),
      h("td", { class: "num" }, percent(a.totals.thumbs_down_rate)))));
    if (!data.arms.length) totals.appendChild(h("tr", {}, h("td", { colspan: "9" }, t("mdlNoTraffic"))));
  }

  const kind = h("select", { id: "models-kind" },
    h("option", { value: "openai" }, t("kind.openai")), h("option", { value: "local" }, t("kind.local")));
  const field = (id, label, props = {}) => {
    const input = h("input", { id, ...props });
    return [input, h("label", { for: id }, label, input)];
  };
  const [addName, addNameLabel] = field("models-name", t("mdlName"), { required: true, size: "16" });
  const [baseUrl, baseUrlLabel] = field("models-base-url", t("mdlBaseUrl"),
    { type: "url", placeholder: "http://10.0.0.5:8000/v1", size: "32" });
  const [upstream, upstreamLabel] = field("models-upstream", t("mdlUpstreamModel"), { size: "20" });
  const [keyEnv, keyEnvLabel] = field("models-key-env", t("mdlKeyEnv"), { size: "16", placeholder: "OPENAI_API_KEY" });
  const number = (id, label, value, props = {}) =>
    field(id, label, { type: "number", value, min: "0", size: "6", ...props });
  const [rpm, rpmLabel] = number("models-rpm", t("mdlRpm"), "0");
  const [tpm, tpmLabel] = number("models-tpm", t("mdlTpm"), "0");
  const [concurrency, concurrencyLabel] = number("models-concurrency", t("mdlConcurrency"), "64", { min: "1" });
  const [timeout, timeoutLabel] = number("models-timeout", t("mdlTimeout"), "30", { step: "any", min: "0.1" });
  const [retries, retriesLabel] = number("models-retries", t("mdlRetries"), "2", { max: "10" });
  const vision = h("input", { id: "models-vision", type: "checkbox" });
  const remote = h("div", { class: "form-row" }, baseUrlLabel, upstreamLabel, keyEnvLabel);
  kind.addEventListener("change", () => { remote.hidden = kind.value !== "openai"; });

  async function add(event) {
    event.preventDefault();
    const spec = { name: addName.value.trim(), kind: kind.value, rpm: Number(rpm.value), tpm: Number(tpm.value),
      max_concurrency: Number(concurrency.value), timeout_s: Number(timeout.value), max_retries: Number(retries.value),
      vision: vision.checked };
    if (kind.value === "openai") Object.assign(spec, { base_url: baseUrl.value.trim(), model: upstream.value.trim(),
      api_key_env: keyEnv.value.trim() });
    await act(() => api.post("/api/v1/admin/models/", spec), () => {
      addName.value = "";
      return t("mdlAdded", { name: spec.name });
    });
  }

  const head = (...keys) => h("thead", {}, h("tr", {}, ...keys.map(([k, cls]) =>
    h("th", { scope: "col", class: cls }, t(k)))));
  root.append(
    h("h2", {}, t("mdlTitle")),
    notice,
    h("div", { class: "card", role: "region", "aria-label": t("mdlRouting") },
      h("h3", {}, t("mdlRouting")), routing, h("div", { class: "form-row" }, promote, rollback), routingHint),
    h("form", { class: "card", "aria-label": t("mdlSetCanary"), onsubmit: setCanary },
      h("h3", {}, t("mdlSetCanary")),
      h("div", { class: "form-row" },
        h("label", { for: "models-canary-model" }, t("mdlCanaryModel"), canaryModel),
        h("label", { for: "models-canary-percent" }, t("mdlCanaryPercent"), canaryPercent),
        h("button", { type: "submit" }, t("mdlCanaryButton"))),
      h("p", { class: "muted" }, t("mdlCanaryNote"))),
    h("table", { class: "grid", "aria-label": t("mdlModels") },
      head(["mdlName"], ["mdlKind"], ["mdlEndpoint"], ["mdlRole"], ["mdlBreaker"], ["mdlInFlight", "num"],
        ["mdlActions"]), models),
    h("div", { class: "card", role: "region", "aria-label": t("mdlFallback") },
      h("h3", {}, t("mdlFallback")), fallback,
      h("div", { class: "form-row" }, h("label", { for: "models-fallback-add" }, t("mdlFallbackAdd"), fallbackPick),
        fallbackAdd)),
    h("section", { class: "card", "aria-label": t("mdlHistory") },
      h("div", { class: "form-row" }, h("h3", {}, t("mdlHistory")),
        h("label", { for: "models-window" }, t("mdlWindow"), windowPick),
        h("button", { type: "button", onclick: () => load().catch(fail) }, t("mdlRefresh"))),
      turns, charts,
      h("table", { class: "grid", "aria-label": t("mdlTotals") },
        head(["mdlName"], ["mdlArm"], ["mdlRequests", "num"], ["mdlErrors", "num"], ["mdlErrorRate", "num"],
          ["mdlP50", "num"], ["mdlP99", "num"], ["mdlRated", "num"], ["mdlDownRate", "num"]), totals)),
    h("form", { class: "card", "aria-label": t("mdlAdd"), onsubmit: add },
      h("h3", {}, t("mdlAdd")), h("p", { class: "muted" }, t("mdlAddHint")),
      h("div", { class: "form-row" }, addNameLabel, h("label", { for: "models-kind" }, t("mdlKind"), kind)),
      remote,
      h("div", { class: "form-row" }, rpmLabel, tpmLabel, concurrencyLabel, timeoutLabel, retriesLabel,
        h("label", { for: "models-vision", class: "inline" }, vision, t("mdlVision"))),
      h("button", { type: "submit" }, t("mdlAddButton"))),
  );
  await load();
  const timer = setInterval(() => load().catch(() => {}), 5000);
  return () => clearInterval(timer);
}
