"""Evidence bundles: one folder per host, the raw text Windows printed (see docs/evidence-bundle.md).

The same format is written by `port80 scan`, read by `port80 analyze` and served by the lab.
File names come from the evidence-kind registry (remote/evidence/kinds.py); reading and writing
are the only IO.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from remote.errors import Port80Error
from remote.jsontext import dumps_indented
from remote.evidence.kinds import COMMANDS, FILES  # kind -> file name, and the command text on the host
from remote.evidence.textio import REPLACED_NOTE, decode_text, valid_unicode, valid_unicode_value

__all__ = ["COMMANDS", "FILES", "HOST_FILE", "Bundle", "BundleError", "find_bundles", "read_bundle", "write_bundle"]

HOST_FILE = "host.json"
MAX_FILE_BYTES = 64 * 1024 * 1024  # a bigger evidence file is refused, not read into memory


class BundleError(Port80Error):
    """A bundle folder that cannot be read at all (message names the path)."""


@dataclass
class Bundle:
    host: str
    texts: dict[str, Optional[str]] = field(default_factory=dict)  # kind -> text; None = missing
    meta: dict[str, Any] = field(default_factory=dict)  # host.json
    path: Optional[Path] = None
    problems: list[str] = field(default_factory=list)  # files that could not be read

    def text(self, kind: str) -> Optional[str]:
        return self.texts.get(kind)


def is_bundle_dir(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in (*FILES.values(), HOST_FILE))


def find_bundles(paths: Iterable[Path]) -> list[Path]:
    """Bundle folders among ``paths``: each path is a bundle, or a folder of bundle folders."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise BundleError(f"{p}: no such file or folder")
        if is_bundle_dir(p):
            found.append(p)
        elif p.is_dir():
            subs = sorted(c for c in p.iterdir() if not _is_staging(c) and is_bundle_dir(c))
            if not subs:
                raise BundleError(f"{p}: not an evidence bundle and holds none (expected {', '.join(FILES.values())})")
            found.extend(subs)
        else:
            raise BundleError(f"{p}: not a folder (an evidence bundle is a folder per host)")
    return found


def read_bundle(path: Path) -> Bundle:
    path = Path(path)
    meta: dict[str, Any] = {}
    problems: list[str] = []
    hp = path / HOST_FILE
    if hp.is_file():
        try:
            loaded = json.loads(decode_text(hp.read_bytes()))
            if isinstance(loaded, dict):
                meta, n = valid_unicode_value(loaded)  # a "\ud800" escape: U+FFFD, noted
                if n:
                    problems.append(f"{hp}: {n} {REPLACED_NOTE}")
            else:
                problems.append(f"{hp}: not a JSON object")
        except (OSError, ValueError, RecursionError) as e:
            problems.append(f"{hp}: unreadable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    texts: dict[str, Optional[str]] = {}
    for kind, name in FILES.items():
        fp = path / name
        if not fp.is_file():
            texts[kind] = None
            continue
        try:
            size = fp.stat().st_size
            if size > MAX_FILE_BYTES:
                problems.append(f"{fp}: {size} bytes, over the {MAX_FILE_BYTES} byte limit; not read")
                texts[kind] = None
                continue
            texts[kind] = decode_text(fp.read_bytes())
        except OSError as e:
            problems.append(f"{fp}: unreadable ({e.strerror or e})")
            texts[kind] = None
    for name, n in (meta.get("replaced_characters") or {}).items() if isinstance(meta.get("replaced_characters"), dict) else ():
        problems.append(f"{name}: {n} {REPLACED_NOTE} when it was stored")
    host = str(meta.get("host") or meta.get("hostname") or path.name)
    return Bundle(host=host, texts=texts, meta=meta, path=path, problems=problems)


def write_bundle(path: Path, bundle: Bundle) -> Bundle:
    """Write a bundle folder (UTF-8 text, exactly as received; host.json last). Text that UTF-8
    cannot hold (a lone surrogate a host sent as ``_xD800_``) is written with U+FFFD in its place,
    never raised; host.json's ``replaced_characters`` says how many per file.

    Returns the bundle as ``read_bundle(path)`` would read it back now, without reading it (the
    fleet runner analyses thousands of bundles just written: a read-back was 8 more file opens per host).

    Never half-written: a new folder is filled under a hidden staging name (``.NAME.part``, which
    ``find_bundles`` skips) and renamed into place at the end, one rename for the whole bundle; an
    existing folder (a resumed or repeated scan) gets each file written aside and renamed over the old."""
    path = Path(path)
    if not os.path.isdir(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return _write_files(path, path, bundle, _atomic_write)
    stage = path.with_name(f".{path.name}.part")
    if stage.exists():  # left by a crash: never complete
        shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    written = _write_files(stage, path, bundle, _plain_write, made=True)
    try:
        os.rename(stage, path)
    except OSError:  # the folder appeared meanwhile: write over it file by file, as above
        shutil.rmtree(stage, ignore_errors=True)
        return _write_files(path, path, bundle, _atomic_write)
    return written


def _is_staging(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".part")


def _write_files(folder: Path, path: Path, bundle: Bundle, write: Callable[[str, bytes], None],
                 made: bool = False) -> Bundle:
    """Write ``bundle`` into ``folder`` (``made``: just created) with ``write``; the Bundle as it will read
    back from ``path``."""
    if not made:
        folder.mkdir(parents=True, exist_ok=True)
    base = os.fspath(folder)
    replaced: dict[str, int] = {}
    texts: dict[str, Optional[str]] = dict.fromkeys(FILES)
    problems: list[str] = []
    for kind, text in bundle.texts.items():
        if text is None:
            continue
        text, n = valid_unicode(text)
        name = FILES[kind]
        if n:
            replaced[name] = n
        data = text.encode("utf-8")
        write(os.path.join(base, name), data)
        if len(data) > MAX_FILE_BYTES:
            problems.append(f"{path / name}: {len(data)} bytes, over the {MAX_FILE_BYTES} byte limit; not read")
        else:
            texts[kind] = _as_read_back(text, data)
    meta_text = _meta_text(bundle.meta, replaced)
    write(os.path.join(base, HOST_FILE), meta_text.encode("utf-8"))
    meta = json.loads(meta_text)
    host = str(meta.get("host") or meta.get("hostname") or path.name)
    return Bundle(host=host, texts=texts, meta=meta, path=path, problems=problems)


def _meta_text(meta: dict[str, Any], replaced: dict[str, int]) -> str:
    """host.json's text: ``meta`` with lone surrogates replaced (counted in ``replaced_characters``, with
    the files' counts in ``replaced``)."""
    if not replaced:
        text = dumps_indented(meta) + "\n"  # json.dumps(meta, indent=2, ensure_ascii=False)
        if text.isascii() or _encodes(text):  # no surrogate anywhere: valid_unicode_value would change nothing
            return text
    meta, n = valid_unicode_value(meta)
    if n:
        replaced[HOST_FILE] = n
    if replaced:
        meta = {**meta, "replaced_characters": replaced}
    return dumps_indented(meta) + "\n"


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _as_read_back(text: str, data: bytes) -> str:
    """``decode_text(data)`` for ``data = text.encode("utf-8")`` of a valid ``text``, without decoding
    it again when that is certain to give ``text``: no BOM to strip (U+FEFF first) and no NUL near the
    start (which decode_text takes for UTF-16). UTF-8 never holds the bytes FF or FE of the UTF-16 BOMs."""
    if text.startswith("\ufeff") or "\x00" in text[:200]:
        return decode_text(data)
    return text


def _plain_write(target: str, data: bytes) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _atomic_write(target: str, data: bytes) -> None:
    tmp = target + ".part"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, target)
