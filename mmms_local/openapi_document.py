"""Writes the OpenAPI document of the app's route table: ``make openapi`` runs
``python -m mmms_local.openapi_document docs/openapi.json`` (no file: standard output)."""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> None:
    import app
    from chalicelib.openapi import build_openapi

    document = json.dumps(build_openapi(app.router.specs), indent=2, ensure_ascii=False) + "\n"
    if len(argv) > 1:
        with open(argv[1], "w", encoding="utf-8") as handle:
            handle.write(document)
    else:
        sys.stdout.write(document)


if __name__ == "__main__":
    main(sys.argv)
