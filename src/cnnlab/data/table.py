"""CSV datasets: a header row with ``path,label`` and optionally ``split``.

    path,label,split
    images/001.png,cat,train
    /data/extra/9.jpg,dog,test

Column names are matched case-insensitively; other columns are ignored. A relative path is relative
to the CSV's folder. Labels are class names (integers written as text are fine and are then ordered
numerically). ``split`` takes train, val (or valid, validation) or test; without the column the
rows are split 70/10/20, and a split that no row names (val, test) is carved from train.

A row whose file is missing or bad, whose label or path is empty, or whose split is unknown is
skipped and counted; its detail names the row, counting the header as row 1 as a spreadsheet does.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from cnnlab.data.bundle import DatasetBundle
from cnnlab.data.filesets import LabelledFile, assemble
from cnnlab.data.skips import SkipReport
from cnnlab.data.stratify import SPLIT_ALIASES, SplitOptions
from cnnlab.errors import DataError

REQUIRED = ("path", "label")


def read_csv(path: Path, name: str, *, options: SplitOptions, max_pixels: int, skip_log: str | None) -> DatasetBundle:
    """Open a CSV dataset (see the module docstring for the format)."""
    path = Path(os.path.abspath(path))
    skipped = SkipReport()
    files, has_split = _read_rows(path, skipped)
    labels = {f.label for f in files}
    if all(_is_int(label) for label in labels):
        class_names = sorted(labels, key=lambda label: (int(label), label))
    else:
        class_names = sorted(labels)
    declared = sorted({f.split for f in files if f.split}) if has_split else None
    return assemble(
        name,
        files,
        class_names,
        class_places=dict.fromkeys(class_names, str(path)),
        declared_splits=declared,
        options=options,
        skipped=skipped,
        max_pixels=max_pixels,
        skip_log=skip_log,
    )


def _read_rows(path: Path, skipped: SkipReport) -> tuple[list[LabelledFile], bool]:
    """The rows that name a file, a label and a known split; the others go to ``skipped``."""
    base = path.parent
    files: list[LabelledFile] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: Excel writes a byte-order mark
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path} is empty; a CSV dataset needs a header row: path,label (and optionally split)")
            columns = {cell.strip().lower(): i for i, cell in reversed(list(enumerate(header)))}
            missing = [c for c in REQUIRED if c not in columns]
            if missing:
                raise DataError(
                    f"{path} has no {' or '.join(missing)} column; its columns are {', '.join(header) or '(none)'}. "
                    "A CSV dataset needs a header row with path,label (and optionally split)"
                )
            split_column = columns.get("split")
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                file = _parse_row(row, columns, split_column, f"{path.name} row {reader.line_num}", base, skipped)
                if file is not None:
                    files.append(file)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 CSV") from None
    except csv.Error as exc:
        raise DataError(f"{path} is not a valid CSV file: {exc}") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return files, split_column is not None


def _parse_row(
    row: list[str], columns: dict[str, int], split_column: int | None, where: str, base: Path, skipped: SkipReport
) -> LabelledFile | None:
    def cell(i: int) -> str:
        return row[i].strip() if i < len(row) else ""

    raw_path, label = cell(columns["path"]), cell(columns["label"])
    if not raw_path:
        skipped.add(where, "empty path", f"{where}: the path cell is empty")
        return None
    file = os.path.normpath(os.path.join(base, raw_path))  # an absolute raw_path stays as it is
    if not label:
        skipped.add(file, "empty label", f"{where}: the label cell is empty")
        return None
    split = None
    if split_column is not None:
        value = cell(split_column)
        split = SPLIT_ALIASES.get(value.lower())
        if split is None:
            skipped.add(file, "unknown split", f"{where}: split {value!r}; use train, val, valid or test")
            return None
    return LabelledFile(file, label, split, where)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
