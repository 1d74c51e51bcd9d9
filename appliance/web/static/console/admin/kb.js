// Knowledge base: upload files or a whole folder (each file its own request, with its progress:
// the bytes sent, then queued, ingesting, done or failed), the documents with their status,
// chunks, language and when they were last ingested (re-index, delete), and a search
// playground showing the fused, BM25 and vector score of each chunk found.

import { h } from "../dom.js";

export const STRINGS = {
  en: {
    kbTitle: "Knowledge base",
    kbUpload: "Upload documents",
    kbFiles: "Files",
    kbFolder: "Folder",
    kbUploadButton: "Upload",
    kbAccepts: "Reads {types}; at most {size} a file. A folder keeps its sub-folders in the names.",
    kbUploads: "Uploads",
    kbNothingChosen: "Choose files or a folder first.",
    kbProgressOf: "Progress of {name}",
    kbFile: "File",
    kbProgress: "Progress",
    kbStatus: "Status",
    kbDocuments: "Documents",
    kbEmpty: "No documents yet: upload some above, or run appliance kb add PATH.",
    kbSummary: "{n} documents, {chunks} chunks; knowledge base version {version}.",
    kbName: "Document",
    kbChunks: "Chunks",
    kbLanguage: "Language",
    kbIngested: "Last ingested",
    kbActions: "Actions",
    kbReindex: "Re-index",
    kbReindexOf: "Re-index {name}",
    kbReindexAll: "Re-index all",
    kbReindexQueued: "{n} documents queued for re-indexing.",
    kbDelete: "Delete",
    kbDeleteOf: "Delete {name}",
    kbDeleteConfirm: "Delete {name} from the knowledge base? The bot stops citing it at once.",
    kbDeleted: "Deleted {name}.",
    kbError: "Could not do that: {message}",
    kbSearch: "Search playground",
    kbQuery: "Query",
    kbMode: "Mode",
    kbK: "Chunks to show",
    kbSearchButton: "Search",
    kbResults: "Results",
    kbNoHits: "No chunk matches this query.",
    kbRank: "#",
    kbWhere: "Document › section",
    kbText: "Text",
    kbFused: "Fused",
    kbBm25: "BM25",
    kbVector: "Vector (cosine)",
    kbRankOf: "rank {n}",
    kbScoresNote: "Fused: BM25 and vector scores each scaled to 0–1 and weighted. “–”: not among that side's candidates.",
    "mode.hybrid": "Hybrid (BM25 + vector)",
    "mode.bm25": "BM25 only",
    "mode.vector": "Vector only",
    "lang.en": "English",
    "lang.zh": "Chinese",
    "status.sending": "Uploading {p} %",
    "status.queued": "Queued",
    "status.ingesting": "Ingesting",
    "status.indexed": "Indexed",
    "status.failed": "Failed",
    "status.skipped": "Skipped: not a type the knowledge base reads",
    "outcome.added": "Done: added, {chunks}",
    "outcome.updated": "Done: updated, {chunks}",
    "outcome.unchanged": "Done: unchanged, {chunks}",
    kbOneChunk: "1 chunk",
    kbNChunks: "{n} chunks",
  },
  zh: {
    kbTitle: "知识库",
    kbUpload: "上传文档",
    kbFiles: "文件",
    kbFolder: "文件夹",
    kbUploadButton: "上传",
    kbAccepts: "支持 {types}；单个文件最大 {size}。上传文件夹时保留子文件夹路径。",
    kbUploads: "上传进度",
    kbNothingChosen: "请先选择文件或文件夹。",
    kbProgressOf: "{name} 的进度",
    kbFile: "文件",
    kbProgress: "进度",
    kbStatus: "状态",
    kbDocuments: "文档",
    kbEmpty: "还没有文档：请在上方上传，或运行 appliance kb add PATH。",
    kbSummary: "共 {n} 篇文档、{chunks} 个分块；知识库版本 {version}。",
    kbName: "文档",
    kbChunks: "分块",
    kbLanguage: "语言",
    kbIngested: "最近导入",
    kbActions: "操作",
    kbReindex: "重建索引",
    kbReindexOf: "重建 {name} 的索引",
    kbReindexAll: "全部重建索引",
    kbReindexQueued: "已将 {n} 篇文档排队重建索引。",
    kbDelete: "删除",
    kbDeleteOf: "删除 {name}",
    kbDeleteConfirm: "从知识库中删除 {name}？机器人将立即停止引用它。",
    kbDeleted: "已删除 {name}。",
    kbError: "操作失败：{message}",
    kbSearch: "检索测试",
    kbQuery: "查询",
    kbMode: "方式",
    kbK: "显示分块数",
    kbSearchButton: "检索",
    kbResults: "检索结果",
    kbNoHits: "没有与该查询匹配的分块。",
    kbRank: "#",
    kbWhere: "文档 › 章节",
    kbText: "内容",
    kbFused: "融合",
    kbBm25: "BM25",
    kbVector: "向量（余弦）",
    kbRankOf: "第 {n} 名",
    kbScoresNote: "融合分：BM25 与向量得分各自归一化到 0–1 后加权。“–”：不在该路召回的候选中。",
    "mode.hybrid": "混合（BM25 + 向量）",
    "mode.bm25": "仅 BM25",
    "mode.vector": "仅向量",
    "lang.en": "英文",
    "lang.zh": "中文",
    "status.sending": "正在上传 {p}%",
    "status.queued": "排队中",
    "status.ingesting": "正在导入",
    "status.indexed": "已索引",
    "status.failed": "失败",
    "status.skipped": "已跳过：知识库不支持该类型",
    "outcome.added": "完成：已添加，{chunks}",
    "outcome.updated": "完成：已更新，{chunks}",
    "outcome.unchanged": "完成：内容未变，{chunks}",
    kbOneChunk: "1 个分块",
    kbNChunks: "{n} 个分块",
  },
};

const UPLOAD_URL = "/api/v1/admin/kb/documents";

function megabytes(bytes) {
  return bytes >= 1048576 ? `${Math.round(bytes / 104857.6) / 10} MB` : `${Math.round(bytes / 1024)} KB`;
}

function suffix(name) {
  const base = name.split("/").pop();
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(dot).toLowerCase() : "";
}

/** POST one file as the raw body; `onProgress(fraction)` while it is sent. Resolves to the job. */
function send(api, name, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", UPLOAD_URL);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", api.csrf);
    xhr.setRequestHeader("X-Filename", encodeURIComponent(name));
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(event.loaded / event.total); };
    xhr.onerror = () => reject(new Error("network"));
    xhr.onload = () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new Error((data && data.message) || `HTTP ${xhr.status}`));
    };
    xhr.send(file);
  });
}

export async function render(root, { api, t }) {
  const notice = h("p", { role: "status" });
  const files = h("input", { id: "kb-files", type: "file", multiple: true });
  const folder = h("input", { id: "kb-folder", type: "file", multiple: true, webkitdirectory: true });
  const accepts = h("p", { class: "muted" });
  const uploads = h("tbody");
  const uploadsTable = h("table", { id: "kb-uploads", class: "grid", "aria-label": t("kbUploads"), hidden: true },
    head("kbFile", "kbProgress", "kbStatus"), uploads);
  const documents = h("tbody");
  const summary = h("p", { class: "muted" });
  const query = h("input", { id: "kb-query", type: "search", required: true, size: "48" });
  const mode = h("select", { id: "kb-mode" },
    ...["hybrid", "bm25", "vector"].map((m) => h("option", { value: m }, t(`mode.${m}`))));
  const k = h("select", { id: "kb-k" }, ...[3, 5, 10, 20].map((n) => h("option", { value: String(n), selected: n === 5 },
    String(n))));
  const results = h("tbody");
  const resultsTable = h("table", { class: "grid kb-results", "aria-label": t("kbResults"), hidden: true },
    h("thead", {}, h("tr", {}, ...[["kbRank", "num"], ["kbWhere", ""], ["kbText", ""], ["kbFused", "num"],
      ["kbBm25", "num"], ["kbVector", "num"]].map(([key, cls]) => h("th", { scope: "col", class: cls }, t(key))))),
    results);
  let types = [];
  let maxBytes = 0;
  const watched = new Map(); // job id → its upload row's update function (or null for a re-index)

  function head(...keys) {
    return h("thead", {}, h("tr", {}, ...keys.map((key) => h("th", { scope: "col" }, t(key)))));
  }

  function fail(err) {
    notice.className = "danger-text";
    notice.textContent = t("kbError", { message: err.message });
  }

  function say(text) {
    notice.className = "ok-text";
    notice.textContent = text;
  }

  function jobText(job) {
    if (job.status === "done") {
      const chunks = job.chunks === 1 ? t("kbOneChunk") : t("kbNChunks", { n: job.chunks });
      return t(`outcome.${job.outcome}`, { chunks });
    }
    if (job.status === "failed") return `${t("status.failed")}: ${job.error}`;
    return t(`status.${job.status}`);
  }

  async function loadDocuments() {
    const data = await api.get("/api/v1/admin/kb/documents");
    types = data.types;
    maxBytes = data.max_bytes;
    accepts.textContent = t("kbAccepts", { types: types.join(" "), size: megabytes(maxBytes) });
    const chunks = data.documents.reduce((sum, d) => sum + d.chunks, 0);
    summary.textContent = t("kbSummary", { n: data.documents.length, chunks, version: data.version });
    documents.replaceChildren(...data.documents.map((d) => h("tr", {},
      h("td", {}, h("div", {}, d.name), d.title && d.title !== d.name ? h("div", { class: "muted" }, d.title) : null),
      h("td", { class: d.status === "failed" ? "danger-text" : d.status === "indexed" ? "ok-text" : "" },
        t(`status.${d.status}`), d.error ? `: ${d.error}` : ""),
      h("td", { class: "num" }, String(d.chunks)),
      h("td", {}, t(`lang.${d.language}`)),
      h("td", {}, new Date(d.ingested_at_ms).toLocaleString()),
      h("td", { class: "kb-actions" },
        h("button", { type: "button", "aria-label": t("kbReindexOf", { name: d.name }), onclick: () => reindex(d) },
          t("kbReindex")), " ",
        h("button", { type: "button", class: "danger-text", "aria-label": t("kbDeleteOf", { name: d.name }),
          onclick: () => remove(d) }, t("kbDelete"))))));
    if (!data.documents.length) documents.appendChild(h("tr", {}, h("td", { colspan: "6" }, t("kbEmpty"))));
  }

  /** A row in the uploads table; returns its update function. */
  function uploadRow(name) {
    const bar = h("progress", { max: "1", value: 0, "aria-label": t("kbProgressOf", { name }) });
    const status = h("td", {}, t("status.sending", { p: 0 }));
    uploads.appendChild(h("tr", {}, h("td", {}, name), h("td", {}, bar), status));
    uploadsTable.hidden = false;
    return (state, fraction) => {
      if (state === "sending") {
        bar.value = fraction;
        status.textContent = t("status.sending", { p: Math.round(fraction * 100) });
      } else if (typeof state === "object") { // a job
        if (state.status === "done" || state.status === "failed") bar.value = 1;
        else bar.removeAttribute("value"); // indeterminate while it waits and is ingested
        status.textContent = jobText(state);
        status.className = state.status === "failed" ? "danger-text" : state.status === "done" ? "ok-text" : "";
      } else { // refused before it was queued, or skipped: the reason
        bar.value = 1;
        status.textContent = state;
        status.className = "danger-text";
      }
    };
  }

  async function upload(event) {
    event.preventDefault();
    const chosen = [...files.files].map((file) => [file.name, file, false])
      .concat([...folder.files].map((file) => [file.webkitRelativePath || file.name, file, true]));
    if (!chosen.length) {
      fail(new Error(t("kbNothingChosen")));
      return;
    }
    notice.textContent = "";
    files.value = "";
    folder.value = "";
    for (const [name, file, inFolder] of chosen) {
      const update = uploadRow(name);
      // In a folder, files the knowledge base cannot read (images, hidden files) are left out;
      // a file chosen by itself goes to the server, which says what is wrong with it.
      if (inFolder && (!types.includes(suffix(name)) || name.split("/").some((part) => part.startsWith(".")))) {
        update(t("status.skipped"));
        continue;
      }
      try {
        const job = await send(api, name, file, (fraction) => update("sending", fraction));
        update(job);
        watched.set(job.job_id, update);
      } catch (err) {
        update(`${t("status.failed")}: ${err.message}`);
      }
    }
    await poll();
  }

  async function reindex(d) {
    try {
      const data = await api.post(`/api/v1/admin/kb/documents/${encodeURIComponent(d.document_id)}/reindex`);
      for (const job of data.jobs) watched.set(job.job_id, null);
      await poll();
    } catch (err) {
      fail(err);
    }
  }

  async function reindexAll() {
    try {
      const data = await api.post("/api/v1/admin/kb/reindex");
      for (const job of data.jobs) watched.set(job.job_id, null);
      say(t("kbReindexQueued", { n: data.jobs.length }));
      await poll();
    } catch (err) {
      fail(err);
    }
  }

  async function remove(d) {
    if (!window.confirm(t("kbDeleteConfirm", { name: d.name }))) return;
    try {
      await api.del(`/api/v1/admin/kb/documents/${encodeURIComponent(d.document_id)}`);
      say(t("kbDeleted", { name: d.name }));
      await loadDocuments();
    } catch (err) {
      fail(err);
    }
  }

  /** Brings the watched jobs' rows up to date; the document list too while any is unfinished. */
  async function poll() {
    if (!watched.size) return;
    const data = await api.get("/api/v1/admin/kb/jobs");
    for (const job of data.jobs) {
      if (!watched.has(job.job_id)) continue;
      const update = watched.get(job.job_id);
      if (update) update(job);
      if (job.status === "done" || job.status === "failed") watched.delete(job.job_id);
    }
    await loadDocuments();
  }

  function score(value, rank) {
    if (value === null || value === undefined) return "–";
    // BM25 over a handful of documents gives terms found in most of them next to no weight.
    const shown = value !== 0 && Math.abs(value) < 0.001 ? value.toExponential(1) : value.toFixed(3);
    return [h("div", {}, shown), h("div", { class: "muted" }, t("kbRankOf", { n: rank }))];
  }

  async function search(event) {
    event.preventDefault();
    try {
      const data = await api.post("/api/v1/admin/kb/search",
        { query: query.value, mode: mode.value, k: Number(k.value) });
      results.replaceChildren(...data.hits.map((hit, i) => h("tr", {},
        h("td", { class: "num" }, String(i + 1)),
        h("td", {}, hit.section ? `${hit.document} › ${hit.section}` : hit.document),
        h("td", { class: "kb-text" }, hit.is_qa ? `Q: ${hit.text}\nA: ${hit.answer}` : hit.text),
        h("td", { class: "num" }, hit.score.toFixed(3)),
        h("td", { class: "num" }, score(hit.bm25_score, hit.bm25_rank)),
        h("td", { class: "num" }, score(hit.vector_similarity, hit.vector_rank)))));
      if (!data.hits.length) results.appendChild(h("tr", {}, h("td", { colspan: "6" }, t("kbNoHits"))));
      resultsTable.hidden = false;
      notice.textContent = "";
    } catch (err) {
      fail(err);
    }
  }

  root.append(
    h("h2", {}, t("kbTitle")),
    h("form", { class: "card", "aria-label": t("kbUpload"), onsubmit: upload },
      h("h3", {}, t("kbUpload")),
      h("div", { class: "form-row" },
        h("label", { for: "kb-files" }, t("kbFiles"), files),
        h("label", { for: "kb-folder" }, t("kbFolder"), folder),
        h("button", { type: "submit", class: "primary" }, t("kbUploadButton"))),
      accepts),
    notice,
    uploadsTable,
    h("div", { class: "form-row" }, h("h3", {}, t("kbDocuments")),
      h("button", { type: "button", onclick: reindexAll }, t("kbReindexAll"))),
    summary,
    h("table", { class: "grid", "aria-label": t("kbDocuments") },
      head("kbName", "kbStatus", "kbChunks", "kbLanguage", "kbIngested", "kbActions"), documents),
    h("form", { class: "card", "aria-label": t("kbSearch"), onsubmit: search },
      h("h3", {}, t("kbSearch")),
      h("div", { class: "form-row" },
        h("label", { for: "kb-query" }, t("kbQuery"), query),
        h("label", { for: "kb-mode" }, t("kbMode"), mode),
        h("label", { for: "kb-k" }, t("kbK"), k),
        h("button", { type: "submit", class: "primary" }, t("kbSearchButton"))),
      h("p", { class: "muted" }, t("kbScoresNote")),
      resultsTable),
  );
  await loadDocuments();
  const timer = setInterval(() => poll().catch(() => {}), 1000);
  return () => clearInterval(timer);
}
