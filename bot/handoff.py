"""Recognising when a customer asks for a person, without asking the model.

Patterns need an asking verb or a fixed phrase next to the word for a person,
so "talk to a human" hands over while "do you need a human signature?" or
"which mobile operator do you support?" do not.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence

from bot.settings import EscalationRule

_PERSON_EN = (
    r"(?:human(?: being)?|person|people|agent|representative|rep|operator|someone|somebody|"
    r"staff(?: member)?|employee|manager|supervisor|support (?:agent|team|staff)|"
    r"customer (?:service|support)(?: agent| representative| rep)?)"
)
_ADJ_EN = r"(?:(?:a|an|some|one|your|the)\s+)?(?:(?:real|actual|live|living|human|true)\s+)?"

# A person word followed by "'s" is an owner ("a person's phone"), not the one to talk to.
_NOT_OWNER = r"\b(?!')"

_PATTERNS: tuple[str, ...] = (
    # English
    rf"\b(?:talk|speak|chat|connect|communicate)\s+(?:to|with)\s+{_ADJ_EN}{_PERSON_EN}{_NOT_OWNER}",
    # "hand it to someone at reception" is about a parcel: only "me" or the case itself is handed over.
    rf"\b(?:transfer|put|pass|hand)\s+me\s+(?:over\s+|through\s+|on\s+)?(?:to|with)\s+{_ADJ_EN}{_PERSON_EN}{_NOT_OWNER}",
    rf"\b(?:transfer|escalate)\s+(?:this|it|my (?:case|request|issue|question|ticket))\s+(?:over\s+|on\s+)?to\s+{_ADJ_EN}{_PERSON_EN}{_NOT_OWNER}",
    rf"\b(?:pass|hand)\s+(?:this|my)\s+(?:conversation|chat|case|request|issue|question)\s+(?:over\s+|on\s+)?to\s+{_ADJ_EN}{_PERSON_EN}{_NOT_OWNER}",
    rf"\b(?:connect|get)\s+me\s+(?:to|with)\s+{_ADJ_EN}{_PERSON_EN}{_NOT_OWNER}",
    rf"\bgive\s+me\s+{_ADJ_EN}(?:human|person|agent|representative|operator)\b\s*(?:please|now)?\s*[.!?]*\s*$",
    rf"\b(?:can|could|may)\s+i\s+(?:get|have)\s+{_ADJ_EN}(?:human|person|agent|representative|operator)\b\s*(?:please|now)?\s*[.!?]*\s*$",
    rf"\bi\s+(?:want|need|would like|'d like|demand|request)\s+(?:to\s+(?:talk|speak)\s+(?:to|with)\s+)?{_ADJ_EN}(?:human|person|agent|representative|operator|someone real)(?:\s*(?:please|now|asap|immediately))?\s*[.!?]*\s*$",
    # "written by a real person?" asks about people; only the bare demand hands over.
    r"^\s*(?:(?:a|an|some)\s+)?(?:real|actual|live)\s+(?:human|person|agent)\b(?:\s*(?:please|pls|now))?\s*[.!?]*\s*$",
    r"^\s*(?:human|agent|operator|representative|person)\s*(?:please|pls|now)?\s*[.!?]*\s*$",
    r"\b(?:are you|is this)\s+a\s+(?:bot|robot)\b.*\b(?:human|person)\b",
    r"\blive\s+(?:chat|support|agent)\b\s*(?:please)?\s*[.!?]*\s*$",
    # Chinese: 真人 alone also means "real person" in "真人拍摄" (photographed with real people).
    r"(?:人工客服|真人客服|转人工|找人工|人工服务|要人工|接人工|客服人员|人工坐席)",
    r"(?:(?:找|要|转|接|换|联系)(?:个|一个)?(?:真人|活人)|(?:和|跟|与)(?:真人|活人)(?:聊|说|对话|沟通|交流)|真人(?:服务|回复|接待))",
    # Russian: "оператор связи" is a mobile operator; "свяжусь" is the customer contacting someone.
    r"(?:живо(?:й|го|му|м)\s+(?:оператор|человек|сотрудник|специалист)\w*)",
    r"(?:позовите|позови|соедините|соедини|переключите|переключи|хочу|нужен|нужна|дайте|дай|свяжите|свяжи|поговорить)\s+(?:(?:меня|мне|с|на)\s+)*(?:живым\s+|реальным\s+)?(?:оператор\w*(?!\s+связи)|человек\w*|сотрудник\w*|менеджер\w*|специалист\w*)",
    # Spanish
    r"\b(?:hablar|comunicarme|contactar)\s+con\s+(?:un|una|el|la|alguna|alguien)?\s*(?:persona|humano|agente|operador|operadora|asesor|asesora|representante|ser humano|alguien)\b",
    r"\b(?:quiero|necesito)\s+(?:un|una)\s+(?:persona|humano|agente|operador|asesor)(?:\s+(?:real|humano))?\s*[.!?]*\s*$",
    # German: "Ich möchte wissen, ob eure Mitarbeiter ..." is a question about staff, not a request.
    r"\bmit\s+(?:einem|einer)\s+(?:echten\s+|richtigen\s+|menschlichen\s+)?(?:menschen|mitarbeiter|mitarbeiterin|berater|beraterin|agenten|person)\s+(?:sprechen|reden|verbinden|chatten)\b",
    r"\b(?:einen|einem|mit)\s+(?:echten|richtigen)\s+menschen\b",
    r"\b(?:verbinden sie mich|verbinde mich)\s+(?:bitte\s+)?mit\s+(?:einem|einer|dem|der)?\s*(?:echten\s+|richtigen\s+)?(?:mitarbeiter\w*|menschen|berater\w*|person|agenten)\b",
    r"\bich\s+(?:mochte|will|brauche|hatte gerne?)\s+(?:bitte\s+)?(?:einen|eine)\s+(?:echten\s+|richtigen\s+)?(?:mitarbeiter|mitarbeiterin|menschen|berater|beraterin)\b\s*(?:bitte)?\s*[.!?]*\s*$",
    # French: the person word is required, so "en parler avec une amie" stays with the bot.
    r"\b(?:parler|discuter)\s+(?:a|avec)\s+(?:un|une|le|la|l'|des)\s*(?:vrai\s+|vraie\s+)?(?:humain|personne|conseiller|conseillere|agent|operateur|operatrice|etre humain)\b",
    r"\b(?:parler|discuter)\s+(?:a|avec)\s+quelqu'?\s?un(?:\s+(?:de reel|du service|de l'equipe|de votre equipe))?\s*[.!?]*\s*$",
    r"\bun\s+(?:vrai|etre)\s+humain\b",
    # Portuguese
    r"\bfalar\s+com\s+(?:um|uma|algum|alguma|alguem)?\s*(?:humano|pessoa|atendente|agente|operador|ser humano|alguem)\b",
    r"\batendente\s+humano\b|\batendimento\s+humano\b",
    # Japanese: a bare 人 must not end another word (友人に話したら: "when I told a friend"),
    # and the verb must ask (話したい, つないで), not report (話し合って).
    r"(?:人間|(?<![\u4e00-\u9fff])人|担当者|オペレーター|スタッフ|係の人|係員)(?:と|に)(?:話したい|話させて|話せ|お話し|話をしたい|つないで|繋いで|つなげて|繋げて|代わって|かわって|替わって)",
    r"(?:有人対応|オペレーターを|担当者を呼)",
)
_COMPILED = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def fold_phrase(text: str) -> str:
    """The form handoff phrases are matched in: 'Mö​chte' matches 'mochte'.

    Casefold, fold accents on Latin letters, one kind of apostrophe, single
    spaces. Apostrophes and spaces stay, because the patterns spell them out;
    FAQ search folds further (``bot.knowledge.text.fold_spelling``).
    """
    text = unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")
    stripped = unicodedata.normalize("NFC", _fold_latin_accents(text.casefold()))
    stripped = "".join(c for c in stripped if unicodedata.category(c) != "Cf")
    return re.sub(r"\s+", " ", stripped).strip()


def _fold_latin_accents(text: str) -> str:
    """Drop accents from Latin letters only: Cyrillic й or Japanese voiced kana keep their marks."""
    out: list[str] = []
    base_is_latin = False
    for char in unicodedata.normalize("NFD", text):
        if unicodedata.combining(char):
            if not base_is_latin:
                out.append(char)
            continue
        base_is_latin = char < "\u0250"
        out.append(char)
    return "".join(out)


def asks_for_person(text: str, extra_phrases: Iterable[str] = ()) -> bool:
    norm = fold_phrase(text)
    if _COMPILED.search(norm):
        return True
    pattern = _phrases_pattern(tuple(extra_phrases))
    return pattern is not None and pattern.search(norm) is not None


def matching_rule(text: str, rules: Sequence[EscalationRule]) -> EscalationRule | None:
    """The first YAML rule one of whose phrases appears in the text as whole words."""
    norm = fold_phrase(text)
    for rule in rules:
        pattern = _phrases_pattern(rule.phrases)
        if pattern is not None and pattern.search(norm):
            return rule
    return None


@functools.lru_cache(maxsize=256)
def _phrases_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """One search for any of the phrases, built once per list instead of on every message.

    Each phrase must stand as whole words, except CJK ones, which have no word
    boundaries to rely on. None when every phrase is blank.
    """
    parts = []
    for phrase in phrases:
        norm = fold_phrase(phrase) if phrase.strip() else ""
        if not norm:
            continue
        if any(ord(c) > 0x2E80 for c in norm):
            parts.append(re.escape(norm))
        else:
            parts.append(rf"(?<!\w){re.escape(norm)}(?!\w)")
    return re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None
