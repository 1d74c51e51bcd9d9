// Images: upload with the visitor token, and show stored ones (GET needs the token, so an <img>
// cannot point at the URL: the bytes are fetched and shown through an object URL).

import { api } from "./session.js";

export async function uploadImage(file, token) {
  const body = await api("/api/v1/attachments", {
    method: "POST", token, body: file, contentType: file.type || "application/octet-stream",
  });
  return body.attachment_id;
}

export class AttachmentImages {
  /** token() returns the current visitor token. */
  constructor(token) {
    this.token = token;
    this.urls = new Map();
  }

  /** Remember a local file's object URL for an uploaded id (no download for our own images). */
  remember(id, url) {
    this.urls.set(id, Promise.resolve(url));
  }

  url(id) {
    if (!this.urls.has(id)) {
      const loading = api(`/api/v1/attachments/${encodeURIComponent(id)}`, { token: this.token(), as: "blob" })
        .then((blob) => URL.createObjectURL(blob));
      loading.catch(() => this.urls.delete(id));
      this.urls.set(id, loading);
    }
    return this.urls.get(id);
  }
}
