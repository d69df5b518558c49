"""Function and layer code is extracted once per content hash, safely when several workers start at once."""
from __future__ import annotations

import io
import threading
import zipfile

from sdlf_cli.local.runtime.workers import extract_zip


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buffer.getvalue()


FILES = {f"python/pkg{i}/sub/mod{j}.py": f"X = {i * 100 + j}\n" for i in range(20) for j in range(10)}


def test_workers_starting_at_once_each_get_the_whole_tree(tmp_path):
    data, target = _zip(FILES), tmp_path / "layers" / "datalake-abc"
    barrier = threading.Barrier(8)
    results, errors = [], []

    def start() -> None:
        barrier.wait()
        try:
            root = extract_zip(data, target)
            results.append(all((root / name).read_text() == text for name, text in FILES.items()))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == [True] * 8
    assert sorted(p.name for p in target.parent.iterdir()) == ["datalake-abc"], "no scratch folder is left"


def test_a_half_finished_extraction_is_done_again(tmp_path):
    target = tmp_path / "task"
    (target / "python").mkdir(parents=True)
    (target / "python" / "partial.py").write_text("")
    root = extract_zip(_zip({"handler.py": "def handler(e, c): return 1\n"}), target)
    assert sorted(p.name for p in root.iterdir()) == [".sdlf-extracted", "handler.py"]
