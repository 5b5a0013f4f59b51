"""The outbox side of flood control and backlog grouping (the decisions: :mod:`alerts.flood`).

The delivery worker hands each claim to :meth:`OutboxControl.apply` before sending: backlog
groups become one digest each (sent in this pass, the members marked as its), notifications
beyond a per-hour limit are held and attached to a pending flood digest, and a claimed digest
gets its payload from its members. After a digest's attempt, :meth:`OutboxControl.settle`
delivers or gives up its members with it. All in the worker's transactions, so a crash between
claim and send leaves rows that the lease makes due again, never rows lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts import flood
from alerts.channels import Outgoing
from db.queries import flood as q

log = logging.getLogger(__name__)


class OutboxControl:
    """Applies :mod:`alerts.flood`'s decisions to claimed notifications."""

    def __init__(
        self,
        *,
        limits: Callable[[], flood.Limits],
        digest_after_s: float,
        lease_s: float,
        base_url: str,
    ) -> None:
        self._limits = limits
        self._digest_after_s = digest_after_s
        self._lease_s = lease_s
        self._base_url = base_url
        self.grouped = 0  # notifications sent as part of a backlog digest
        self.held = 0  # notifications held back by flood control

    async def apply(
        self, conn: AsyncConnection[Any], claimed: Sequence[Outgoing]
    ) -> list[Outgoing]:
        """What to send of a claim (in one transaction on ``conn``): the rest is grouped or held."""
        items = await self._group_backlog(conn, list(claimed))
        decisions = flood.hold_scopes(items, self._limits(), await self._sent(conn, items))
        send: list[Outgoing] = []
        for item, scope in zip(items, decisions, strict=True):
            if scope is None:
                send.append(item)
            else:
                await self._hold(conn, item, scope)
        return [await self._with_members(conn, i) if i.event == "digest" else i for i in send]

    async def settle(
        self, conn: AsyncConnection[Any], item: Outgoing, *, ok: bool, give_up: bool, error: str
    ) -> None:
        """After a digest's attempt: its members are delivered or given up with it."""
        if item.event != "digest":
            return
        if ok:
            await conn.execute(q.MEMBERS_DELIVERED, {"digest": item.notification_id})
        elif give_up:
            await conn.execute(q.MEMBERS_GIVEN_UP, {"digest": item.notification_id, "error": error})

    async def _sent(
        self, conn: AsyncConnection[Any], items: Sequence[Outgoing]
    ) -> dict[tuple[str, str, str], int]:
        recipients = sorted({(i.channel, i.target) for i in items if i.alert_id is not None})
        if not recipients:
            return {}
        params = {"channels": [c for c, _ in recipients], "targets": [t for _, t in recipients]}
        sent: dict[tuple[str, str, str], int] = {}
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(q.SENT_LAST_HOUR, params)
            for row in await cur.fetchall():
                scopes = ["recipient"]
                if row["shipment_id"] is not None:
                    scopes.append(f"shipment:{row['shipment_id']}")
                if row["device_id"] is not None:
                    scopes.append(f"device:{row['device_id']}")
                for scope in scopes:
                    key = (row["channel"], row["target"], scope)
                    sent[key] = sent.get(key, 0) + row["sent"]
        return sent

    async def _group_backlog(
        self, conn: AsyncConnection[Any], items: list[Outgoing]
    ) -> list[Outgoing]:
        groups = flood.backlog_groups(items)
        # A group of one in this claim may still have company beyond it (a backlog larger
        # than a claim): look for the rest of every first-attempt "opened" notification's group.
        grouped_ids = {i.notification_id for g in groups for i in g}
        singles = [
            i
            for i in items
            if i.event == "opened" and i.attempt == 1 and i.notification_id not in grouped_ids
        ]
        for single in singles:
            groups.append([single])
        taken = [i.notification_id for i in items]
        out = [i for i in items if i.notification_id not in grouped_ids]
        for group in groups:
            first = group[0]
            shipment_id = (first.payload.get("alert") or {}).get("shipment_id")
            if shipment_id is None:
                continue
            rows = await (
                await conn.execute(
                    q.CLAIM_GROUP_REST,
                    {
                        "channel": first.channel,
                        "target": first.target,
                        "shipment_id": str(shipment_id),
                        "taken": taken,
                    },
                )
            ).fetchall()
            members = group + [Outgoing(*row) for row in rows]
            taken.extend(m.notification_id for m in members)
            if len(members) < 2:
                continue  # a single stays as it was (already in ``out``)
            if len(group) == 1:
                out.remove(first)
            out.append(await self._backlog_digest(conn, members, shipment_id))
        return out

    async def _backlog_digest(
        self, conn: AsyncConnection[Any], members: Sequence[Outgoing], shipment_id: Any
    ) -> Outgoing:
        first = members[0]
        tier = min(m.tier for m in members)
        row = await (
            await conn.execute(
                q.INSERT_DIGEST,
                {
                    "tier": tier,
                    "channel": first.channel,
                    "target": first.target,
                    "payload": Jsonb({"event": "digest", "reason": "backlog"}),
                    "attempts": 1,
                    "due_in_s": self._lease_s,
                    "scope": f"shipment:{shipment_id}",
                },
            )
        ).fetchone()
        assert row is not None
        digest_id = int(row[0])
        ids = [m.notification_id for m in members]
        await conn.execute(q.JOIN_DIGEST, {"digest": digest_id, "ids": ids})
        self.grouped += len(members)
        return Outgoing(
            digest_id, None, "digest", tier, first.channel, first.target, {"reason": "backlog"}, 1
        )

    async def _hold(self, conn: AsyncConnection[Any], item: Outgoing, scope: str) -> None:
        params = {"channel": item.channel, "target": item.target, "scope": scope}
        row = await (await conn.execute(q.PENDING_FLOOD_DIGEST, params)).fetchone()
        if row is None:
            row = await (
                await conn.execute(
                    q.INSERT_DIGEST,
                    {
                        **params,
                        "tier": item.tier,
                        "payload": Jsonb({"event": "digest", "reason": "flood"}),
                        "attempts": 0,
                        "due_in_s": self._digest_after_s,
                    },
                )
            ).fetchone()
            assert row is not None
        reason = f"held back (flood control): the per-hour limit for {scope} was reached"
        await conn.execute(
            q.HOLD, {"digest": int(row[0]), "reason": reason, "id": item.notification_id}
        )
        self.held += 1
        log.info(
            "notification %d (%s) held back by flood control (%s); digest %d",
            item.notification_id,
            item.channel,
            scope,
            row[0],
        )

    async def _with_members(self, conn: AsyncConnection[Any], digest: Outgoing) -> Outgoing:
        """A claimed digest with the payload of its members as they are now."""
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(q.DIGEST_MEMBERS, {"digest": digest.notification_id})
            members = await cur.fetchall()
        alerts = [m["alert"] for m in members if m["alert"]]
        references = {a.get("shipment_reference") for a in alerts}
        payload = flood.digest_payload(
            tier=min((m["tier"] for m in members), default=digest.tier),
            reason=str(digest.payload.get("reason", "flood")),
            shipment_reference=references.pop() if len(references) == 1 else None,
            alerts=alerts,
            base_url=self._base_url,
        )
        await conn.execute(q.SET_PAYLOAD, {"payload": Jsonb(payload), "id": digest.notification_id})
        return Outgoing(
            digest.notification_id,
            None,
            "digest",
            digest.tier,
            digest.channel,
            digest.target,
            payload,
            digest.attempt,
        )
