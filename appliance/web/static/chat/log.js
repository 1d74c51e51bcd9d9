// The conversation log: message bubbles, the streamed bot draft, and merging a history frame into
// what is already shown (by message id, so nothing appears twice). All user, agent, bot and
// document text goes in through text nodes only.

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]}，。；：！？）]/g;

/** Append text to parent as text nodes, with http(s) links as <a> elements (text set as text). */
function appendLinkified(parent, text) {
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    if (match.index > last) parent.append(document.createTextNode(text.slice(last, match.index)));
    const link = document.createElement("a");
    link.href = match[0];
    link.textContent = match[0];
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    parent.append(link);
    last = match.index + match[0].length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

export function citationLine(citations, t) {
  const seen = new Set();
  const parts = [];
  for (const citation of citations || []) {
    const label = [citation.document, citation.section].filter(Boolean).join(" › ");
    if (label && !seen.has(label)) {
      seen.add(label);
      parts.push(label);
    }
  }
  return parts.length ? t("sources", { list: parts.join(", ") }) : "";
}

export class MessageLog {
  /** images: an AttachmentImages (attachments.js) that turns attachment ids into object URLs. */
  constructor(root, { t, images, onChange, scroller = root }) {
    this.root = root;
    this.scroller = scroller;
    this.t = t;
    this.images = images;
    this.onChange = onChange || (() => {});
    this.byId = new Map();
    this.draft = null;
  }

  get isEmpty() {
    return this.root.childElementCount === 0;
  }

  clear() {
    this.root.replaceChildren();
    this.byId.clear();
    this.draft = null;
    this.changed();
  }

  nearEnd() {
    const box = this.scroller;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  /** Call after a change; near is nearEnd() from before it (a reader scrolled up stays put). */
  changed(near = true) {
    this.onChange();
    if (near) this.scrollToEnd();
  }

  scrollToEnd() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  who(message) {
    if (message.role === "visitor") return this.t("you");
    if (message.role === "bot") return this.t("assistant");
    if (message.role === "agent") return message.author || this.t("agent");
    return this.t("notice");
  }

  build(message, localUrls = []) {
    const role = ["visitor", "bot", "agent"].includes(message.role) ? message.role : "system";
    const item = element("div", `msg msg--${role}`);
    if (message.id) item.dataset.id = message.id;
    const who = element("span", role === "bot" || role === "agent" ? "msg__who" : "sr-only", this.who(message));
    item.append(who);
    const bubble = element("div", "msg__bubble");
    const text = element("p", "msg__text");
    appendLinkified(text, message.text || "");
    bubble.append(text);
    text.hidden = !message.text;
    const ids = message.attachments || [];
    if (ids.length || localUrls.length) {
      const gallery = element("div", "msg__images");
      localUrls.forEach((url) => gallery.append(this.image(url)));
      ids.slice(localUrls.length).forEach((id) => gallery.append(this.attachmentImage(id)));
      bubble.append(gallery);
    }
    item.append(bubble);
    const sources = citationLine(message.citations, this.t);
    if (sources && role === "bot") item.append(element("p", "msg__sources", sources));
    if (message.created_ms) item.title = new Date(message.created_ms).toLocaleString();
    return item;
  }

  /** An <img> that keeps the log pinned to its end when it loads (if the reader was there). */
  picture(className) {
    const img = element("img", className);
    img.alt = this.t("image");
    img.addEventListener("load", () => {
      const box = this.scroller;
      if (box.scrollHeight - box.scrollTop - box.clientHeight - img.clientHeight < 80) this.scrollToEnd();
    });
    return img;
  }

  image(url) {
    const img = this.picture("msg__image");
    img.src = url;
    return img;
  }

  attachmentImage(id) {
    const img = this.picture("msg__image msg__image--loading");
    this.images.url(id).then(
      (url) => {
        img.src = url;
        img.classList.remove("msg__image--loading");
      },
      () => {
        img.alt = this.t("imageFailed");
        img.classList.replace("msg__image--loading", "msg__image--broken");
      },
    );
    return img;
  }

  /** Show a message from the server unless one with its id is already shown. */
  add(message) {
    if (message.id && this.byId.has(message.id)) return this.byId.get(message.id);
    const near = this.nearEnd();
    const item = this.build(message);
    if (message.id) this.byId.set(message.id, item);
    if (this.draft && this.draft === this.root.lastElementChild) this.root.insertBefore(item, this.draft);
    else this.root.append(item);
    this.changed(near);
    return item;
  }

  /** The visitor's own message, shown at once; the returned handle follows its delivery. */
  addOwn(text, localUrls) {
    const item = this.build({ role: "visitor", text }, localUrls);
    item.dataset.own = "pending";
    const state = element("p", "msg__state");
    state.hidden = true;
    item.append(state);
    this.root.append(item);
    this.changed(true);
    const setState = (name) => {
      item.dataset.own = name;
      state.hidden = name !== "queued" && name !== "failed";
      state.textContent = name === "queued" ? this.t("queued") : name === "failed" ? this.t("failed") : "";
    };
    return { item, setState };
  }

  /** A local notice (not stored on the server), centred like a system message. */
  notice(text) {
    const near = this.nearEnd();
    const item = this.build({ role: "system", text });
    item.dataset.local = "notice";
    this.root.append(item);
    this.changed(near);
  }

  /**
   * Where the answer to the own message `anchor` goes: after it and whatever followed it, but
   * before the next own message (sent in a burst after reconnecting, answered one by one).
   */
  answerSlot(anchor) {
    if (!anchor || anchor.parentNode !== this.root) return null;
    let next = anchor.nextElementSibling;
    while (next && next.dataset.own === undefined) next = next.nextElementSibling;
    return next;
  }

  appendToken(text, anchor = null) {
    const near = this.nearEnd();
    if (!this.draft) {
      this.draft = this.build({ role: "bot", text: "" });
      this.draft.classList.add("msg--draft");
      this.draft.setAttribute("aria-busy", "true");
      this.root.insertBefore(this.draft, this.answerSlot(anchor));
    }
    const body = this.draft.querySelector(".msg__text");
    body.hidden = false;
    body.append(document.createTextNode(text));
    this.changed(near);
  }

  discardDraft() {
    if (this.draft) this.draft.remove();
    this.draft = null;
    this.changed();
  }

  /** The final reply frame: its text replaces the streamed draft; reply null removes the draft. */
  finishReply(frame, anchor = null) {
    const reply = frame.reply;
    const near = this.nearEnd();
    if (!reply || (frame.message_id && this.byId.has(frame.message_id))) {
      this.discardDraft();
      return null;
    }
    const item = this.build({ id: frame.message_id, role: "bot", text: reply.text, citations: reply.citations });
    if (this.draft) this.draft.replaceWith(item);
    else this.root.insertBefore(item, this.answerSlot(anchor));
    this.draft = null;
    if (frame.message_id) this.byId.set(frame.message_id, item);
    this.changed(near);
    return item;
  }

  /**
   * Merge a history frame: the server's order wins; shown elements are reused by id (or, for the
   * visitor's own delivered messages that have no id yet, by text in order); own messages not yet
   * delivered and local notices stay after it. The draft of a reply never finished is dropped.
   */
  merge(messages) {
    const previous = [...this.root.children].filter((el) => el !== this.draft);
    const ownDelivered = previous.filter((el) => el.dataset.own === "sent" && !el.dataset.id);
    const used = new Set();
    const ordered = [];
    for (const message of messages) {
      let item = message.id ? this.byId.get(message.id) : undefined;
      if (!item && message.role === "visitor") {
        const index = ownDelivered.findIndex((el) => !used.has(el) && el.querySelector(".msg__text").textContent === (message.text || ""));
        if (index >= 0) item = ownDelivered[index];
      }
      if (!item) item = this.build(message);
      if (message.id) {
        item.dataset.id = message.id;
        this.byId.set(message.id, item);
      }
      used.add(item);
      ordered.push(item);
    }
    // Own messages still on their way and local notices stay; a delivered own message not found
    // by text is in the history under its stored form, so it goes.
    const kept = previous.filter((el) => !used.has(el)
      && ((el.dataset.own && el.dataset.own !== "sent") || el.dataset.local || el.dataset.id));
    this.draft = null;
    this.root.replaceChildren(...ordered, ...kept);
    this.scrollToEnd();
    this.onChange();
  }
}
