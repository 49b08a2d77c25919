"""Importers: existing recordings and exports into the raw log, payload byte for byte.

`import_files(root, fmt, paths)` is what `smabm import FORMAT FILE...` runs. Each file is read
by its format's module, written through a staged writer, and committed in one transaction
together with its import record (the sha256 of the file's bytes): a file that fails leaves
nothing behind, and a file already imported is skipped (docs/concepts/importers.md).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from recorder.importers import binance_vision, cryptofeed, hftbacktest, reddit, tardis
from recorder.importers.blocks import DEFAULT_BLOCK_BYTES, sha256_of
from recorder.importers.fileimport import FileImport, ImportOptions
from recorder.importers.report import FileReport, ImportFormatError, ImportReport, StreamRows
from recorder.importers.timestamps import parse_tz
from recorder.index import LogIndex
from recorder.writer import LogWriter

FORMATS: dict[str, Callable[[FileImport], None]] = {
    "hftbacktest": hftbacktest.read,
    "cryptofeed": cryptofeed.read,
    "tardis": tardis.read,
    "binance-vision": binance_vision.read,
    "reddit": reddit.read,
}

__all__ = ["FORMATS", "FileReport", "ImportFormatError", "ImportReport", "StreamRows",
           "import_files"]


def import_files(root: str | Path, fmt: str, paths: Iterable[str | Path], *,
                 keep_going: bool = False, tz: str | None = None, market: str | None = None,
                 symbol: str | None = None, data_type: str | None = None,
                 progress: bool = True, block_bytes: int = DEFAULT_BLOCK_BYTES) -> ImportReport:
    """Import `paths` (in the order given) as format `fmt` into the log at `root`.

    Without `keep_going` the first bad line or unreadable file raises `ImportFormatError`
    (`file:line: what`), after committing the files before it and nothing of that file. With
    it, bad lines are skipped and unreadable files left out, and the report lists both.
    `tz` reads naive ISO times (Reddit CSVs); `market`, `symbol`, `data_type` override what a
    format would infer from the file or its name.
    """
    if fmt not in FORMATS:
        raise ValueError(f"import format {fmt!r}: expected one of {', '.join(sorted(FORMATS))}")
    if tz is not None:
        parse_tz(tz)  # a bad tz is a config error before any file is touched
    options = ImportOptions(tz=tz, market=market, symbol=symbol, data_type=data_type,
                            block_bytes=block_bytes)
    report = ImportReport()
    index = LogIndex(root)
    try:
        for p in paths:
            path = Path(p)
            rep = FileReport(path=str(path), format=fmt)
            report.files.append(rep)
            try:
                _import_one(root, index, path, fmt, options, keep_going, rep)
            except (ImportFormatError, OSError) as exc:
                rep.status, rep.error = "failed", str(exc)
                rep.streams.clear()
                if not keep_going:
                    if isinstance(exc, OSError):
                        raise ImportFormatError(f"{path}: cannot read ({exc.strerror or exc})"
                                                ) from exc
                    raise
            if progress:
                print(_progress_line(rep), file=sys.stderr, flush=True)
    finally:
        index.close()
    return report


def _import_one(root: str | Path, index: LogIndex, path: Path, fmt: str,
                options: ImportOptions, keep_going: bool, rep: FileReport) -> None:
    rep.sha256 = sha256_of(path)
    if index.has_import(rep.sha256):
        rep.status = "duplicate"
        rep.note("already imported (same sha256): skipped")
        return
    with LogWriter(root, writer_id=f"import-{rep.sha256[:16]}", staged=True, fsync="off") as w:
        fi = FileImport(path, fmt, rep.sha256, w, options, keep_going, rep)
        FORMATS[fmt](fi)
        w.commit(import_key=rep.sha256,
                 import_meta={"path": str(path), "format": fmt, "rows": rep.rows,
                              "skipped_lines": rep.skipped_lines, "unit": rep.unit,
                              "options": {k: v for k, v in vars(options).items()
                                          if v is not None and k != "block_bytes"}})


def _progress_line(rep: FileReport) -> str:
    if rep.status == "imported":
        extra = f", skipped {rep.skipped_lines:,} lines" if rep.skipped_lines else ""
        return f"imported {rep.path}: {rep.rows:,} rows{extra}"
    if rep.status == "duplicate":
        return f"skipped {rep.path}: already imported"
    return f"failed {rep.path}: {rep.error}"
