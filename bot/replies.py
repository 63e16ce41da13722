"""What the bot says is stored before it is sent: one place that does both for the core."""

from __future__ import annotations

from bot.knowledge.live import Knowledge
from bot.outcome import FEEDBACK_PREFIX, HUMAN_BUTTON, Button, Outcome, Path, Reply
from bot.settings import Settings
from bot.store.conversations import AnswerAudit, ConversationStore, Customer


class Replies:
    def __init__(self, settings: Settings, conversations: ConversationStore):
        self.settings = settings
        self.conversations = conversations

    async def say(
        self,
        customer: Customer,
        text: str,
        path: Path,
        buttons: tuple[Button, ...] = (),
        audit: AnswerAudit | None = None,
        ticket_id: int | None = None,
    ) -> Outcome:
        """Store the bot's message and give it as the outcome's one reply.

        Feedback buttons carry the stored message's id, known only now."""
        stored = await self.conversations.add_message(
            customer.chat_id, "bot", text, audit=audit, ticket_id=ticket_id
        )
        if any(b.data == f"{FEEDBACK_PREFIX}:0" for b in buttons):
            buttons = tuple(
                Button(b.label, f"{b.data.split(':')[0]}:{stored}:{b.data.split(':')[1]}")
                if b.data.startswith(f"{FEEDBACK_PREFIX}:")
                else b
                for b in buttons
            )
        answer = path in (Path.LLM, Path.FAQ)  # persona messages may hold a name: plain
        return Outcome([Reply(text, buttons, stored, markdown=answer)], path=path)

    def answer_buttons(self, knowledge: Knowledge, offer: bool) -> tuple[Button, ...]:
        """Under an answer: 👍/👎 when switched on, and "talk to a person" when offered."""
        buttons: list[Button] = []
        if self.settings.conversation.feedback_buttons:
            buttons += [Button("👍", f"{FEEDBACK_PREFIX}:1"), Button("👎", f"{FEEDBACK_PREFIX}:0")]
        if offer:
            buttons.append(Button(knowledge.persona.message("talk_to_person_button"), HUMAN_BUTTON))
        return tuple(buttons)
