// The right column: who the visitor is, where they came from, what they asked before.

import { h, fill } from "./dom.js";
import { t } from "./i18n.js";
import { fullTime, languageLabel, shortTime } from "./format.js";

function field(label, value, className = "") {
  const shown = value === undefined || value === null || value === "" ? t("unknown") : String(value);
  return [h("dt", {}, label), h("dd", { class: className, title: shown }, shown)];
}

export function clearVisitorPanel(container) {
  fill(container);
}

/** `detail` is the GET /desk/conversations/{id} answer. */
export function renderVisitorPanel(container, detail, { onOpenPast }) {
  const visitor = detail.visitor || {};
  // The contract lists the fields flat; the backend nests what the browser sent in `profile`.
  const profile = { ...visitor, ...(visitor.profile || {}) };
  const rating = detail.rating;
  const past = (visitor.past || []).filter((p) => p.id !== (detail.conversation || {}).id);

  const facts = h(
    "dl",
    { class: "facts" },
    field(t("visitorName"), profile.name || t("anonymous")),
    field(t("visitorEmail"), profile.email),
    field(t("visitorIp"), profile.ip, "mono"),
    field(t("visitorId"), visitor.visitor_id, "mono small"),
    field(t("visitorUa"), profile.user_agent, "small"),
    field(t("visitorPage"), profile.page, "small break"),
    field(t("visitorLanguage"), languageLabel(visitor.language || (detail.conversation || {}).language)),
    field(t("metaStarted"), fullTime((detail.conversation || {}).started_ms)),
  );

  const ratingBlock = h(
    "section",
    { class: "panel-section", "aria-labelledby": "rating-heading" },
    h("h3", { id: "rating-heading" }, t("visitorRating")),
    rating && typeof rating.score === "number"
      ? [
          h(
            "p",
            { class: "rating" },
            h("span", { class: "stars", "aria-hidden": "true" }, "★".repeat(rating.score) + "☆".repeat(Math.max(0, 5 - rating.score))),
            " ",
            h("span", {}, t("ratingValue", { score: rating.score })),
          ),
          rating.comment ? h("blockquote", { class: "rating-comment" }, rating.comment) : null,
        ]
      : h("p", { class: "muted" }, t("noRating")),
  );

  const pastBlock = h(
    "section",
    { class: "panel-section", "aria-labelledby": "past-heading" },
    h("h3", { id: "past-heading" }, t("pastConversations")),
    past.length
      ? h(
          "ul",
          { class: "past-list" },
          past.map((p) =>
            h(
              "li",
              {},
              h(
                "button",
                { type: "button", class: "past-item", onclick: () => onOpenPast(p.id) },
                h(
                  "span",
                  { class: "past-meta" },
                  shortTime(p.started_ms),
                  " · ",
                  p.status === "closed" ? t("statusClosed") : t("statusOpen"),
                ),
                " ",
                h("span", { class: "past-subject" }, p.subject || t("noSubject")),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, t("noPast")),
  );

  fill(
    container,
    h("h2", { class: "panel-title" }, t("visitorPanel")),
    facts,
    ratingBlock,
    pastBlock,
  );
}
