// The desk HTTP API: same-origin cookie session, X-CSRF-Token on every state-changing call.

export class ApiError extends Error {
  constructor(status, code, message, retryAfterS = 0) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || "";
    this.retryAfterS = retryAfterS;
  }
}

export class DeskApi {
  constructor() {
    this.csrf = "";
    /** Called once with the ApiError when a signed-in call comes back 401. */
    this.onUnauthorized = null;
  }

  async request(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET" && method !== "HEAD" && this.csrf) headers["X-CSRF-Token"] = this.csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, "network", String(err && err.message ? err.message : err));
    }
    if (response.status === 204) return null;
    let data = null;
    const text = await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const retry = parseInt(response.headers.get("Retry-After") || "0", 10) || 0;
      const err = new ApiError(
        response.status,
        data && data.error,
        (data && data.message) || response.statusText,
        retry,
      );
      if (response.status === 401 && this.onUnauthorized && !path.startsWith("/api/v1/auth/")) {
        this.onUnauthorized(err);
      }
      throw err;
    }
    return data;
  }

  get(path) { return this.request("GET", path); }
  post(path, body) { return this.request("POST", path, body); }
  put(path, body) { return this.request("PUT", path, body); }
  patch(path, body) { return this.request("PATCH", path, body); }
  del(path) { return this.request("DELETE", path); }

  // auth
  me() { return this.get("/api/v1/auth/me"); }
  login(username, password) { return this.post("/api/v1/auth/login", { username, password }); }
  logout() { return this.post("/api/v1/auth/logout"); }

  // desk
  conversations(filter, before) {
    const query = new URLSearchParams({ filter, limit: "50" });
    if (before) query.set("before", before);
    return this.get(`/api/v1/desk/conversations?${query}`);
  }
  conversation(id) { return this.get(`/api/v1/desk/conversations/${encodeURIComponent(id)}`); }
  act(id, action, body) {
    return this.post(`/api/v1/desk/conversations/${encodeURIComponent(id)}/${action}`, body);
  }
  agents() { return this.get("/api/v1/desk/agents"); }
  presence(status) { return this.post("/api/v1/desk/presence", { status }); }
  canned() { return this.get("/api/v1/desk/canned"); }
  tickets(status) { return this.get(`/api/v1/desk/tickets?status=${encodeURIComponent(status)}`); }
  answerTicket(id, text) {
    return this.post(`/api/v1/desk/tickets/${encodeURIComponent(id)}/answer`, { text });
  }
}

export function attachmentUrl(id) {
  return `/api/v1/desk/attachments/${encodeURIComponent(id)}`;
}
