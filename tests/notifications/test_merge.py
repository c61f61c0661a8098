"""Packing many messages for one robot into few sends within its size cap."""

from __future__ import annotations

from notifications.merge import Unit, pack
from notifications.message import OutgoingMessage


def unit(i: int, size: int = 100) -> Unit:
    body = f"<{i}>" + "校" * size
    return Unit((i,), OutgoingMessage(channel="dingtalk", address="a", subject=f"s{i}", text=body,
                                      markdown=body, key=f"k{i}"))


def test_no_merging_when_there_are_enough_slots() -> None:
    units = [unit(i) for i in range(3)]
    now, later = pack(units, slots=3, cap_bytes=10_000)
    assert now == units and later == []


def test_merging_keeps_order_and_every_message() -> None:
    units = [unit(i, size=1000) for i in range(10)]  # ~3 KB each
    now, later = pack(units, slots=4, cap_bytes=10_000)
    assert later == []
    assert len(now) == 4
    assert [i for u in now for i in u.ids] == list(range(10))
    for merged in now:
        body = merged.message.chat_body
        assert len(body.encode()) <= 10_000
        assert [body.index(f"<{i}>") for i in merged.ids] == sorted(body.index(f"<{i}>") for i in merged.ids)
    assert now[0].message.subject.startswith("s0 (+")


def test_rest_is_deferred_when_even_merged_messages_do_not_fit() -> None:
    units = [unit(i, size=2000) for i in range(10)]  # 6 KB each: one per 10 KB send
    now, later = pack(units, slots=3, cap_bytes=10_000)
    assert [u.ids for u in now] == [(0,), (1,), (2,)]
    assert [u.ids for u in later] == [(i,) for i in range(3, 10)]
    assert pack(units, slots=0, cap_bytes=10_000) == ([], units)
