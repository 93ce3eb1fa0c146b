"""Write tests/vectors/column_v1_legacy.json: column values as the v1 binding stored them.

Run once, with the code of commit 2846860 (the last one writing the v1 column binding) on the
path: ``PYTHONPATH=src python scripts/make_column_legacy.py`` in a checkout of that commit. The
file is a fixture of existing data, not a generated vector: today's code writes the v2 binding,
so rerunning this script with it would not reproduce the file (tokens have random IVs anyway).
tests/test_sqlalchemy_binding.py loads it into SQLite and PostgreSQL and checks that the rows
still read, are still found, and rotate to the v2 binding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aes_hmac import Key
from aes_hmac.integrations.sqlalchemy import (
    BlindIndex,
    EncryptedJSON,
    EncryptedString,
    normalize_text,
)

OUT = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "column_v1_legacy.json"
KEY = bytes(range(32))
INDEX_KEY = bytes(range(32, 64))
BITS = 32


def main() -> None:
    key = Key(KEY)
    rows: dict[str, list[dict[str, Any]]] = {}

    def text_row(context: str, value: str) -> dict[str, Any]:
        token = EncryptedString(key, context=context).encrypt_value(value)
        index = BlindIndex(
            INDEX_KEY, source="x", bits=BITS, normalize=normalize_text, context=context
        )
        return {"value": value, "token": token, "index": index.digest(value).hex()}

    def json_row(context: str, value: Any) -> dict[str, Any]:
        token = EncryptedJSON(key, context=context).encrypt_value(value)
        index = BlindIndex(INDEX_KEY, source="x", bits=BITS, context=context)
        return {"value": value, "token": token, "index": index.digest(value).hex()}

    rows["people.email"] = [
        text_row("people.email", v) for v in ("alice@example.com", "Bob@Example.com")
    ]
    rows["people.profile"] = [
        json_row("people.profile", v) for v in (True, "true", [1, 2], "[1,2]", 1, "1", {"a": 1})
    ]
    # hr."salary.amount": its v1 binding is the same bytes as that of "hr.salary".amount.
    rows["hr.salary.amount"] = [text_row("hr.salary.amount", v) for v in ("100", "250")]
    doc = {
        "description": "column tokens and blind indexes written by the v1 binding "
        "(commit 2846860); made by scripts/make_column_legacy.py",
        "key": KEY.hex(),
        "index_key": INDEX_KEY.hex(),
        "bits": BITS,
        "rows": rows,
    }
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
