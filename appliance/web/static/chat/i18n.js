// Every string the visitor chat shows, in both languages. Keys are shared; values may hold
// {placeholders} filled by format(). Accessible names used by tests are part of the contract:
// message, send, handoff, close, attach, rating, star_one/star_other, submitRating, ...

export const STRINGS = {
  en: {
    pageTitle: "Chat",
    title: "Chat with us",
    welcome: "Hi! How can we help you today?",
    log: "Conversation",
    close: "Close chat",
    connecting: "Connecting…",
    reconnecting: "Reconnecting…",

    message: "Message",
    messagePlaceholder: "Type a message…",
    closedPlaceholder: "This conversation has ended",
    send: "Send",
    handoff: "Talk to a person",
    attach: "Attach image",
    attachHint: "You can attach images after your first message.",
    previews: "Images to send",
    removeImage: "Remove image {name}",
    image: "Image",
    imageFailed: "Image could not be loaded",
    uploadFailed: "Could not upload {name}: {reason}",
    prechatName: "Your name",
    prechatEmail: "Your email",

    you: "You",
    assistant: "Assistant",
    agent: "Agent",
    notice: "Notice",
    sources: "Sources: {list}",
    agentTyping: "Agent is typing…",
    queued: "Waiting for connection…",
    failed: "Not delivered",
    errorGeneric: "Something went wrong. Please try again.",
    tooFast: "You are sending messages too quickly. Please wait a moment and try again.",
    tooLarge: "That is too large to send.",
    notImage: "Only PNG, JPEG, GIF or WebP images can be sent.",

    queuePosition: "You are number {n} in the queue · about {m} min",
    queuePositionNoWait: "You are number {n} in the queue",
    queuePositionClosed: "You are number {n} in the queue; an agent will answer when one is available",
    queueSoon: "An agent will be with you shortly",
    queueSoonNamed: "{name} will be with you shortly",
    chattingWith: "You are chatting with {name}",
    chattingWithAgent: "You are chatting with an agent",
    closed: "This conversation has ended.",

    offlineTitle: "Leave us a message",
    offlineIntro: "No one is available right now. Leave a message and we will get back to you.",
    ticketName: "Name",
    ticketContact: "Email or phone",
    ticketMessage: "Your message",
    leaveMessage: "Leave a message",
    ticketMissing: "Please fill in your name, how to reach you and your message.",
    ticketThanks: "Thank you! We received your message and will get back to you soon.",

    ratingTitle: "How was your conversation?",
    rating: "Rating",
    star_one: "{n} star",
    star_other: "{n} stars",
    ratingComment: "Comment",
    submitRating: "Submit rating",
    ratingMissing: "Please choose a rating first.",
    ratingThanks: "Thank you for your feedback!",
    newConversation: "Start a new conversation",
  },
  zh: {
    pageTitle: "在线客服",
    title: "在线客服",
    welcome: "您好！请问有什么可以帮您？",
    log: "对话记录",
    close: "关闭聊天窗口",
    connecting: "正在连接…",
    reconnecting: "正在重新连接…",

    message: "消息",
    messagePlaceholder: "请输入消息…",
    closedPlaceholder: "本次对话已结束",
    send: "发送",
    handoff: "转人工",
    attach: "添加图片",
    attachHint: "发送第一条消息后即可添加图片。",
    previews: "待发送的图片",
    removeImage: "移除图片 {name}",
    image: "图片",
    imageFailed: "图片加载失败",
    uploadFailed: "{name} 上传失败：{reason}",
    prechatName: "您的称呼",
    prechatEmail: "您的邮箱",

    you: "我",
    assistant: "智能助手",
    agent: "客服",
    notice: "系统提示",
    sources: "来源：{list}",
    agentTyping: "客服正在输入…",
    queued: "等待连接…",
    failed: "发送失败",
    errorGeneric: "出了点问题，请稍后再试。",
    tooFast: "您发送得太快了，请稍等片刻再试。",
    tooLarge: "内容太大，无法发送。",
    notImage: "只能发送 PNG、JPEG、GIF 或 WebP 图片。",

    queuePosition: "您当前排在第 {n} 位 · 预计等待约 {m} 分钟",
    queuePositionNoWait: "您当前排在第 {n} 位",
    queuePositionClosed: "您当前排在第 {n} 位，客服上线后会尽快回复您",
    queueSoon: "客服马上为您服务",
    queueSoonNamed: "{name} 马上为您服务",
    chattingWith: "{name} 正在为您服务",
    chattingWithAgent: "人工客服正在为您服务",
    closed: "本次对话已结束。",

    offlineTitle: "给我们留言",
    offlineIntro: "当前暂无客服在线。请留下您的联系方式和问题，我们会尽快回复您。",
    ticketName: "姓名",
    ticketContact: "邮箱或手机号",
    ticketMessage: "留言内容",
    leaveMessage: "提交留言",
    ticketMissing: "请填写姓名、联系方式和留言内容。",
    ticketThanks: "感谢您的留言！我们已收到，会尽快与您联系。",

    ratingTitle: "您对本次服务满意吗？",
    rating: "评分",
    star_one: "{n} 星",
    star_other: "{n} 星",
    ratingComment: "评价内容",
    submitRating: "提交评价",
    ratingMissing: "请先选择评分。",
    ratingThanks: "感谢您的评价！",
    newConversation: "开始新的对话",
  },
};

/** `?lang=zh|en` wins; otherwise a browser language starting with "zh" gives Chinese. */
export function pickLanguage(search = location.search, browser = navigator.language || "") {
  const asked = (new URLSearchParams(search).get("lang") || "").toLowerCase();
  if (asked.startsWith("zh")) return "zh";
  if (asked.startsWith("en")) return "en";
  return browser.toLowerCase().startsWith("zh") ? "zh" : "en";
}

/** A translator for one language: t("key", {n: 2}) fills {n}; unknown keys fall back to English. */
export function translator(language) {
  const table = STRINGS[language] || STRINGS.en;
  return (key, vars = {}) => {
    const template = table[key] ?? STRINGS.en[key] ?? key;
    return template.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
  };
}

/** Fill data-i18n (text), data-i18n-label (aria-label) and data-i18n-placeholder under root. */
export function applyStrings(root, t) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}
