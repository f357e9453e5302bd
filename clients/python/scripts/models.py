"""``mmms_client/models.py`` from the service's contract (docs/openapi.json).

``python clients/python/scripts/models.py`` rewrites it with datamodel-code-generator
(TypedDicts: answers stay plain JSON data, typed); ``--check`` fails when the committed file
has drifted from the document. ``make openapi`` runs the first, ``make test`` the second.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTRACT = HERE.parents[2] / "docs" / "openapi.json"
TARGET = HERE.parent / "src" / "mmms_client" / "models.py"
BANNER = (
    '"""The bodies and answers of the MMMS API, generated from docs/openapi.json: do not edit.\n\n'
    "Regenerate with `make openapi` (datamodel-code-generator, TypedDict output).\n"
    '"""\n\n'
)


def generate() -> str:
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "models.py"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "datamodel_code_generator",
                "--input",
                str(CONTRACT),
                "--input-file-type",
                "openapi",
                "--output-model-type",
                "typing.TypedDict",
                "--target-python-version",
                "3.11",
                "--enum-field-as-literal",
                "all",
                "--use-schema-description",
                "--disable-timestamp",
                "--formatters",
                "builtin",
                "--output",
                str(output),
            ],
            check=True,
        )
        lines = output.read_text(encoding="utf-8").splitlines(keepends=True)
    # Drop the generator's own header (it names the input file), keep the rest as it is.
    body = "".join(lines[next(i for i, line in enumerate(lines) if line.startswith("from ")) :])
    return BANNER + body


def main() -> int:
    generated = generate()
    if "--check" in sys.argv:
        if TARGET.read_text(encoding="utf-8") != generated:
            sys.stderr.write("clients/python mmms_client/models.py is stale: run `make openapi`\n")
            return 1
        return 0
    TARGET.write_text(generated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
