/*
 * The appliance chat widget loader. Put on any page:
 *   <script src="https://support.example/widget.js" data-title="Help" data-color="#0b5cff"
 *           data-lang="zh" data-position="right" async></script>
 * It asks <origin>/api/v1/widget/settings for the look an admin chose on the console's Settings
 * page (title, accent colour, launcher side, greeting); an attribute given here wins over it, and
 * with neither the built-in look is used (the chat page reads the greeting itself).
 * It adds a launcher button and, on first click, an iframe with <origin>/chat?embed=1. The page
 * and the iframe exchange only two postMessage events, both from the iframe:
 *   {type: "appliance:close"}           hide the chat
 *   {type: "appliance:unread", count}   show count on the launcher (0 clears it)
 * The one global is window.ApplianceWidget = {open, close, toggle}.
 */
(function () {
  "use strict";
  if (window.ApplianceWidget) return;

  var script = document.currentScript;
  if (!script || !script.src) return;
  var data = script.dataset;
  var origin = new URL(script.src, location.href).origin;
  var lang = (data.lang || navigator.language || "").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  var label = lang === "zh" ? "在线客服" : "Chat with us";
  var title, accent, color, side; // accent: the colour chosen by the page or the admin, if any
  var SVG = "http://www.w3.org/2000/svg";

  var launcher, badge, frame, iconChat, iconClose;
  var isOpen = false;

  // Host stylesheets must not reach the widget: inline !important beats them.
  function css(el, rules) {
    for (var name in rules) el.style.setProperty(name, rules[name], "important");
  }

  function icon(path, size) {
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", size);
    svg.setAttribute("height", size);
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var p = document.createElementNS(SVG, "path");
    p.setAttribute("d", path);
    p.setAttribute("fill", "currentColor");
    svg.appendChild(p);
    css(svg, { display: "block", margin: "auto", width: size + "px", height: size + "px", "pointer-events": "none" });
    return svg;
  }

  function inkFor(c) {
    var m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(c);
    if (!m) return "#fff";
    var h = m[1].length === 3 ? m[1].replace(/./g, "$&$&") : m[1];
    var y = 0.299 * parseInt(h.slice(0, 2), 16) + 0.587 * parseInt(h.slice(2, 4), 16) + 0.114 * parseInt(h.slice(4, 6), 16);
    return y > 170 ? "#111827" : "#fff";
  }

  function useLook(look) {
    title = data.title || look.title || "";
    var wanted = data.color || look.color || "";
    accent = wanted && CSS.supports("color", wanted) ? wanted : "";
    color = accent || "#0b5cff";
    var position = data.position || look.position;
    side = position === "left" ? "left" : "right";
  }

  function chatUrl() {
    var q = new URLSearchParams({ embed: "1", lang: lang, title: title, color: accent, page: location.href });
    return origin + "/chat?" + q.toString();
  }

  function build() {
    launcher = document.createElement("button");
    launcher.type = "button";
    launcher.setAttribute("aria-label", label);
    launcher.setAttribute("aria-expanded", "false");
    launcher.title = title || label;
    css(launcher, {
      all: "initial", position: "fixed", bottom: "20px", top: "auto", width: "56px", height: "56px", padding: "0",
      margin: "0", border: "0", "border-radius": "50%", background: color, color: inkFor(color),
      "box-shadow": "0 6px 20px rgba(16,24,40,.25)", cursor: "pointer", "z-index": "2147483646",
      display: "block", "line-height": "0", "min-width": "0", "min-height": "0", transform: "none",
      opacity: "1", visibility: "visible", "box-sizing": "border-box", outline: "revert",
    });
    launcher.style.setProperty(side, "20px", "important");
    launcher.style.setProperty(side === "left" ? "right" : "left", "auto", "important");
    iconChat = icon("M12 3C6.5 3 2 6.9 2 11.7c0 2.4 1.1 4.6 3 6.2-.2 1.3-.8 2.6-1.8 3.6 2 0 3.8-.7 5.2-1.8 1.1.3 2.3.5 3.6.5 5.5 0 10-3.9 10-8.6S17.5 3 12 3z", 28);
    iconClose = icon("M6.4 5L5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z", 26);
    css(iconClose, { display: "none" });
    badge = document.createElement("span");
    badge.setAttribute("aria-hidden", "true");
    css(badge, {
      all: "initial", position: "absolute", top: "-4px", right: "-4px", "min-width": "20px", height: "20px",
      padding: "0 5px", "border-radius": "10px", background: "#d92d20", color: "#fff",
      font: "600 12px/20px system-ui, -apple-system, 'Segoe UI', sans-serif", "text-align": "center",
      "box-sizing": "border-box", display: "none", border: "2px solid #fff",
    });
    launcher.appendChild(iconChat);
    launcher.appendChild(iconClose);
    launcher.appendChild(badge);
    launcher.addEventListener("click", toggle);
    document.body.appendChild(launcher);
    window.addEventListener("message", onMessage);
  }

  function makeFrame() {
    frame = document.createElement("iframe");
    frame.title = "Chat";
    frame.src = chatUrl();
    frame.setAttribute("allow", "clipboard-read; clipboard-write");
    css(frame, {
      all: "initial", position: "fixed", bottom: "88px", top: "auto",
      width: "min(380px, calc(100vw - 32px))", height: "min(600px, calc(100vh - 90px))",
      "max-width": "100vw", "max-height": "calc(100vh - 90px)", border: "0", margin: "0", padding: "0",
      "border-radius": "16px", "box-shadow": "0 12px 48px rgba(16,24,40,.28)", background: "#fff",
      "z-index": "2147483647", display: "none", "color-scheme": "light",
    });
    frame.style.setProperty(side, "16px", "important");
    frame.style.setProperty(side === "left" ? "right" : "left", "auto", "important");
    document.body.appendChild(frame);
  }

  function setUnread(count) {
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.style.setProperty("display", count > 0 && !isOpen ? "block" : "none", "important");
    if (count > 0 && !isOpen) launcher.setAttribute("aria-description", String(count));
    else launcher.removeAttribute("aria-description");
  }

  function open() {
    if (!launcher) return;
    if (!frame) makeFrame();
    isOpen = true;
    frame.style.setProperty("display", "block", "important");
    launcher.setAttribute("aria-expanded", "true");
    iconChat.style.setProperty("display", "none", "important");
    iconClose.style.setProperty("display", "block", "important");
    setUnread(0);
    frame.focus();
  }

  function close() {
    if (!launcher || !frame) return;
    var hadFocus = document.activeElement === frame;
    isOpen = false;
    frame.style.setProperty("display", "none", "important");
    launcher.setAttribute("aria-expanded", "false");
    iconChat.style.setProperty("display", "block", "important");
    iconClose.style.setProperty("display", "none", "important");
    if (hadFocus) launcher.focus();
  }

  function toggle() {
    if (isOpen) close();
    else open();
  }

  function onMessage(event) {
    if (event.origin !== origin || !frame || event.source !== frame.contentWindow) return;
    var message = event.data;
    if (!message || typeof message !== "object") return;
    if (message.type === "appliance:close") close();
    else if (message.type === "appliance:unread") setUnread(Math.max(0, parseInt(message.count, 10) || 0));
  }

  function start() {
    fetch(origin + "/api/v1/widget/settings", { credentials: "omit" })
      .then(function (response) { return response.ok ? response.json() : {}; })
      .catch(function () { return {}; })
      .then(function (look) {
        useLook(look && typeof look === "object" ? look : {});
        build();
      });
  }

  window.ApplianceWidget = Object.freeze({ open: open, close: close, toggle: toggle });
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
