// Users and tokens: the team's console accounts (add one; change its role, capacity or display
// name; give it a new password; disable or enable it) and the API tokens of scripts (issue one,
// revoke it). A generated password and a new token are shown once, right after they are made;
// the server never returns them again. An admin cannot disable or demote their own account, nor
// give it a new password here (that would end the session showing it).

import { h } from "../dom.js";

export const STRINGS = {
  en: {
    usTitle: "Users and tokens",
    usAdd: "Add an account",
    usName: "Name",
    usAccountName: "Account name",
    usRole: "Role",
    usDisplayName: "Display name",
    usCapacity: "Capacity",
    usCapacityHint: "Capacity (empty: the default)",
    usPassword: "Password (empty: generate one)",
    usAddButton: "Add account",
    usNewPassword: "New password",
    usPasswordOnce: "Password of {name} (shown once; give it to them):",
    usAccounts: "Accounts",
    usPresence: "Presence",
    usState: "State",
    usActions: "Actions",
    usEnabled: "enabled",
    usDisabled: "disabled",
    usYou: "(you)",
    usDisplayNameOf: "Display name of {name}",
    usRoleOf: "Role of {name}",
    usCapacityOf: "Capacity of {name}",
    usSave: "Save",
    usSaveOf: "Save changes to {name}",
    usSaved: "Saved {name}.",
    usNothing: "Nothing changed for {name}.",
    usReset: "New password",
    usResetOf: "Give {name} a new password",
    usResetConfirm: "Give {name} a new password? Their open consoles are signed out.",
    usDisable: "Disable",
    usDisableOf: "Disable {name}",
    usDisableConfirm: "Disable {name}? Their open consoles are signed out and they cannot sign in.",
    usEnable: "Enable",
    usEnableOf: "Enable {name}",
    usAdded: "Added {name}.",
    usDisabledNow: "Disabled {name}; their sessions have ended.",
    usEnabledNow: "Enabled {name}.",
    usSelf: "You cannot disable or demote your own account.",
    usSelfPassword: "A new password would sign you out here: use `appliance user passwd`.",
    usError: "Could not do that: {message}",
    usRefresh: "Refresh",
    tkTitle: "API tokens",
    tkAdd: "Create an API token",
    tkName: "Token name (who or what it is for)",
    tkAddButton: "Create token",
    tkNew: "New token",
    tkOnce: "Token {name} (shown once; store it with the script that uses it):",
    tkTokens: "Tokens",
    tkEmpty: "No API tokens yet.",
    tkCreated: "Created",
    tkId: "Id",
    tkActive: "active",
    tkRevoked: "revoked",
    tkRevoke: "Revoke",
    tkRevokeOf: "Revoke token {name} ({id})",
    tkRevokeConfirm: "Revoke the token {name}? Whatever uses it stops working at once.",
    tkRevokedNow: "Revoked the token {name}.",
    "role.agent": "Agent",
    "role.supervisor": "Supervisor",
    "role.admin": "Admin",
    "role.api": "API (OpenAI-compatible only)",
  },
  zh: {
    usTitle: "用户与令牌",
    usAdd: "添加账号",
    usName: "名称",
    usAccountName: "账号名",
    usRole: "角色",
    usDisplayName: "显示名称",
    usCapacity: "接待上限",
    usCapacityHint: "接待上限（留空则用默认值）",
    usPassword: "密码（留空则自动生成）",
    usAddButton: "添加账号",
    usNewPassword: "新密码",
    usPasswordOnce: "{name} 的密码（只显示这一次，请转交本人）：",
    usAccounts: "账号",
    usPresence: "在线状态",
    usState: "状态",
    usActions: "操作",
    usEnabled: "已启用",
    usDisabled: "已停用",
    usYou: "（你）",
    usDisplayNameOf: "{name} 的显示名称",
    usRoleOf: "{name} 的角色",
    usCapacityOf: "{name} 的接待上限",
    usSave: "保存",
    usSaveOf: "保存对 {name} 的修改",
    usSaved: "已保存 {name}。",
    usNothing: "{name} 没有改动。",
    usReset: "重设密码",
    usResetOf: "为 {name} 重设密码",
    usResetConfirm: "为 {name} 重设密码？其已打开的控制台将被登出。",
    usDisable: "停用",
    usDisableOf: "停用 {name}",
    usDisableConfirm: "停用 {name}？其已打开的控制台将被登出，且无法再登录。",
    usEnable: "启用",
    usEnableOf: "启用 {name}",
    usAdded: "已添加 {name}。",
    usDisabledNow: "已停用 {name}，其会话已结束。",
    usEnabledNow: "已启用 {name}。",
    usSelf: "不能停用自己的账号，也不能降低自己的角色。",
    usSelfPassword: "重设自己的密码会让你在这里登出：请使用 `appliance user passwd`。",
    usError: "操作失败：{message}",
    usRefresh: "刷新",
    tkTitle: "API 令牌",
    tkAdd: "创建 API 令牌",
    tkName: "令牌名称（给谁或什么用）",
    tkAddButton: "创建令牌",
    tkNew: "新令牌",
    tkOnce: "令牌 {name}（只显示这一次，请保存到使用它的脚本）：",
    tkTokens: "令牌",
    tkEmpty: "还没有 API 令牌。",
    tkCreated: "创建时间",
    tkId: "编号",
    tkActive: "有效",
    tkRevoked: "已吊销",
    tkRevoke: "吊销",
    tkRevokeOf: "吊销令牌 {name}（{id}）",
    tkRevokeConfirm: "吊销令牌 {name}？使用它的程序将立即失效。",
    tkRevokedNow: "已吊销令牌 {name}。",
    "role.agent": "客服",
    "role.supervisor": "主管",
    "role.admin": "管理员",
    "role.api": "API（仅 OpenAI 兼容接口）",
  },
};

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

export async function render(root, { api, user, t }) {
  const notice = h("p", { role: "status" });
  const name = h("input", { id: "us-name", type: "text", required: true, autocomplete: "off", size: "20" });
  const role = h("select", { id: "us-role" });
  const displayName = h("input", { id: "us-display-name", type: "text", autocomplete: "off", size: "20" });
  const capacity = h("input", { id: "us-capacity", type: "number", min: "0", max: "100", size: "5" });
  const password = h("input", { id: "us-password", type: "text", autocomplete: "new-password", size: "20" });
  const passwordShown = h("div", { class: "card", hidden: true, role: "region", "aria-label": t("usNewPassword") });
  const accounts = h("tbody");
  const tokenName = h("input", { id: "tk-name", type: "text", required: true, autocomplete: "off", size: "28" });
  const tokenRole = h("select", { id: "tk-role" });
  const tokenShown = h("div", { class: "card", hidden: true, role: "region", "aria-label": t("tkNew") });
  const tokens = h("tbody");

  function fail(err) {
    notice.className = "danger-text";
    notice.textContent = t("usError", { message: err.message });
  }

  function say(text) {
    notice.className = "ok-text";
    notice.textContent = text;
  }

  function options(select, roles) {
    if (select.options.length) return;
    select.append(...roles.map((r) => h("option", { value: r }, t(`role.${r}`))));
    select.value = roles.includes("agent") ? "agent" : roles[0];
  }

  function showPassword(account, secret) {
    passwordShown.replaceChildren(h("p", {}, t("usPasswordOnce", { name: account })),
      h("code", { "aria-label": t("usNewPassword") }, secret));
    passwordShown.hidden = false;
  }

  function accountRow(a, roles) {
    const self = a.name === user.name;
    const shownName = h("input", { type: "text", value: a.display_name, size: "16",
      "aria-label": t("usDisplayNameOf", { name: a.name }) });
    const pick = h("select", { "aria-label": t("usRoleOf", { name: a.name }), disabled: self, title: self ? t("usSelf") : null },
      ...roles.map((r) => h("option", { value: r, selected: r === a.role }, t(`role.${r}`))));
    const seats = h("input", { type: "number", min: "0", max: "100", value: String(a.capacity), size: "4",
      "aria-label": t("usCapacityOf", { name: a.name }) });
    const change = () => {
      const body = {};
      if (shownName.value.trim() !== a.display_name) body.display_name = shownName.value;
      if (pick.value !== a.role) body.role = pick.value;
      if (seats.value !== String(a.capacity)) body.capacity = seats.value === "" ? -1 : Number(seats.value);
      return body;
    };
    return h("tr", {},
      h("td", {}, a.name, self ? ` ${t("usYou")}` : ""),
      h("td", {}, shownName), h("td", {}, pick), h("td", {}, seats),
      h("td", {}, t(`presence_${a.presence}`)),
      h("td", { class: a.disabled ? "danger-text" : "" }, a.disabled ? t("usDisabled") : t("usEnabled")),
      h("td", {},
        h("button", { type: "button", "aria-label": t("usSaveOf", { name: a.name }), onclick: () => save(a, change()) },
          t("usSave")), " ",
        h("button", { type: "button", "aria-label": t("usResetOf", { name: a.name }), disabled: self,
          title: self ? t("usSelfPassword") : null, onclick: () => reset(a) }, t("usReset")), " ",
        a.disabled
          ? h("button", { type: "button", "aria-label": t("usEnableOf", { name: a.name }),
            onclick: () => setDisabled(a, false) }, t("usEnable"))
          : h("button", { type: "button", "aria-label": t("usDisableOf", { name: a.name }), disabled: self,
            title: self ? t("usSelf") : null, onclick: () => setDisabled(a, true) }, t("usDisable"))));
  }

  function tokenRow(k) {
    return h("tr", {},
      h("td", {}, k.name), h("td", {}, t(`role.${k.role}`)), h("td", {}, when(k.created_at)),
      h("td", {}, h("code", {}, k.token_id)),
      h("td", { class: k.revoked ? "muted" : "ok-text" }, k.revoked ? t("tkRevoked") : t("tkActive")),
      h("td", {}, k.revoked ? "" : h("button", { type: "button",
        "aria-label": t("tkRevokeOf", { name: k.name, id: k.token_id }), onclick: () => revoke(k) }, t("tkRevoke"))));
  }

  async function load() {
    const [team, keys] = await Promise.all([api.get("/api/v1/admin/users"), api.get("/api/v1/admin/tokens")]);
    options(role, team.roles);
    options(tokenRole, keys.roles);
    accounts.replaceChildren(...team.accounts.map((a) => accountRow(a, team.roles)));
    tokens.replaceChildren(...keys.tokens.map(tokenRow));
    if (!keys.tokens.length) tokens.appendChild(h("tr", {}, h("td", { colspan: "6" }, t("tkEmpty"))));
  }

  const path = (a) => `/api/v1/admin/users/${encodeURIComponent(a.name)}`;

  async function add(event) {
    event.preventDefault();
    const body = { name: name.value, role: role.value, display_name: displayName.value, password: password.value };
    if (capacity.value !== "") body.capacity = Number(capacity.value);
    try {
      const made = await api.post("/api/v1/admin/users", body);
      if (made.password) showPassword(made.account.name, made.password);
      else passwordShown.hidden = true;
      for (const field of [name, displayName, capacity, password]) field.value = "";
      say(t("usAdded", { name: made.account.name }));
      await load();
    } catch (err) {
      fail(err);
    }
  }

  async function save(a, body) {
    if (!Object.keys(body).length) {
      say(t("usNothing", { name: a.name }));
      return;
    }
    try {
      await api.patch(path(a), body);
      say(t("usSaved", { name: a.name }));
      await load();
    } catch (err) {
      fail(err);
    }
  }

  async function reset(a) {
    if (!window.confirm(t("usResetConfirm", { name: a.name }))) return;
    try {
      const answer = await api.post(`${path(a)}/password`, {});
      showPassword(a.name, answer.password);
      notice.textContent = "";
      await load();
    } catch (err) {
      fail(err);
    }
  }

  async function setDisabled(a, disabled) {
    if (disabled && !window.confirm(t("usDisableConfirm", { name: a.name }))) return;
    try {
      await api.patch(path(a), { disabled });
      say(t(disabled ? "usDisabledNow" : "usEnabledNow", { name: a.name }));
      await load();
    } catch (err) {
      fail(err);
    }
  }

  async function issue(event) {
    event.preventDefault();
    try {
      const made = await api.post("/api/v1/admin/tokens", { name: tokenName.value, role: tokenRole.value });
      tokenShown.replaceChildren(h("p", {}, t("tkOnce", { name: made.token.name })),
        h("code", { "aria-label": t("tkNew") }, made.secret));
      tokenShown.hidden = false;
      tokenName.value = "";
      notice.textContent = "";
      await load();
    } catch (err) {
      fail(err);
    }
  }

  async function revoke(k) {
    if (!window.confirm(t("tkRevokeConfirm", { name: k.name }))) return;
    try {
      await api.del(`/api/v1/admin/tokens/${encodeURIComponent(k.token_id)}`);
      tokenShown.hidden = true;
      say(t("tkRevokedNow", { name: k.name }));
      await load();
    } catch (err) {
      fail(err);
    }
  }

  const head = (...keys) => h("thead", {}, h("tr", {}, ...keys.map((k) => h("th", { scope: "col" }, t(k)))));
  const label = (id, key, field) => h("label", { for: id }, t(key), field);
  root.append(
    h("h2", {}, t("usTitle")),
    h("form", { class: "card", "aria-label": t("usAdd"), onsubmit: add },
      h("h3", {}, t("usAdd")),
      h("div", { class: "form-row" }, label("us-name", "usAccountName", name), label("us-role", "usRole", role),
        label("us-display-name", "usDisplayName", displayName), label("us-capacity", "usCapacityHint", capacity),
        label("us-password", "usPassword", password)),
      h("button", { type: "submit" }, t("usAddButton"))),
    notice,
    passwordShown,
    h("div", { class: "form-row" }, h("h3", {}, t("usAccounts")),
      h("button", { type: "button", onclick: () => load().catch(fail) }, t("usRefresh"))),
    h("table", { class: "grid", "aria-label": t("usAccounts") },
      head("usName", "usDisplayName", "usRole", "usCapacity", "usPresence", "usState", "usActions"), accounts),
    h("form", { class: "card", "aria-label": t("tkAdd"), onsubmit: issue },
      h("h3", {}, t("tkTitle")),
      h("div", { class: "form-row" }, label("tk-name", "tkName", tokenName), label("tk-role", "usRole", tokenRole)),
      h("button", { type: "submit" }, t("tkAddButton"))),
    tokenShown,
    h("table", { class: "grid", "aria-label": t("tkTokens") },
      head("usName", "usRole", "tkCreated", "tkId", "usState", "usActions"), tokens),
  );
  await load();
}
