"""Recognising a request for a person without a model: what must hand over, and what must not."""

from __future__ import annotations

import pytest

from bot.handoff import asks_for_person, fold_phrase, matching_rule
from bot.settings import EscalationRule

ASKS = {
    "en": [
        "I want to talk to a human",
        "let me talk to an actual person",
        "Can I speak with a real agent please?",
        "connect me to a representative",
        "Please transfer me to a live agent",
        "human please",
        "AGENT!!!",
        "I need a real person now",
        "I’d like to speak to someone from customer service",
        "are you a bot? I want a human",
        "give me a real person",
        "Can I get a human please?",
        "please escalate this to a manager",
        "real person please",
        "put me through to a supervisor",
    ],
    "zh": [
        "找真人客服",
        "我要转人工",
        "请帮我接人工服务",
        "人工客服在吗？",
        "我想和真人聊一下",
        "帮我找个真人",
    ],
    "ru": [
        "нужен живой оператор",
        "Соедините меня с оператором",
        "хочу поговорить с живым человеком",
        "Позовите сотрудника, пожалуйста",
        "Переключите на оператора",
    ],
    "es": [
        "Quiero hablar con una persona",
        "necesito hablar con un agente",
        "¿Puedo comunicarme con un asesor?",
        "quiero un humano",
    ],
    "de": [
        "Ich möchte mit einem Mitarbeiter sprechen",
        "Bitte mit einem echten Menschen reden",
        "Verbinden Sie mich mit einem Berater",
        "ICH WILL EINEN MITARBEITER",
        "Ich hätte gerne einen echten Menschen",
    ],
    "fr": [
        "Je voudrais parler à un conseiller",
        "Puis-je parler avec un humain ?",
        "je veux un vrai humain",
        "Je veux discuter avec une personne",
        "Je voudrais parler à quelqu'un",
    ],
    "pt": [
        "Quero falar com um atendente",
        "posso falar com uma pessoa?",
        "Preciso de atendimento humano",
        "quero falar com alguém",
    ],
    "ja": [
        "オペレーターと話したい",
        "担当者につないでください",
        "人間と話せますか",
        "有人対応をお願いします",
        "人と話したいです",
        "スタッフに代わってもらえますか",
    ],
}

LOOK_ALIKES = [
    "do you need a human signature on the form?",
    "my insurance agent sent me here",
    "which mobile operator do you support?",
    "Is the kettle safe for people with pacemakers?",
    "Can another person pick up my parcel?",
    "My travel agent booked the delivery address",
    "Which shipping agent do you use for Austria?",
    "Does the vacuum come with a human-readable manual?",
    "the representative sample was damaged",
    "Is someone able to receive the parcel if I'm not home?",
    "Do you ship to Russia? Мой оператор связи МТС",
    "¿Cuál es el horario de atención de la tienda?",
    "Ist der Mitarbeiterrabatt auch online gültig?",
    "Le conseiller fiscal veut une facture",
    "A pessoa que recebeu assinou o recibo?",
    "スタッフのおすすめ商品はどれですか",
    "人工智能产品有保修吗？",
    # Each of these once handed over: a person word in a sentence about something else.
    "Are the reviews written by a real person?",
    "Can the courier hand it to someone at reception?",
    "Will the driver hand it over to a person at the door?",
    "Does the speaker connect to a person's phone via bluetooth?",
    "Ich möchte wissen, ob eure Mitarbeiter das Paket geprüft haben",
    "Ich will wissen, wann die Berater-Hotline offen hat",
    "产品图片是真人拍摄的吗",
    "这个模特是真人吗？",
    "友人に話したら、返品できると言われました",
    "主人と話し合って決めます",
    "Je dois en parler avec une amie avant de commander",
    "Je vais en parler à un ami",
    "Нужен оператор связи?",
    "Свяжусь с менеджером банка завтра",
    "",
    "   ",
]


@pytest.mark.parametrize(
    ("language", "text"), [(lang, text) for lang, texts in ASKS.items() for text in texts]
)
def test_requests_for_a_person(language, text):
    assert asks_for_person(text), f"{language}: {text!r} should hand over"


def test_at_least_three_phrasings_per_language():
    assert set(ASKS) == {"en", "zh", "ru", "es", "de", "fr", "pt", "ja"}
    assert all(len(texts) >= 3 for texts in ASKS.values())


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_do_not_hand_over(text):
    assert not asks_for_person(text), f"{text!r} is not a request for a person"


def test_configured_phrases_are_added_to_the_built_in_ones():
    extra = ["ring me back", "Rückruf bitte", "回电话"]
    assert not asks_for_person("Could you ring me back tomorrow?")
    assert asks_for_person("Could you ring me back tomorrow?", extra)
    assert asks_for_person("RÜCKRUF BITTE!", extra)
    assert asks_for_person("请给我回电话", extra)
    assert asks_for_person("I want to talk to a human", extra), "built-ins still apply"


def test_configured_phrases_match_whole_words_only():
    assert not asks_for_person("I will bring me backpack", ["ring me back"])
    assert not asks_for_person("anything at all", ["", "   "]), "blank phrases match nothing"


RULES = (
    EscalationRule(("chargeback", "dispute the charge"), "escalate"),
    EscalationRule(("lawyer", "legal action"), "escalate"),
    EscalationRule(("complaint", "unacceptable"), "offer"),
)


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("I will file a CHARGEBACK", "escalate"),
        ("I'm going to dispute  the   charge with my bank", "escalate"),
        ("My lawyer will hear about this", "escalate"),
        ("This is unacceptable!", "offer"),
        ("I want to make a complaint.", "offer"),
    ],
)
def test_rules_match(text, action):
    rule = matching_rule(text, RULES)
    assert rule is not None and rule.action == action


@pytest.mark.parametrize(
    "text",
    ["lawyers' fees are not refundable, right?", "complaints form", "How do refunds work?"],
)
def test_rules_need_whole_words(text):
    assert matching_rule(text, RULES) is None


def test_first_matching_rule_wins():
    rule = matching_rule("unacceptable, I'll do a chargeback", RULES)
    assert rule is RULES[0]


def test_rule_phrases_in_other_scripts():
    rules = (EscalationRule(("退款纠纷", "Anwalt"), "escalate"),)
    assert matching_rule("我要提起退款纠纷", rules) is rules[0]
    assert matching_rule("Mein ANWALT meldet sich", rules) is rules[0]
    assert matching_rule("Anwaltskosten?", rules) is None


def test_normalise_folds_case_accents_and_spacing():
    assert fold_phrase("  Ich  MÖCHTE\tmit ") == "ich mochte mit"
    assert fold_phrase("I’d\u200b like") == "i'd like"
    assert fold_phrase("Й") == "й", "Cyrillic letters keep their marks"
