"""Benchmark peer: mirror every conversation and feedback item into a new SQLite file, as a competent Python user writes it.

Usage: python3 sync_sqlite.py BASE_URL API_KEY DB_FILE

It pages `GET /conversations` and `GET /feedback` (limit 100) through one `requests.Session`,
decodes each page with `json`, and loads the same three tables as `inkeep-analytics sync --db`
(conversations, messages with their position, feedback with its conversation id; a column per
documented top-level field, objects and arrays as JSON text, and `raw`, the record re-encoded
with `json.dumps`) with `sqlite3.executemany`, in one transaction, creating the indexes at the end.
It re-downloads and rewrites everything on every run: there is nothing incremental about it.
On success it prints one JSON line, `{"records": N, "max_rss_kib": K}`, and exits 0.
On any HTTP, network, decoding or file error it prints a message on stderr and exits 1.
"""

import json
import os
import resource
import sqlite3
import sys

import requests

PAGE_SIZE = 100

CONVERSATION_FIELDS = [
    ("id", "id"), ("type", "type"), ("external_id", "externalId"), ("external_url", "externalUrl"),
    ("support_ticket_conversation_id", "supportTicketConversationId"), ("created_at", "createdAt"),
    ("updated_at", "updatedAt"), ("project_id", "projectId"), ("integration_id", "integrationId"),
    ("visibility", "visibility"), ("tags", "tags"), ("properties", "properties"),
    ("user_properties", "userProperties"), ("messages_openai_format", "messagesOpenAIFormat"),
]
MESSAGE_FIELDS = [
    ("id", "id"), ("type", "type"), ("external_id", "externalId"), ("external_url", "externalUrl"),
    ("created_at", "createdAt"), ("updated_at", "updatedAt"), ("role", "role"), ("content", "content"),
    ("name", "name"), ("links", "links"), ("tool_calls", "tool_calls"), ("properties", "properties"),
    ("user_properties", "userProperties"),
]
FEEDBACK_FIELDS = [
    ("id", "id"), ("type", "type"), ("message_id", "messageId"), ("created_at", "createdAt"),
    ("updated_at", "updatedAt"), ("reasons", "reasons"), ("details", "details"), ("sources", "sources"),
    ("properties", "properties"), ("user_properties", "userProperties"),
]


def fail(message):
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr)
    sys.exit(1)


def cell(value):
    """Scalars as they are, objects and arrays as JSON text."""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def row(record, fields, *extra):
    return [cell(record.get(field)) for _, field in fields] + list(extra) + [json.dumps(record)]


def get_page(session, base_url, path, offset):
    url = f"{base_url}/{path}?limit={PAGE_SIZE}&offset={offset}"
    try:
        response = session.get(url, timeout=60)
        response.raise_for_status()
        return response.json()
    except requests.RequestException as error:
        fail(f"GET {url} failed: {error}")
    except ValueError as error:
        fail(f"GET {url} returned a body that is not JSON: {error}")


def create(db):
    def table(name, leading, fields, trailing):
        columns = leading + [f"{column} TEXT" for column, _ in fields] + trailing + ["raw TEXT NOT NULL"]
        db.execute(f"CREATE TABLE {name} ({', '.join(columns)})")

    table("conversations", [], CONVERSATION_FIELDS, [])
    table("messages", ["conversation_id TEXT NOT NULL", "position INTEGER NOT NULL"], MESSAGE_FIELDS, [])
    table("feedback", [], FEEDBACK_FIELDS, ["conversation_id TEXT"])


def insert(db, name, width, rows):
    db.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * width)})", rows)


def main():
    if len(sys.argv) != 4:
        print("usage: python3 sync_sqlite.py BASE_URL API_KEY DB_FILE", file=sys.stderr)
        sys.exit(2)
    base_url, api_key, db_path = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key}"
    records = 0
    try:
        db = sqlite3.connect(db_path)
        with db:  # one transaction
            create(db)
            offset = 0
            while True:
                page = get_page(session, base_url, "conversations", offset)
                conversations = page["conversations"]
                insert(db, "conversations", len(CONVERSATION_FIELDS) + 1,
                       [row(c, CONVERSATION_FIELDS) for c in conversations])
                insert(db, "messages", len(MESSAGE_FIELDS) + 3,
                       [[c["id"], position] + row(m, MESSAGE_FIELDS)
                        for c in conversations for position, m in enumerate(c.get("messages") or [])])
                records += len(conversations)
                offset += len(conversations)
                if len(conversations) < PAGE_SIZE or offset >= int(page["total"]):
                    break
            offset = 0
            while True:
                page = get_page(session, base_url, "feedback", offset)
                items = page["positiveFeedback"] + page["negativeFeedback"]
                insert(db, "feedback", len(FEEDBACK_FIELDS) + 2,
                       [row(f, FEEDBACK_FIELDS, (f.get("conversation") or {}).get("id")) for f in items])
                records += len(items)
                offset += PAGE_SIZE
                if len(page["positiveFeedback"]) < PAGE_SIZE and len(page["negativeFeedback"]) < PAGE_SIZE:
                    break
            for statement in [
                "CREATE UNIQUE INDEX conversations_id ON conversations (id)",
                "CREATE INDEX conversations_created_at ON conversations (created_at)",
                "CREATE UNIQUE INDEX messages_place ON messages (conversation_id, position)",
                "CREATE INDEX messages_id ON messages (id)",
                "CREATE UNIQUE INDEX feedback_id ON feedback (id)",
                "CREATE INDEX feedback_conversation_id ON feedback (conversation_id)",
                "CREATE INDEX feedback_created_at ON feedback (created_at)",
            ]:
                db.execute(statement)
        db.close()
    except (sqlite3.Error, OSError) as error:
        fail(f"cannot write {db_path}: {error}")
    except (KeyError, TypeError) as error:
        fail(f"a page lacks {error}")
    summary = {"records": records, "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
