// A WebSocket that reconnects itself: 1 s, 2 s, 5 s, then every 10 s until it is open again.
// It knows nothing about conversations; VisitorSession (session.js) builds the protocol on top.

const BACKOFF_MS = [1000, 2000, 5000, 10000];

export function visitorSocketUrl(loc = location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}/ws/visitor`;
}

export class Connection {
  /**
   * onOpen(), onFrame(object), onState("connecting" | "open" | "reconnecting") are called as the
   * socket changes; a frame that is not a JSON object is dropped.
   */
  constructor(url, { onOpen, onFrame, onState }) {
    this.url = url;
    this.onOpen = onOpen;
    this.onFrame = onFrame;
    this.onState = onState;
    this.socket = null;
    this.failures = 0;
    this.timer = 0;
    this.stopped = false;
    window.addEventListener("online", () => this.retryNow());
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  /** Drop the current socket (the server forgets what it pushed to it) and open a fresh one. */
  restart() {
    const old = this.socket;
    this.socket = null;
    if (old) {
      old.onclose = old.onmessage = old.onerror = old.onopen = null;
      old.close(1000, "restart");
    }
    clearTimeout(this.timer);
    this.failures = 0;
    this.connect();
  }

  send(frame) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  retryNow() {
    if (this.stopped || this.socket) return;
    clearTimeout(this.timer);
    this.connect();
  }

  connect() {
    this.timer = 0;
    this.onState(this.failures ? "reconnecting" : "connecting");
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.failures = 0;
      this.onState("open");
      this.onOpen();
    };
    socket.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame === "object" && !Array.isArray(frame)) this.onFrame(frame);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.scheduleRetry();
    };
  }

  scheduleRetry() {
    if (this.stopped) return;
    const delay = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];
    this.failures += 1;
    this.onState("reconnecting");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
