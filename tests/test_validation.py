"""Validation and hard limits: every rejection is typed, names session, field and limit, and writes nothing."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ledger import InvalidInput, Ledger, LedgerError, LimitExceeded
from tests.conftest import dump


@pytest.fixture
def led(ledger: Ledger) -> Ledger:
    ledger.create_session("s")
    return ledger


def test_empty_metadata_is_fine(led: Ledger) -> None:
    assert led.get_metadata("s") == {}
    led.create_session("e", metadata={})
    assert led.get_metadata("e") == {}


def test_100_metadata_keys_are_accepted_and_the_101st_refused(led: Ledger) -> None:
    led.update_metadata("s", {f"key{i}": i for i in range(100)})
    assert len(led.get_metadata("s")) == 100
    led.set_metadata("s", "key5", "overwriting an existing key is fine")
    before = dump(led)
    with pytest.raises(LimitExceeded) as err:
        led.set_metadata("s", "key100", 1)
    assert (err.value.session_id, err.value.field, err.value.limit, err.value.actual) == ("s", "metadata", 100, 101)
    assert "100" in str(err.value) and "'s'" in str(err.value)
    assert dump(led) == before


def test_101_keys_at_creation_are_refused(led: Ledger) -> None:
    with pytest.raises(LimitExceeded):
        led.create_session("big", metadata={f"k{i}": i for i in range(101)})
    assert led.last_position == 1


def test_unicode_keys_and_values_round_trip(led: Ledger) -> None:
    values = {"名前": "エージェント", "emoji 🤖": "✓ done", "ключ": {"вложенный": ["ü", "ß"]}}
    led.update_metadata("s", values)
    assert led.get_metadata("s") == values
    assert led.get_metadata("s", "emoji 🤖") == "✓ done"


def test_a_key_of_256_bytes_is_accepted_and_257_refused(led: Ledger) -> None:
    led.set_metadata("s", "k" * 256, 1)
    led.set_metadata("s", "é" * 128, 1)  # 256 bytes of UTF-8
    before = dump(led)
    with pytest.raises(LimitExceeded) as err:
        led.set_metadata("s", "k" * 257, 1)
    assert (err.value.field, err.value.limit, err.value.actual) == ("metadata key", 256, 257)
    with pytest.raises(LimitExceeded):
        led.set_metadata("s", "é" * 128 + "k", 1)  # 129 characters, 257 bytes
    assert dump(led) == before


def test_a_value_of_4096_bytes_is_accepted_and_more_refused(led: Ledger) -> None:
    led.set_metadata("s", "ok", "x" * 4094)  # 4094 characters + 2 quotes
    before = dump(led)
    with pytest.raises(LimitExceeded) as err:
        led.set_metadata("s", "big", "x" * 4095)
    assert (err.value.field, err.value.limit, err.value.actual) == ("metadata['big']", 4096, 4097)
    assert "4096" in str(err.value)
    assert dump(led) == before


def test_a_data_value_over_the_limit_is_refused(led: Ledger) -> None:
    led.set_data("s", "ok", "x" * 1_000_000)
    with pytest.raises(LimitExceeded) as err:
        led.set_data("s", "big", "x" * 1_048_575)
    assert err.value.limit == 1_048_576


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, [1, math.nan], {"x": math.inf}])
def test_nan_and_infinities_are_refused(led: Ledger, bad: Any) -> None:
    with pytest.raises(InvalidInput, match="NaN or infinities"):
        led.set_metadata("s", "k", bad)
    with pytest.raises(InvalidInput):
        led.set_data("s", "k", bad)
    assert led.last_position == 1


@pytest.mark.parametrize("bad", [{1, 2}, b"bytes", object(), {1: "int key"}, 2**64, "\ud800"])
def test_values_that_are_not_json_are_refused(led: Ledger, bad: Any) -> None:
    with pytest.raises(InvalidInput) as err:
        led.set_data("s", "k", bad)
    assert err.value.field == "data['k']"
    assert led.last_position == 1


def test_deep_and_cyclic_structures_are_refused(led: Ledger) -> None:
    deep: Any = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(LimitExceeded, match="nested deeper"):
        led.set_data("s", "deep", deep)
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(LimitExceeded):
        led.set_metadata("s", "cyclic", cyclic)
    assert led.last_position == 1


def test_tuples_and_subclasses_are_stored_as_plain_json(led: Ledger) -> None:
    class Name(str):
        pass

    led.set_data("s", "t", (1, (2, 3), Name("x")))
    assert led.get_data("s", "t") == [1, [2, 3], "x"]
    assert type(led.get_data("s", "t")[2]) is str


@pytest.mark.parametrize(
    "bad_id", ["", "x" * 129, "has space", "semi;colon", "quote'", "slash/", "nul\x00", "é", 42, None, b"bytes"]
)
def test_session_ids_must_be_1_to_128_safe_characters(ledger: Ledger, bad_id: Any) -> None:
    call = ledger.create_session if bad_id is not None else ledger.get_session
    with pytest.raises(InvalidInput) as err:
        call(bad_id)
    assert err.value.field == "session_id"
    assert ledger.last_position == 0


def test_a_128_character_session_id_with_every_allowed_symbol_works(ledger: Ledger) -> None:
    sid = ("aZ09._:-" * 16)[:128]
    assert ledger.create_session(sid).session_id == sid


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda led: led.add_message("s", "robot", "x"), "role"),
        (lambda led: led.add_message("s", "user", None), "content"),
        (lambda led: led.add_message("s", "user", 5), "content"),
        (lambda led: led.add_message("s", "user", "x", tokens={"input": -1}), "tokens.input"),
        (lambda led: led.add_message("s", "user", "x", tokens={"input": True}), "tokens.input"),
        (lambda led: led.add_message("s", "user", "x", tokens={"prompt": 1}), "tokens"),
        (lambda led: led.add_message("s", "user", "x", tokens=[1, 2]), "tokens"),
        (lambda led: led.add_message("s", "user", "x", model="m" * 257), "model"),
        (lambda led: led.link_invocation("s", "", "git"), "invocation_id"),
        (lambda led: led.link_invocation("s", "i", None), "tool_name"),
        (lambda led: led.link_invocation("s", "i", "git", duration_ms=-1), "duration_ms"),
        (lambda led: led.link_invocation("s", "i", "git", duration_ms=math.nan), "duration_ms"),
        (lambda led: led.link_invocation("s", "i", "git", cost="free"), "cost"),
        (lambda led: led.complete_session("s", "done"), "status"),
        (lambda led: led.set_metadata("s", "", 1), "metadata key"),
        (lambda led: led.set_metadata("s", 7, 1), "metadata key"),
        (lambda led: led.set_metadata("s", "k\x00", 1), "metadata key"),
        (lambda led: led.update_metadata("s", [("k", 1)]), "metadata"),
        (lambda led: led.set_data("s", None, 1), "data key"),
        (lambda led: led.add_tags("s", "urgent"), "tags"),
        (lambda led: led.add_tags("s", [""]), "tags"),
        (lambda led: led.add_tags("s", ["a\nb"]), "tags"),
        (lambda led: led.add_tags("s", [1]), "tags"),
        (lambda led: led.add_tags("s", ["t" * 129]), "tags"),
        (lambda led: led.create_session("n", user_id=5), "user_id"),
        (lambda led: led.create_session("n", metadata="role=planner"), "metadata"),
        (lambda led: led.add_message("s", "user", "x", expected_version=-1), "expected_version"),
        (lambda led: led.add_message("s", "user", "x", expected_version="1"), "expected_version"),
        (lambda led: led.add_message("s", "user", "x", event_id="not valid!"), "event_id"),
        (lambda led: led.messages("s", limit=-1), "limit"),
        (lambda led: led.messages("s", offset="0"), "offset"),
        (lambda led: led.history(after=-5), "after"),
    ],
)
def test_bad_arguments_raise_invalid_input_naming_the_field(led: Ledger, call: Any, field: str) -> None:
    before = dump(led)
    with pytest.raises(InvalidInput) as err:
        call(led)
    assert err.value.field == field
    assert dump(led) == before


def test_too_many_tags_are_refused(led: Ledger) -> None:
    led.add_tags("s", [f"t{i}" for i in range(100)])
    with pytest.raises(LimitExceeded) as err:
        led.add_tags("s", ["one-more"])
    assert err.value.limit == 100


def test_nul_bytes_are_content_but_not_identifiers(led: Ledger) -> None:
    led.add_message("s", "tool", "binary\x00output", tool_name="cat")
    assert led.messages("s")[0].content == "binary\x00output"
    with pytest.raises(InvalidInput):
        led.add_message("s", "tool", "x", tool_name="c\x00t")


def test_sql_metacharacters_are_just_data(led: Ledger) -> None:
    nasty = "'; DROP TABLE events; -- %_\"`"
    led.set_metadata("s", nasty, nasty)
    led.set_data("s", nasty, nasty)
    led.add_tags("s", [nasty])
    led.add_message("s", "user", nasty)
    assert led.get_metadata("s", nasty) == nasty
    assert led.get_data("s", nasty) == nasty
    assert nasty in led.get_session("s").tags
    assert led.verify().ok


def test_every_error_is_a_ledger_error(led: Ledger) -> None:
    for call in (lambda: led.add_message("s", "x", "y"), lambda: led.get_session("zz"), lambda: led.create_session("s")):
        with pytest.raises(LedgerError):
            call()


@pytest.mark.parametrize("dots", [".", "..", "..."])
def test_an_id_of_only_dots_is_refused(ledger: Ledger, dots: str) -> None:
    with pytest.raises(InvalidInput, match="only dots"):
        ledger.create_session(dots)


@pytest.mark.parametrize("tag", ["a\x7fb", "c\x85d", "tab\there"])
def test_tags_refuse_every_control_character(led: Ledger, tag: str) -> None:
    with pytest.raises(InvalidInput, match="control"):
        led.add_tags("s", [tag])


def test_values_nest_at_most_32_containers_deep(led: Ledger) -> None:
    def nested(depth: int) -> Any:
        value: Any = []
        for _ in range(depth - 1):
            value = [value]
        return value

    led.set_data("s", "ok", nested(32))
    with pytest.raises(LimitExceeded):
        led.set_data("s", "deep", nested(33))
