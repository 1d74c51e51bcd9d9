// "Why this answer": the decision trace of one bot reply, compact and collapsible.

import { h } from "./dom.js";
import { t } from "./i18n.js";

function percent(value) {
  if (typeof value !== "number") return "";
  return `${Math.round(value * 100)}%`;
}

function score(value) {
  return typeof value === "number" ? value.toFixed(2) : "";
}

function ms(value) {
  return typeof value === "number" ? t("ms", { ms: Math.round(value) }) : "";
}

/** One-line summary shown on the closed <details>: intent · source · model · total. */
function headline(trace) {
  const parts = [];
  if (trace.intent) parts.push(`${trace.intent} ${percent(trace.intent_confidence)}`.trim());
  if (trace.source) parts.push(trace.source);
  if (trace.model) parts.push(trace.arm ? `${trace.model} (${trace.arm})` : trace.model);
  if (typeof trace.total_ms === "number") parts.push(ms(trace.total_ms));
  return parts.join(" · ");
}

function row(label, ...value) {
  return [h("dt", {}, label), h("dd", {}, ...value)];
}

export function renderTrace(trace) {
  const details = h("details", { class: "trace" });
  if (!trace) {
    details.appendChild(h("summary", {}, t("whyThisAnswer")));
    details.appendChild(h("p", { class: "trace-missing" }, t("traceMissing")));
    return details;
  }
  details.appendChild(
    h("summary", {}, t("whyThisAnswer"), " ", h("span", { class: "trace-headline" }, headline(trace))),
  );

  const facts = h("dl", { class: "trace-facts" });
  const add = (label, ...value) => facts.append(...row(label, ...value));
  if (trace.intent) add(t("traceIntent"), `${trace.intent} (${percent(trace.intent_confidence)})`);
  if (trace.source) add(t("traceSource"), trace.source);
  if (trace.model) add(t("traceModel"), trace.model, trace.arm ? ` · ${t("traceArm")} ${trace.arm}` : "");
  const cache = trace.cache === true ? "hit" : String(trace.cache || "off");
  if (cache !== "off" && cache !== "false") add(t("traceCache"), cache === "hit" ? t("traceCacheHit") : cache);
  if ((trace.rules || []).length) add(t("traceRules"), trace.rules.join(", "));
  if (trace.handoff_reason) add(t("traceHandoff"), trace.handoff_reason);
  if (trace.superseded_by) add(t("traceSuperseded"), t("traceSupersededText"));
  if (typeof trace.total_ms === "number") add(t("traceTotal"), ms(trace.total_ms));
  details.appendChild(facts);

  const chunks = trace.chunks || [];
  details.appendChild(h("h4", {}, t("traceChunks")));
  if (chunks.length) {
    details.appendChild(
      h(
        "ol",
        { class: "trace-chunks" },
        chunks.map((chunk) =>
          h(
            "li",
            {},
            h("span", { class: "chunk-doc" }, chunk.document || ""),
            chunk.section ? [" › ", h("span", { class: "chunk-section" }, chunk.section)] : null,
            " ",
            h("span", { class: "chunk-score" }, score(chunk.score)),
          ),
        ),
      ),
    );
  } else {
    details.appendChild(h("p", { class: "trace-none" }, t("traceNoChunks")));
  }

  const fallbacks = trace.fallbacks || [];
  if (fallbacks.length) {
    details.appendChild(h("h4", {}, t("traceFallbacks")));
    details.appendChild(h("ul", { class: "trace-fallbacks" }, fallbacks.map((reason) => h("li", {}, reason))));
  }

  const attempts = trace.attempts || [];
  if (attempts.length) {
    details.appendChild(h("h4", {}, t("traceAttempts")));
    details.appendChild(
      h(
        "table",
        { class: "trace-attempts" },
        h(
          "thead",
          {},
          h("tr", {}, [t("traceProvider"), t("traceResult"), t("traceError"), t("traceLatency")].map((c) =>
            h("th", { scope: "col" }, c))),
        ),
        h(
          "tbody",
          {},
          attempts.map((a) =>
            h(
              "tr",
              { class: a.error_kind ? "attempt-failed" : "attempt-ok" },
              h("td", {}, a.provider || ""),
              h("td", {}, a.status === undefined || a.status === null ? "" : String(a.status)),
              h("td", {}, a.error_kind || ""),
              h("td", { class: "num" }, ms(a.latency_ms)),
            ),
          ),
        ),
      ),
    );
  }
  return details;
}
