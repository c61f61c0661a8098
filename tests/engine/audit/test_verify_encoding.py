"""The cheap path's own JSON (engine/audit/verify.py): the same bytes ``canonical`` writes.

``_encoder`` builds, once at import, the encoder that re-canonicalises a ``gates`` column; if it
wrote other bytes than ``canonical`` for any value, an honest row would fall back (slow) and, worse,
a row could be compared against the wrong text. Both of its builds (the C encoder, and plain
``json`` where the C one is missing) must agree with ``canonical``. ``_Gates`` remembers at most
``GATES_CACHE`` texts, so memory stays flat over a million events.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import engine.audit.verify as verify_module
from engine.audit.chain import canonical, normalise

VALUES: list[Any] = [
    [],
    [{"gate": "online_hours", "actual": 0.8333333333333334, "required": 25, "passed": False}],
    [{"z": 1, "a": {"y": [1.5, None, True, False], "b": "学 \" \\ \n \t \x01 😀 \u2028"}, "m": -0.5}],
    {"b": 1, "a": 2, "c": {"z": None, "y": 10**20}},
    "引号 \" 与 \\ 反斜杠",
    1e-7,
    1e16,
    -3,
    None,
]


@pytest.mark.parametrize("c_encoder", [True, False], ids=["c", "python"])
@pytest.mark.parametrize("value", VALUES)
def test_the_encoder_writes_canonicals_text(monkeypatch: pytest.MonkeyPatch, c_encoder: bool, value: Any) -> None:
    """Sorted keys, no spaces, UTF-8 characters as themselves: byte for byte what canonical writes."""
    if not c_encoder:
        monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    encode = verify_module._encoder()
    assert encode(normalise(value)).encode("utf-8") == canonical(value)


@pytest.mark.parametrize("c_encoder", [True, False], ids=["c", "python"])
def test_the_encoder_refuses_what_canonical_refuses(monkeypatch: pytest.MonkeyPatch, c_encoder: bool) -> None:
    """NaN and infinities are not JSON; a key that is no JSON scalar, or bytes, cannot be written at all.
    (canonical's ``normalise`` refuses even an int key first; ``_Gates`` only encodes what JSON decoded.)"""
    if not c_encoder:
        monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    encode = verify_module._encoder()
    for bad in ([float("nan")], {"x": float("inf")}, {"a": {(1, 2): 3}}, [b"bytes"]):
        with pytest.raises((ValueError, TypeError)):
            encode(bad)


def test_each_encoder_build_is_independent() -> None:
    """Two builds give equal text (no state carried between calls: a list seen twice is no cycle)."""
    encode = verify_module._encoder()
    shared = [1, 2]
    assert encode([shared, shared]) == "[[1,2],[1,2]]"
    assert encode({"a": shared}) == encode({"a": shared}) == '{"a":[1,2]}'


def test_gates_cache_stays_within_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most GATES_CACHE texts are remembered; a text seen again, cached or not, gives the same answer."""
    monkeypatch.setattr(verify_module, "GATES_CACHE", 3)
    gates = verify_module._Gates()
    texts = [json.dumps([{"gate": f"g{i}", "actual": i}]) for i in range(7)] + ["[NaN]", "not json"]
    first, sizes = [], []
    for t in texts:
        first.append(gates(t))
        sizes.append(len(gates.cache))
    again = []
    for t in reversed(texts):
        again.append(gates(t))
        sizes.append(len(gates.cache))
    assert max(sizes) == 3
    assert again == list(reversed(first))
    assert first[:7] == [canonical([{"gate": f"g{i}", "actual": i}]) for i in range(7)]
    assert first[7:] == [None, None]
    assert gates(None) is None


def test_a_cached_refusal_is_still_a_refusal() -> None:
    """A text that cannot be canonicalised is remembered as such: asked again, it is refused again."""
    gates = verify_module._Gates()
    assert gates("[Infinity]") is None
    assert "[Infinity]" in gates.cache
    assert gates("[Infinity]") is None
    assert gates("[1.0]") == b"[1]"
    assert gates("[1.0]") == b"[1]"


def test_a_gates_text_seen_again_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """``gates`` is canonicalised from the column text, cached by that text (the module's docstring):
    a trail's events share a few gates texts, each decoded once, not once per event; a refusal too."""
    seen: list[str] = []
    real = verify_module._decode

    def counting(text: str) -> Any:
        seen.append(text)
        return real(text)

    monkeypatch.setattr(verify_module, "_decode", counting)
    gates = verify_module._Gates()
    text = '[{"gate": "g", "actual": 1.0}]'
    for _ in range(3):
        assert gates(text) == b'[{"actual":1,"gate":"g"}]'
        assert gates("[NaN]") is None
    assert seen == [text, "[NaN]"]
