"""`consent-ledger webhooks create|list|show|update|delete|rotate-secret`: the webhook
subscriptions, as the admin routes under /v1/webhooks manage them (the same field checks,
services/rules/webhook_fields.py). Needs DATABASE_URL, and for create and rotate-secret the
master keys, which seal the secret; a secret is printed only by those two.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

from projections import webhook_subscriptions as stored
from services.bootstrap import operator_database
from services.config import Settings
from services.identity.secrets import SecretsError
from services.rules.webhook_fields import change_problems, check_fields
from services.webhooks import subscriptions


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hooks = sub.add_parser("webhooks", help="subscribe receivers to events; rotate their secrets")
    actions = hooks.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="subscribe a receiver; its secret is shown once")
    create.add_argument("--url", required=True, help="https://host[:port]/path")
    create.add_argument(
        "--event", action="append", required=True, help="an event type; repeat for several"
    )
    create.add_argument("--description")
    create.add_argument(
        "--include-identifiers",
        action="store_true",
        help="deliveries carry the subject's e-mail addresses and phone numbers",
    )
    actions.add_parser("list", help="every subscription (never a secret)")
    for name, text in (
        ("show", "one subscription as JSON (never its secret)"),
        ("delete", "delete a subscription with its deliveries"),
    ):
        actions.add_parser(name, help=text).add_argument("webhook_id")
    rotate = actions.add_parser(
        "rotate-secret", help="a new secret; the previous one signs beside it for a day"
    )
    rotate.add_argument("webhook_id")
    rotate.add_argument(
        "--retire-previous-now",
        action="store_true",
        help="the previous secrets stop signing at once (one leaked)",
    )
    update = actions.add_parser("update", help="change url, events, description or enabled")
    update.add_argument("webhook_id")
    update.add_argument("--url")
    update.add_argument("--event", action="append", help="the new event types; repeatable")
    update.add_argument("--description")
    update.add_argument("--enable", dest="enabled", action="store_const", const=True)
    update.add_argument("--disable", dest="enabled", action="store_const", const=False)


def table(rows: list[stored.SubscriptionRow]) -> str:
    lines = [("id", "url", "events", "identifiers", "enabled", "failing since")]
    lines += [
        (
            str(r.id),
            r.url,
            ",".join(r.event_types),
            "yes" if r.include_identifiers else "no",
            "yes" if r.enabled else "no",
            r.failing_since.isoformat(timespec="seconds") if r.failing_since else "-",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(6)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _fail(action: str, message: str, code: int) -> int:
    print(f"consent-ledger webhooks {action}: {message}", file=sys.stderr)
    return code


def _checked(
    settings: Settings, body: dict[str, Any], creating: bool
) -> tuple[dict[str, Any], str]:
    values, problems = check_fields(
        body,
        creating=creating,
        allow_loopback=settings.webhook_allow_loopback,
        allow_private=settings.webhook_allow_private,
    )
    return values, "; ".join(f"{p.field}: {p.detail}" for p in problems)


async def run_webhooks(settings: Settings, args: argparse.Namespace) -> int:
    action = args.action
    webhook_id = None
    if hasattr(args, "webhook_id"):
        try:
            webhook_id = uuid.UUID(args.webhook_id[:40])
        except ValueError:
            return _fail(action, f"no webhook {args.webhook_id[:64]!r}", 1)
    async with operator_database(settings) as conn:
        if action == "list":
            print(table(await stored.list_subscriptions(conn)))
            return 0
        if action == "create":
            body = {"url": args.url, "events": args.event, "description": args.description}
            body["include_identifiers"] = args.include_identifiers
            values, problems = _checked(settings, body, creating=True)
            if problems:
                return _fail(action, problems, 2)
            try:
                master = settings.secrets().master
            except SecretsError as exc:
                return _fail(action, str(exc), 2)
            secret, row = await subscriptions.create(conn, master, values, None)
            print(json.dumps(row.as_json(), indent=2))
            print("the signing secret (shown only now; give it to the receiver):")
            print(secret)
            return 0
        assert webhook_id is not None
        if action == "show":
            found = await stored.get_subscription(conn, webhook_id)
            if found is None:
                return _fail(action, f"no webhook {args.webhook_id!r}", 1)
            print(json.dumps(found.as_json(), indent=2))
            return 0
        if action == "delete":
            if not await stored.delete_subscription(conn, webhook_id):
                return _fail(action, f"no webhook {args.webhook_id!r}", 1)
            print(f"deleted webhook {webhook_id} with its deliveries")
            return 0
        if action == "rotate-secret":
            try:
                master = settings.secrets().master
            except SecretsError as exc:
                return _fail(action, str(exc), 2)
            now = args.retire_previous_now
            rotated = await subscriptions.rotate(conn, master, webhook_id, retire_previous_now=now)
            if rotated is None:
                return _fail(action, f"no webhook {args.webhook_id!r}", 1)
            secret, retires_at = rotated
            if now:
                print("the previous secrets are deleted: only the new one signs")
            else:
                until = retires_at.isoformat()
                print(f"the previous secret signs beside the new one until {until}")
            print("the new signing secret (shown only now):")
            print(secret)
            return 0
        given = {"url": args.url, "events": args.event, "description": args.description}
        body = {k: v for k, v in given.items() if v is not None}
        if args.enabled is not None:
            body["enabled"] = args.enabled
        if not body:
            return _fail(action, "nothing to change (--url, --event, --description, --enable)", 2)
        values, problems = _checked(settings, body, creating=False)
        if problems:
            return _fail(action, problems, 2)
        found = await stored.get_subscription(conn, webhook_id)
        if found is None:
            return _fail(action, f"no webhook {args.webhook_id!r}", 1)
        refused = change_problems(
            values, url=found.url, include_identifiers=found.include_identifiers
        )
        if refused:
            return _fail(action, "; ".join(f"{p.field}: {p.detail}" for p in refused), 2)
        changed = await stored.update_subscription(conn, webhook_id, values)
        if changed is None:
            return _fail(action, f"no webhook {args.webhook_id!r}", 1)
        print(json.dumps(changed.as_json(), indent=2))
        return 0
