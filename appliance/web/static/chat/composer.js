// The composer: the message box (Enter sends, Shift+Enter breaks the line, IME-safe), the
// debounced typing signal, images to send (picker or paste, with previews) and the optional
// pre-chat name and email.

const TYPING_IDLE_MS = 3000;

export class Composer {
  constructor(form, { t, onSubmit, onTyping, onHandoff }) {
    this.form = form;
    this.t = t;
    this.onSubmit = onSubmit;
    this.onTyping = onTyping;
    this.box = form.querySelector("#message");
    this.sendButton = form.querySelector("#send");
    this.attachButton = form.querySelector("#attach");
    this.fileInput = form.querySelector("#file");
    this.previews = form.querySelector("#previews");
    this.hint = form.querySelector("#hint");
    this.prechat = form.querySelector("#prechat");
    this.handoffButton = form.querySelector("#handoff");
    this.files = [];
    this.typing = false;
    this.typingTimer = 0;
    this.attachAllowed = false;
    this.closed = false;

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.box.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
      event.preventDefault();
      this.submit();
    });
    this.box.addEventListener("input", () => {
      this.autosize();
      this.noteTyping();
    });
    this.box.addEventListener("paste", (event) => this.pasted(event));
    this.attachButton.addEventListener("click", () => {
      if (this.attachAllowed) this.fileInput.click();
      else this.showHint(this.t("attachHint"));
    });
    this.fileInput.addEventListener("change", () => {
      this.addFiles([...this.fileInput.files]);
      this.fileInput.value = "";
    });
    this.handoffButton.addEventListener("click", () => onHandoff());
    this.setAttachAllowed(false);
  }

  submit() {
    if (this.closed) return;
    const text = this.box.value.trim();
    if (!text && !this.files.length) return;
    const files = this.files;
    this.files = [];
    this.renderPreviews();
    this.box.value = "";
    this.autosize();
    this.stopTyping();
    this.hideHint();
    this.onSubmit({ text, files });
    this.box.focus();
  }

  autosize() {
    this.box.style.height = "auto";
    this.box.style.height = `${Math.min(this.box.scrollHeight, 140)}px`;
  }

  noteTyping() {
    clearTimeout(this.typingTimer);
    if (!this.box.value.trim()) {
      this.stopTyping();
      return;
    }
    if (!this.typing) {
      this.typing = true;
      this.onTyping(true);
    }
    this.typingTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.typingTimer);
    if (this.typing) {
      this.typing = false;
      this.onTyping(false);
    }
  }

  pasted(event) {
    const items = [...(event.clipboardData?.items || [])];
    const images = items.filter((item) => item.kind === "file" && item.type.startsWith("image/"))
      .map((item) => item.getAsFile()).filter(Boolean);
    if (!images.length) return;
    event.preventDefault();
    if (this.attachAllowed) this.addFiles(images);
    else this.showHint(this.t("attachHint"));
  }

  addFiles(files) {
    for (const file of files) {
      if (!file.type.startsWith("image/")) continue;
      this.files.push({ file, url: URL.createObjectURL(file), name: file.name || this.t("image") });
    }
    this.renderPreviews();
  }

  renderPreviews() {
    this.previews.replaceChildren();
    for (const entry of this.files) {
      const item = document.createElement("li");
      item.className = "preview";
      const img = document.createElement("img");
      img.src = entry.url;
      img.alt = entry.name;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "preview__remove";
      remove.setAttribute("aria-label", this.t("removeImage", { name: entry.name }));
      remove.textContent = "×";
      remove.addEventListener("click", () => {
        this.files = this.files.filter((other) => other !== entry);
        URL.revokeObjectURL(entry.url);
        this.renderPreviews();
        this.box.focus();
      });
      item.append(img, remove);
      this.previews.append(item);
    }
    this.previews.hidden = this.files.length === 0;
  }

  setAttachAllowed(allowed) {
    this.attachAllowed = allowed;
    this.attachButton.setAttribute("aria-disabled", String(!allowed));
    this.attachButton.title = allowed ? this.t("attach") : this.t("attachHint");
    if (allowed && this.hint.textContent === this.t("attachHint")) this.hideHint();
  }

  setClosed(closed) {
    this.closed = closed;
    this.box.disabled = closed;
    this.sendButton.disabled = closed;
    this.attachButton.disabled = closed;
    this.box.placeholder = closed ? this.t("closedPlaceholder") : this.t("messagePlaceholder");
    this.form.classList.toggle("composer--closed", closed);
    if (closed) {
      this.stopTyping();
      this.files = [];
      this.renderPreviews();
    }
  }

  setHandoffVisible(visible) {
    this.handoffButton.hidden = !visible;
  }

  showPrechat(show) {
    this.prechat.hidden = !show;
  }

  /** Name and email typed in the pre-chat fields (empty strings when left blank). */
  profile() {
    return {
      name: this.prechat.querySelector("[name=visitor-name]").value.trim(),
      email: this.prechat.querySelector("[name=visitor-email]").value.trim(),
    };
  }

  showHint(text) {
    this.hint.textContent = text;
    this.hint.hidden = false;
  }

  hideHint() {
    this.hint.hidden = true;
    this.hint.textContent = "";
  }

  focus() {
    this.box.focus();
  }
}
