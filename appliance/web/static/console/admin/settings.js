// Settings: the business hours (time zone, weekly lines, holidays) that decide whether a visitor
// asking for a person reaches the queue or the leave-a-message form, and the widget's look
// (title, accent colour, greetings, launcher side) with a live preview. Each form saves its own
// part; the server checks it with the config's parsers and the change is live at once.

import { h } from "../dom.js";
import { LANG } from "../i18n.js";

export const STRINGS = {
  en: {
    stTitle: "Settings",
    stHours: "Business hours",
    stHoursIntro: "Outside these hours a visitor who asks for a person is offered to leave a message.",
    stFromConfig: "In force: the config file's [desk] hours. Saving here replaces them on every site.",
    stFromConsole: "In force: the hours saved here (they replace the config file's).",
    stTimezone: "Time zone",
    stLines: "Weekly hours (one line each, e.g. mon-fri 09:00-18:00; empty: always open)",
    stHolidays: "Holidays (one date each, e.g. 2026-12-25)",
    stSaveHours: "Save hours",
    stLook: "Widget look",
    stLookIntro: "Used by the widget and the chat page; data-title, data-color and data-position on the embed tag win.",
    stWidgetTitle: "Title",
    stColor: "Accent colour",
    stGreetingEn: "Greeting (English)",
    stGreetingZh: "Greeting (Chinese)",
    stPosition: "Launcher position",
    stLeft: "Bottom left",
    stRight: "Bottom right",
    stSaveLook: "Save look",
    stPreview: "Preview",
    stPreviewLauncher: "Launcher",
    stDefaultTitle: "Chat with us",
    stDefaultGreeting: "Hi! How can we help you today?",
    stSavedHours: "Business hours saved.",
    stSavedLook: "Widget look saved.",
    stError: "Could not save: {message}",
  },
  zh: {
    stTitle: "设置",
    stHours: "营业时间",
    stHoursIntro: "营业时间以外，要求转人工的访客将看到留言表单。",
    stFromConfig: "当前生效：配置文件 [desk] 中的营业时间。在此保存后将在所有站点替代它。",
    stFromConsole: "当前生效：在此保存的营业时间（替代配置文件中的设置）。",
    stTimezone: "时区",
    stLines: "每周营业时间（每行一条，例如 mon-fri 09:00-18:00；留空表示全天营业）",
    stHolidays: "节假日（每行一个日期，例如 2026-12-25）",
    stSaveHours: "保存营业时间",
    stLook: "窗口外观",
    stLookIntro: "用于聊天窗口和聊天页面；嵌入代码上的 data-title、data-color、data-position 优先。",
    stWidgetTitle: "标题",
    stColor: "主题色",
    stGreetingEn: "欢迎语（英文）",
    stGreetingZh: "欢迎语（中文）",
    stPosition: "按钮位置",
    stLeft: "左下角",
    stRight: "右下角",
    stSaveLook: "保存外观",
    stPreview: "预览",
    stPreviewLauncher: "聊天按钮",
    stDefaultTitle: "在线客服",
    stDefaultGreeting: "您好！请问有什么可以帮您？",
    stSavedHours: "营业时间已保存。",
    stSavedLook: "窗口外观已保存。",
    stError: "保存失败：{message}",
  },
};

const DEFAULT_ACCENT = "#0b5cff";
const lines = (text) => text.split("\n").map((line) => line.trim()).filter(Boolean);

/** Dark text on a light accent, white on a dark one (as the widget does). */
function inkFor(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return 0.299 * r + 0.587 * g + 0.114 * b > 170 ? "#111827" : "#fff";
}

export async function render(root, { api, t }) {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const zoneList = h("datalist", { id: "st-zones" }, ...["UTC", ...zones].map((z) => h("option", { value: z })));
  const timezone = h("input", { id: "st-timezone", type: "text", list: "st-zones", autocomplete: "off", size: "28" });
  const hourLines = h("textarea", { id: "st-lines", rows: "4", spellcheck: "false" });
  const holidays = h("textarea", { id: "st-holidays", rows: "3", spellcheck: "false" });
  const source = h("p", { class: "muted" });
  const hoursNotice = h("p", { role: "status" });

  const title = h("input", { id: "st-widget-title", type: "text", maxlength: "80", size: "32" });
  const color = h("input", { id: "st-color", type: "color", value: DEFAULT_ACCENT });
  const greetingEn = h("textarea", { id: "st-greeting-en", rows: "2", maxlength: "500" });
  const greetingZh = h("textarea", { id: "st-greeting-zh", rows: "2", maxlength: "500" });
  const position = h("select", { id: "st-position" },
    h("option", { value: "right" }, t("stRight")), h("option", { value: "left" }, t("stLeft")));
  const lookNotice = h("p", { role: "status" });

  const previewTitle = h("strong", {});
  const previewGreeting = h("p", {});
  const previewHeader = h("div", { class: "settings-preview__header" }, previewTitle);
  const previewLauncher = h("span", { class: "settings-preview__launcher", role: "img",
    "aria-label": t("stPreviewLauncher") });
  const previewChat = h("div", { class: "settings-preview__chat" }, previewHeader,
    h("div", { class: "settings-preview__body" }, previewGreeting));
  const preview = h("div", { class: "settings-preview", role: "region", "aria-label": t("stPreview") },
    previewChat, previewLauncher);

  function drawPreview() {
    const accent = color.value || DEFAULT_ACCENT;
    previewTitle.textContent = title.value.trim() || t("stDefaultTitle");
    const greeting = (LANG === "zh" ? greetingZh : greetingEn).value.trim();
    previewGreeting.textContent = greeting || t("stDefaultGreeting");
    for (const part of [previewHeader, previewLauncher]) {
      part.style.background = accent;
      part.style.color = inkFor(accent);
    }
    preview.dataset.side = position.value;
  }

  function show(settings) {
    timezone.value = settings.desk.timezone;
    hourLines.value = settings.desk.hours.join("\n");
    holidays.value = settings.desk.holidays.join("\n");
    source.textContent = t(settings.hours_from === "console" ? "stFromConsole" : "stFromConfig");
    const look = settings.widget;
    title.value = look.title;
    color.value = look.color || DEFAULT_ACCENT;
    greetingEn.value = look.greeting_en;
    greetingZh.value = look.greeting_zh;
    position.value = look.position;
    drawPreview();
  }

  async function save(event, part, notice, saved) {
    event.preventDefault();
    try {
      show(await api.put("/api/v1/admin/settings", part()));
      notice.className = "ok-text";
      notice.textContent = t(saved);
    } catch (err) {
      notice.className = "danger-text";
      notice.textContent = t("stError", { message: err.message });
    }
  }

  const hoursPart = () => ({ desk: { timezone: timezone.value, hours: lines(hourLines.value),
    holidays: lines(holidays.value) } });
  const lookPart = () => ({ widget: { title: title.value, color: color.value === DEFAULT_ACCENT ? "" : color.value,
    greeting_en: greetingEn.value, greeting_zh: greetingZh.value, position: position.value } });
  for (const field of [title, color, greetingEn, greetingZh, position]) field.addEventListener("input", drawPreview);

  root.append(
    h("h2", {}, t("stTitle")),
    h("form", { class: "card", "aria-label": t("stHours"),
      onsubmit: (e) => save(e, hoursPart, hoursNotice, "stSavedHours") },
      h("h3", {}, t("stHours")),
      h("p", {}, t("stHoursIntro")),
      source,
      h("div", { class: "form-row" }, h("label", { for: "st-timezone" }, t("stTimezone"), timezone), zoneList),
      h("label", { class: "settings-field", for: "st-lines" }, t("stLines"), hourLines),
      h("label", { class: "settings-field", for: "st-holidays" }, t("stHolidays"), holidays),
      h("button", { type: "submit" }, t("stSaveHours")),
      hoursNotice),
    h("form", { class: "card", "aria-label": t("stLook"),
      onsubmit: (e) => save(e, lookPart, lookNotice, "stSavedLook") },
      h("h3", {}, t("stLook")),
      h("p", { class: "muted" }, t("stLookIntro")),
      h("div", { class: "settings-look" },
        h("div", {},
          h("div", { class: "form-row" },
            h("label", { for: "st-widget-title" }, t("stWidgetTitle"), title),
            h("label", { for: "st-color" }, t("stColor"), color),
            h("label", { for: "st-position" }, t("stPosition"), position)),
          h("label", { class: "settings-field", for: "st-greeting-en" }, t("stGreetingEn"), greetingEn),
          h("label", { class: "settings-field", for: "st-greeting-zh" }, t("stGreetingZh"), greetingZh)),
        preview),
      h("button", { type: "submit" }, t("stSaveLook")),
      lookNotice),
  );
  show(await api.get("/api/v1/admin/settings"));
}
