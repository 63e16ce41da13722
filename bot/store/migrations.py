"""The schema, as an append-only list of small named migrations.

Each migration runs once and is recorded in ``migrations``; never edit one that
has shipped, add a new one instead, so every existing database upgrades the
same way on start. bot.store.migration_runner runs them.
"""

from __future__ import annotations

import aiosqlite

from bot.store.migration_runner import Migration, apply_pending, run_script

MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


async def apply_migrations(conn: aiosqlite.Connection) -> list[str]:
    return await apply_pending(conn, MIGRATIONS)


@migration
async def m001_customers_conversations_messages(conn: aiosqlite.Connection) -> None:
    await run_script(
        conn,
        """
        CREATE TABLE customers (
            chat_id INTEGER PRIMARY KEY,
            user_id INTEGER,
            first_name TEXT,
            last_name TEXT,
            username TEXT,
            language TEXT,
            blocked_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        -- /reset and a closed ticket start a new conversation: the model only sees the current one.
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            chat_id INTEGER NOT NULL REFERENCES customers(chat_id),
            started_at TEXT NOT NULL,
            ended_at TEXT,
            end_reason TEXT
        );
        CREATE INDEX conversations_open ON conversations(chat_id, ended_at);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id),
            chat_id INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('customer', 'bot', 'staff', 'note')),
            kind TEXT NOT NULL DEFAULT 'text',
            text TEXT,
            telegram_message_id INTEGER,
            ticket_id INTEGER,
            created_at TEXT NOT NULL
        );
        CREATE INDEX messages_conversation ON messages(conversation_id, id);
        CREATE INDEX messages_chat ON messages(chat_id, id);
        -- Every bot answer with what produced it, so staff can audit what the model saw.
        CREATE TABLE answers (
            message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            model TEXT,
            request_json TEXT,
            latency_ms REAL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            faq_ids TEXT,
            faq_confidence REAL,
            knowledge_version TEXT
        );
        """,
    )


@migration
async def m002_tickets(conn: aiosqlite.Connection) -> None:
    await run_script(
        conn,
        """
        CREATE TABLE tickets (
            id INTEGER PRIMARY KEY,
            chat_id INTEGER NOT NULL REFERENCES customers(chat_id),
            user_id INTEGER,
            status TEXT NOT NULL CHECK (status IN ('open', 'active', 'resolved')),
            reason TEXT NOT NULL,
            summary TEXT,
            assignee_id INTEGER,
            assignee_name TEXT,
            staff_chat_id INTEGER,
            staff_thread_id INTEGER,
            staff_card_message_id INTEGER,
            rating INTEGER,
            created_at TEXT NOT NULL,
            first_response_at TEXT,
            resolved_at TEXT,
            updated_at TEXT NOT NULL
        );
        -- At most one unresolved ticket per customer, enforced by the database itself.
        CREATE UNIQUE INDEX tickets_one_open ON tickets(chat_id) WHERE status != 'resolved';
        CREATE INDEX tickets_thread ON tickets(staff_chat_id, staff_thread_id);
        CREATE TABLE ticket_events (
            id INTEGER PRIMARY KEY,
            ticket_id INTEGER NOT NULL REFERENCES tickets(id),
            event TEXT NOT NULL,
            reason TEXT,
            actor TEXT,
            detail TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX ticket_events_ticket ON ticket_events(ticket_id, id);
        -- Pairs of (staff chat message) <-> (customer chat message), so replies map across chats.
        CREATE TABLE relayed_messages (
            staff_chat_id INTEGER NOT NULL,
            staff_message_id INTEGER NOT NULL,
            customer_chat_id INTEGER NOT NULL,
            customer_message_id INTEGER,
            ticket_id INTEGER NOT NULL REFERENCES tickets(id),
            PRIMARY KEY (staff_chat_id, staff_message_id)
        );
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            chat_id INTEGER NOT NULL,
            helpful INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (message_id)
        );
        """,
    )


@migration
async def m003_inbox(conn: aiosqlite.Connection) -> None:
    # Updates are stored before they are handled and marked done only after the
    # reply went out, so a crash never loses a message Telegram already handed over.
    await run_script(
        conn,
        """
        CREATE TABLE inbox (
            update_id INTEGER PRIMARY KEY,
            chat_key TEXT,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            received_at TEXT NOT NULL,
            done_at TEXT
        );
        CREATE INDEX inbox_pending ON inbox(status, update_id);
        """,
    )


@migration
async def m004_embedding_cache(conn: aiosqlite.Connection) -> None:
    # FAQ entry vectors for meaning-based matching, keyed by a hash of model and
    # text, so restarts and reloads only embed entries that are new or changed.
    await run_script(
        conn,
        """
        CREATE TABLE embedding_cache (
            key TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            dimensions INTEGER NOT NULL,
            vector BLOB NOT NULL,
            created_at TEXT NOT NULL
        );
        """,
    )


@migration
async def m005_sent_replies(conn: aiosqlite.Connection) -> None:
    # Reply chunks sent for an update that is not finished yet, recorded the moment
    # Telegram accepted each one: a replayed update skips what the customer already
    # has. The rows of an update go when it is marked done, so the table stays small.
    await run_script(
        conn,
        """
        CREATE TABLE sent_replies (
            update_id INTEGER NOT NULL,
            chat_id INTEGER NOT NULL,
            digest TEXT NOT NULL,
            occurrence INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('sending', 'sent')),
            telegram_message_id INTEGER,
            created_at TEXT NOT NULL,
            PRIMARY KEY (update_id, chat_id, digest, occurrence)
        );
        -- Replies sent again after a crash left it unknown whether Telegram had them.
        ALTER TABLE inbox ADD COLUMN uncertain_resends INTEGER NOT NULL DEFAULT 0;
        """,
    )


@migration
async def m006_attachments(conn: aiosqlite.Connection) -> None:
    # Photos, voice notes and files customers send, by Telegram file_id: the bytes
    # stay at Telegram, so the database holds no media, only what points at it.
    await run_script(
        conn,
        """
        CREATE TABLE attachments (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            chat_id INTEGER NOT NULL,
            kind TEXT NOT NULL,
            file_id TEXT NOT NULL,
            file_unique_id TEXT,
            mime TEXT,
            size INTEGER,
            duration INTEGER,
            file_name TEXT,
            transcript TEXT,
            -- What the bot did with it: seen, transcribed, attached, too_large, corrupt ...
            outcome TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX attachments_message ON attachments(message_id);
        CREATE INDEX attachments_chat ON attachments(chat_id, id);
        """,
    )


@migration
async def m007_first_response_is_a_reply(conn: aiosqlite.Connection) -> None:
    # A claim used to set first_response_at, so "time to first response" counted
    # claims as answers. On claimed tickets it becomes the first staff message to
    # the customer (none yet: empty). Chats deleted with /forget have no messages
    # left to tell, so their tickets keep the value they had.
    await conn.execute(
        """
        UPDATE tickets SET first_response_at = (
            SELECT MIN(m.created_at) FROM messages m
            WHERE m.ticket_id = tickets.id AND m.role = 'staff'
        )
        WHERE first_response_at IS NOT NULL
          AND EXISTS (SELECT 1 FROM ticket_events e
                      WHERE e.ticket_id = tickets.id AND e.event = 'claimed')
          AND EXISTS (SELECT 1 FROM messages m WHERE m.chat_id = tickets.chat_id)
        """
    )


@migration
async def m009_console_access(conn: aiosqlite.Connection) -> None:
    # One-time links to the web console and the sessions they open. Only hashes of
    # the secrets are kept: a copy of the database opens nobody's console.
    await run_script(
        conn,
        """
        CREATE TABLE console_links (
            token_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'staff')),
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT
        );
        CREATE TABLE console_sessions (
            session_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'staff')),
            csrf_token TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE INDEX console_sessions_user ON console_sessions(user_id);
        """,
    )


@migration
async def m010_answer_escalation_reason(conn: aiosqlite.Connection) -> None:
    # Why each handoff happened, on the answer that told the customer: the ticket
    # keeps only its strongest reason and an event only when the reason changes, so
    # the knowledge-gap report could not tell which questions the FAQ failed on.
    # Earlier handoffs get the reason of the ticket's latest escalation before them.
    await run_script(
        conn,
        """
        ALTER TABLE answers ADD COLUMN escalation_reason TEXT;
        UPDATE answers SET escalation_reason = (
            SELECT e.reason FROM messages m JOIN ticket_events e ON e.ticket_id = m.ticket_id
            WHERE m.id = answers.message_id AND e.event = 'escalated'
              AND e.created_at <= m.created_at
            ORDER BY e.id DESC LIMIT 1
        )
        WHERE message_id IN (SELECT id FROM messages WHERE role = 'bot' AND ticket_id IS NOT NULL)
        """,
    )


@migration
async def m011_customer_message_stored_once(conn: aiosqlite.Connection) -> None:
    # A customer's Telegram message is stored once, so handling it again after a
    # crash is one idempotent insert. Copies such a replay stored earlier keep
    # their text but give up the id, which the first copy keeps.
    await run_script(
        conn,
        """
        UPDATE messages SET telegram_message_id = NULL
        WHERE role = 'customer' AND telegram_message_id IS NOT NULL
          AND id > (SELECT MIN(m.id) FROM messages m
                    WHERE m.chat_id = messages.chat_id AND m.role = 'customer'
                      AND m.telegram_message_id = messages.telegram_message_id);
        CREATE UNIQUE INDEX messages_customer_once ON messages(chat_id, telegram_message_id)
            WHERE role = 'customer' AND telegram_message_id IS NOT NULL
        """,
    )
