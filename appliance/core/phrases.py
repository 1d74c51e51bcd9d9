"""The bot's and the desk's fixed sentences, in every language the product speaks.

A visitor gets these in their own language: a Chinese visitor never reads an English sentence.
"""

from __future__ import annotations

from typing import Literal

from appliance.core.types import Language

Phrase = Literal[
    "handoff", "leave_message", "no_answer", "image_handoff", "tool_failed", "agent_joined", "handed_back",
    "transferred", "resolved", "ticket_answered", "greeting",
    "human_handling",
]

PHRASES: dict[Language, dict[Phrase, str]] = {
    "en": {
        "handoff": "I'm connecting you with a human agent, who will reply here shortly.",
        "leave_message": (
            "No agent is available right now. Please leave your message and contact details here, "
            "and we will get back to you as soon as possible."
        ),
        "no_answer": (
            "I couldn't find that in our knowledge base. Would you like me to connect you with a human agent?"
        ),
        "image_handoff": "Thanks for the image. A person will look at it and reply here shortly.",
        "tool_failed": "Sorry, I couldn't look that up right now.",
        "agent_joined": "{agent} has joined the conversation.",
        "handed_back": "You are chatting with our virtual assistant again.",
        "transferred": "Your conversation has been passed to {agent}.",
        "resolved": "This conversation has been resolved. Thank you for contacting us.",
        "ticket_answered": "Reply to your message: {answer}",
        "greeting": "Hello! How can I help you today?",
        "human_handling": "A person from our team is handling this conversation and will answer you here.",
    },
    "zh": {
        "handoff": "正在为您转接人工客服，请稍候，客服会在这里回复您。",
        "leave_message": "目前没有客服在线。请在这里留下您的问题和联系方式，我们会尽快与您联系。",
        "no_answer": "抱歉，知识库中没有找到相关内容。需要为您转接人工客服吗？",
        "image_handoff": "已收到您的图片，客服人员会查看并在这里回复您。",
        "tool_failed": "抱歉，暂时无法查询，请稍后再试。",
        "agent_joined": "客服 {agent} 已加入对话。",
        "handed_back": "您现在正在与智能助手对话。",
        "transferred": "您的对话已转给客服 {agent}。",
        "resolved": "本次对话已结束，感谢您的咨询。",
        "ticket_answered": "关于您的留言，回复如下：{answer}",
        "greeting": "您好！请问有什么可以帮您？",
        "human_handling": "我们的客服人员正在处理此对话，会在这里回复您。",
    },
}


def phrase(name: Phrase, language: str, **values: str) -> str:
    table = PHRASES["zh" if language == "zh" else "en"]
    return table[name].format(**values) if values else table[name]
