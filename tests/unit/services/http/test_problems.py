"""Problem entries: the readable field name and an exact RFC 6901 pointer."""

from __future__ import annotations

import pytest

from services.http.body import Fields, whole_number
from services.http.problems import ProblemError, field_error


@pytest.mark.parametrize(
    ("field", "path", "pointer"),
    [
        ("purpose", None, "#/purpose"),
        ("source.system", None, "#/source/system"),
        ("a/b", ("a/b",), "#/a~1b"),
        ("x~y.z", ("x~y", "z"), "#/x~0y/z"),
        ("", ("",), "#/"),
    ],
)
def test_pointer_escapes_keys(field: str, path: tuple[str, ...] | None, pointer: str) -> None:
    assert field_error(field, "bad", path=path)["pointer"] == pointer


def test_unknown_nested_key_with_a_slash_is_named_exactly() -> None:
    fields = Fields({"source": {"sys/tem": 1}})
    fields.merge(fields.object("source"))
    with pytest.raises(ProblemError) as caught:
        fields.finish()
    (error,) = caught.value.errors
    assert error["field"] == "source.sys/tem" and error["pointer"] == "#/source/sys~1tem"
    assert caught.value.status == 422


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", 0),
        ("25", 25),
        ("0007", 7),
        ("999999999999999999", 999_999_999_999_999_999),
        ("1000000000000000000", None),  # 19 digits: past any limit the ledger reads
        ("9" * 5000, None),  # int() refuses more than 4300 digits
        ("²", None),  # str.isdigit() takes it, int() does not
        ("١٢", None),  # Arabic-Indic digits: int() takes them, a header or limit should not
        ("", None),
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("1_000", None),
    ],
)
def test_whole_number_reads_ascii_digits_only(text: str, number: int | None) -> None:
    assert whole_number(text) == number
