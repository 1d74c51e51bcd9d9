// The visitor's side of the /ws/visitor protocol (see the desk contract): the stored conversation
// id and token, resume on every (re)connect, and an outbox so nothing typed offline is lost.
//
// Invariants:
// - Frames leave in the order they were queued. The server answers message and handoff frames in
//   order with one `reply` (or `error`) each, so the oldest in-flight entry is the one answered.
// - Until the first reply has told us the conversation id, at most one frame is in flight: a
//   second one sent without the id would open a second conversation.
// - After a reconnect nothing leaves before the `history` frame (or the resume's error): entries
//   the server already stored are recognised in that history and not sent twice.

import { Connection, visitorSocketUrl } from "./connection.js";

const TOKEN_KEY = "appliance.visitor_token";
const CONVERSATION_KEY = "appliance.conversation_id";

function load(key) {
  try {
    return localStorage.getItem(key) || "";
  } catch {
    return "";
  }
}

function store(key, value) {
  try {
    if (value) localStorage.setItem(key, value);
    else localStorage.removeItem(key);
  } catch {
    /* storage may be blocked (private mode, third-party iframe); the session still works */
  }
}

/** JSON over HTTP with the visitor token; throws an Error carrying the server's message. */
export async function api(path, { method = "GET", token = "", json, body, contentType, as = "json" } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (contentType) {
    headers["Content-Type"] = contentType;
  }
  const response = await fetch(path, { method, headers, body, credentials: "omit" });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const problem = await response.json();
      if (problem && problem.message) message = problem.message;
    } catch {
      /* not JSON */
    }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  if (as === "blob") return response.blob();
  if (response.status === 204) return null;
  return response.json();
}

export class VisitorSession {
  /**
   * handlers: {state(name), token(text, entry|null), reply(frame, entry|null), message(message), history(messages),
   * status(frame), typing(frame), error(frame, entry|null), reset()} — any may be missing.
   * An outbox entry is {kind: "message"|"handoff", frame, ready, profile?, onSent?, onAck?, onFail?}.
   */
  constructor({ language, handlers }) {
    this.language = language;
    this.handlers = handlers;
    this.conversationId = load(CONVERSATION_KEY);
    this.token = load(TOKEN_KEY);
    if (!this.token) this.conversationId = "";
    this.outbox = [];
    this.inflight = [];
    this.resuming = false;
    this.connection = new Connection(visitorSocketUrl(), {
      onOpen: () => this.opened(),
      onFrame: (frame) => this.received(frame),
      onState: (state) => this.emit("state", state),
    });
  }

  start() {
    this.connection.start();
  }

  get connected() {
    return this.connection.isOpen;
  }

  emit(name, ...args) {
    const handler = this.handlers[name];
    if (handler) handler(...args);
  }

  rememberToken(token) {
    if (token && token !== this.token) {
      this.token = token;
      store(TOKEN_KEY, token);
    }
  }

  rememberConversation(id) {
    if (id && id !== this.conversationId) {
      this.conversationId = id;
      store(CONVERSATION_KEY, id);
    }
  }

  forgetConversation() {
    this.conversationId = "";
    store(CONVERSATION_KEY, "");
  }

  forgetToken() {
    this.token = "";
    store(TOKEN_KEY, "");
    this.forgetConversation();
  }

  /** Forget the conversation (keep the token) and start over on a fresh socket. */
  newConversation() {
    for (const entry of [...this.inflight, ...this.outbox]) entry.onFail?.(null);
    this.outbox = [];
    this.inflight = [];
    this.resuming = false;
    this.forgetConversation();
    this.connection.restart();
  }

  enqueue(entry) {
    this.outbox.push(entry);
    this.flush();
  }

  sendMessage(text, { attachments = [], profile = null, ready = true, ...callbacks } = {}) {
    const entry = { kind: "message", frame: { type: "message", text, attachments }, profile, ready, ...callbacks };
    this.enqueue(entry);
    return entry;
  }

  handoff() {
    this.enqueue({ kind: "handoff", frame: { type: "handoff" }, ready: true });
  }

  /** Typing frames are best effort: never queued, only sent for a known conversation. */
  typing(isTyping) {
    if (!this.conversationId || !this.token || this.resuming) return;
    this.connection.send({ type: "typing", conversation_id: this.conversationId, visitor_token: this.token,
                           typing: isTyping });
  }

  flush() {
    if (!this.connection.isOpen || this.resuming) return;
    while (this.outbox.length) {
      const entry = this.outbox[0];
      if (!entry.ready) return;
      if (!this.conversationId && this.inflight.length) return;
      if (!this.connection.send(this.frameFor(entry))) return;
      this.outbox.shift();
      this.inflight.push(entry);
      entry.onSent?.();
    }
  }

  frameFor(entry) {
    const frame = { ...entry.frame, language: this.language };
    if (this.conversationId) frame.conversation_id = this.conversationId;
    if (this.token) frame.visitor_token = this.token;
    if (entry.kind === "message" && !this.conversationId && entry.profile) frame.profile = entry.profile;
    if (entry.kind === "message" && !frame.attachments.length) delete frame.attachments;
    return frame;
  }

  opened() {
    // Whatever was in flight on the old socket is unconfirmed: it goes back to the front of the
    // outbox, and the history below tells which of it the server already has.
    this.unconfirmed = this.inflight;
    this.outbox = [...this.inflight, ...this.outbox];
    this.inflight = [];
    if (this.conversationId && this.token) {
      this.resuming = true;
      this.connection.send({ type: "resume", conversation_id: this.conversationId, visitor_token: this.token });
    } else {
      this.unconfirmed = [];
      this.flush();
    }
  }

  /** Drop from the outbox the unconfirmed messages whose text ends the stored history. */
  settleUnconfirmed(messages) {
    const sent = (this.unconfirmed || []).filter((entry) => entry.kind === "message");
    this.unconfirmed = [];
    if (!sent.length) return;
    const visitorTexts = messages.filter((m) => m.role === "visitor").map((m) => m.text || "");
    for (let count = sent.length; count > 0; count -= 1) {
      const tail = visitorTexts.slice(-count);
      if (tail.length === count && sent.slice(0, count).every((entry, i) => entry.frame.text === tail[i])) {
        for (const entry of sent.slice(0, count)) {
          this.outbox.splice(this.outbox.indexOf(entry), 1);
          entry.onAck?.(null);
        }
        return;
      }
    }
  }

  belongsHere(frame) {
    if (frame.type === "reply" || !frame.conversation_id) return true;
    if (this.conversationId) return frame.conversation_id === this.conversationId;
    return this.inflight.length > 0; // the conversation our first frame is creating
  }

  received(frame) {
    const type = frame.type || "reply";
    if (!this.belongsHere(frame)) return;
    switch (type) {
      case "token":
        this.emit("token", frame.text || "", this.inflight[0] || null);
        break;
      case "reply": {
        this.rememberToken(frame.visitor_token);
        this.rememberConversation(frame.conversation_id);
        const entry = this.inflight.shift() || null;
        entry?.onAck?.(frame);
        this.emit("reply", frame, entry);
        this.flush();
        break;
      }
      case "history":
        this.resuming = false;
        this.settleUnconfirmed(frame.messages || []);
        this.emit("history", frame.messages || []);
        this.flush();
        break;
      case "message":
        this.emit("message", frame.message || frame);
        break;
      case "status":
        this.emit("status", frame);
        break;
      case "typing":
        this.emit("typing", frame);
        break;
      case "error": {
        // 401: the stored token is not valid here (say, the appliance was set up anew): forget
        // it with its conversation, and try the message once more as a new visitor.
        const badToken = frame.status === 401 && Boolean(this.token);
        if (badToken) this.forgetToken();
        if (this.resuming) {
          // The stored conversation is gone or not ours any more: begin a new one.
          this.resuming = false;
          this.unconfirmed = [];
          this.forgetConversation();
          this.emit("reset");
        } else {
          const entry = this.inflight.shift() || null;
          if (badToken && entry && !entry.retried) {
            entry.retried = true;
            this.outbox.unshift(entry);
          } else {
            entry?.onFail?.(frame);
            this.emit("error", frame, entry);
          }
        }
        this.flush();
        break;
      }
      default:
        break;
    }
  }
}
