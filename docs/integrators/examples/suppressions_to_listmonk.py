"""The ledger's suppression list as a file listmonk's subscriber importer takes in blocklist mode.

The ledger's CSV (`GET /v1/suppressions?channel=email&format=csv&include_identifiers=true`) has
the columns blind_index, identifier_type, reason, since, event_id and address; listmonk's
importer needs an `email` column (and reads `name`, which older versions require). Entries of
erased subjects have an empty address (their key is destroyed): they are left out, as listmonk
would refuse them. Pages are given as files, in order; the output has one header row.

    python suppressions_to_listmonk.py page-1.csv page-2.csv > blocklist.csv
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from contextlib import ExitStack
from typing import TextIO

#: the name of a subscriber listmonk creates for an address it did not have (a blocklist import
#: changes only the status of one it had): no personal data, and says where it came from
NAME = "Suppressed by the consent ledger"


def convert(pages: Iterable[TextIO], out: TextIO) -> int:
    """Write `email,name` rows for every address of the pages; the number written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "name"])
    written = 0
    for page in pages:
        reader = csv.DictReader(page)
        if "address" not in (reader.fieldnames or ()):
            raise ValueError("no address column: ask for the list with include_identifiers=true")
        for row in reader:
            if row["address"]:
                writer.writerow([row["address"], NAME])
                written += 1
    return written


def main(paths: list[str]) -> None:
    with ExitStack() as stack:
        files = [stack.enter_context(open(p, newline="", encoding="utf-8")) for p in paths]
        try:
            written = convert(files or [sys.stdin], sys.stdout)
        except ValueError as exc:
            raise SystemExit(f"suppressions_to_listmonk: {exc}") from None
    print(f"{written} addresses", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
