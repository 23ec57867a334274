"""Data files on disk: reading IDX files, finding Fashion-MNIST, verifying and fetching it.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017) is four IDX files, ``FASHION_MNIST_FILES``,
each stored gzip-compressed (``name.gz``) or raw (``name``). ``find_fashion_mnist`` looks
for them in this order:

1. an explicit ``root`` folder, which is then used alone (missing files are an error);
2. the folder named by the ``BOOK_DATA_DIR`` environment variable;
3. ``DEBIAN_DIR``, where Debian's and Ubuntu's package ``dataset-fashion-mnist`` puts them;
4. the per-user cache, ``cache_dir()`` (``$XDG_CACHE_HOME/cnn-book/fashion-mnist``);
5. with ``download=True``, the dataset's published location, saved into the cache.

Every file is checked against the SHA-256 of its *decompressed* bytes (the Debian package
recompressed the ``.gz`` files, so the published MD5s of the archives do not match its
copies; the bytes inside are the originals). A file that was verified once is remembered
in ``cache_dir() / "verified.json"``, keyed on its path, size and modification time, so a
chapter does not hash 50 MB on every load. Nothing here deletes or overwrites a file that
is already there.

Run ``python -m helpers.data_files`` (what ``make data`` does without apt) to make sure the
files are present, downloading them into the cache if no place has them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_PACKAGE = "dataset-fashion-mnist"

# SHA-256 of the decompressed bytes of each file.
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
# MD5 of the published .gz archives, checked while downloading.
FASHION_MNIST_GZ_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

HOW_TO_GET = (
    f"get the files with `make data`, or `apt-get install {DEBIAN_PACKAGE}` (Debian, Ubuntu), "
    "or load with download=True, or set BOOK_DATA_DIR to a folder that holds them"
)

# IDX type codes (third byte of the magic number) and the big-endian dtypes they stand for.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def fresh_copy_hint(path: Path) -> str:
    return (
        f"delete {path.name} and load again with download=True, "
        "or replace it with a fresh copy of the original file"
    )


def read_idx_bytes(path) -> bytes:
    """The bytes of an IDX file, decompressed if it is gzip-compressed.

    A file that is not readable gzip (when it starts with the gzip magic) raises ValueError.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":  # gzip magic
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(
            f"read_idx: {path} is not a readable gzip file ({err}); {fresh_copy_hint(path)}"
        ) from err
    return raw


def parse_idx(raw: bytes, path="<bytes>") -> np.ndarray:
    """Decode IDX bytes: magic 0x0000TTDD (TT the type code, 0x08 for uint8; DD the number
    of dimensions), then DD big-endian uint32 sizes, then the data. Returns an array of
    those sizes in native byte order; uint8 (N,) labels or (N, 28, 28) images for the
    published files. Inconsistent bytes raise ValueError naming ``path``."""
    path = Path(path)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise ValueError(
            f"read_idx: {path} does not start with an IDX magic number: expected 0x0000TTDD "
            f"with TT in {sorted(_IDX_DTYPES)} (0x08 = uint8) and DD >= 1, found "
            f"0x{raw[:4].hex() or '(empty)'}; {fresh_copy_hint(path)}"
        )
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"read_idx: {path} is truncated: expected a {header}-byte header for {ndim} "
            f"dimensions, found {len(raw)} bytes; {fresh_copy_hint(path)}"
        )
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"read_idx: {path} has a header for shape {shape} ({expected} bytes of data) "
            f"but {len(raw) - header} bytes of data follow; {fresh_copy_hint(path)}"
        )
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw), the format of MNIST and Fashion-MNIST.

    Returns the array it holds (see ``parse_idx``). A truncated, corrupt or inconsistent file
    raises ValueError naming the file.
    """
    return parse_idx(read_idx_bytes(path), path)


# ---------------------------------------------------------------- where the files are


def cache_dir() -> Path:
    """The per-user cache folder for Fashion-MNIST: $XDG_CACHE_HOME (default ~/.cache)
    / cnn-book / fashion-mnist. Not created here."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnn-book" / "fashion-mnist"


def _files_in(folder: Path) -> dict[str, Path] | None:
    """{name: path} for the four files in ``folder`` (the .gz or the raw copy), or None
    when any is missing."""
    found = {}
    for name in FASHION_MNIST_FILES:
        paths = [folder / f"{name}.gz", folder / name]
        present = [p for p in paths if p.is_file()]
        if not present:
            return None
        found[name] = present[0]
    return found


def _missing_in(folder: Path) -> list[str]:
    return [n for n in FASHION_MNIST_FILES if _files_in_one(folder, n) is None]


def _files_in_one(folder: Path, name: str) -> Path | None:
    for p in (folder / f"{name}.gz", folder / name):
        if p.is_file():
            return p
    return None


def search_places() -> list[tuple[str, Path]]:
    """The places searched when no ``root`` is given, in order, as (label, folder)."""
    places = []
    if os.environ.get("BOOK_DATA_DIR"):
        places.append(("BOOK_DATA_DIR", Path(os.environ["BOOK_DATA_DIR"]).expanduser()))
    places.append((f"the {DEBIAN_PACKAGE} package", DEBIAN_DIR))
    places.append(("the user cache", cache_dir()))
    return places


def find_fashion_mnist(root=None, download: bool = False) -> dict[str, Path]:
    """Locate the four Fashion-MNIST files; returns {name: path} (name without ``.gz``).

    With ``root``, only that folder is used. Otherwise the places of ``search_places()``
    are tried in order; the first that holds all four files wins. With ``download=True``
    and no place holding them, the files missing from the cache are downloaded into it.
    Raises FileNotFoundError saying where it looked and how to get the files.
    """
    if root is not None:
        folder = Path(root).expanduser()
        found = _files_in(folder)
        if found is None:
            missing = ", ".join(f"{n}(.gz)" for n in _missing_in(folder))
            raise FileNotFoundError(
                f"load_fashion_mnist: root={str(folder)!r} lacks {missing}; an explicit root "
                f"is used alone. Put the four files there, or pass root=None to search "
                f"BOOK_DATA_DIR, {DEBIAN_DIR} and {cache_dir()}; {HOW_TO_GET}"
            )
        return found
    places = search_places()
    for _, folder in places:
        found = _files_in(folder)
        if found is not None:
            return found
    if download:
        return download_fashion_mnist(cache_dir())
    looked = "; ".join(f"{label}: {folder}" for label, folder in places)
    raise FileNotFoundError(
        f"load_fashion_mnist: the Fashion-MNIST files ({', '.join(FASHION_MNIST_FILES)}, "
        f"each .gz or raw) are in none of the places searched ({looked}); {HOW_TO_GET}"
    )


def retrieve(url: str, **kwargs) -> str:
    """``pooch.retrieve``, imported only when a download is asked for: pooch imports
    ``tqdm.auto``, which prints a warning into notebooks that lack ipywidgets."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import pooch

    return pooch.retrieve(url, **kwargs)


def download_fashion_mnist(folder) -> dict[str, Path]:
    """Download the files missing from ``folder`` (checked against the published MD5s of
    the archives, then by ``verify``); files already there are kept as they are."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in FASHION_MNIST_FILES:
        if _files_in_one(folder, name) is None:
            gz = f"{name}.gz"
            retrieve(
                FASHION_MNIST_URL + gz, known_hash=f"md5:{FASHION_MNIST_GZ_MD5[gz]}",
                fname=gz, path=folder, progressbar=False,
            )  # fmt: skip
    found = _files_in(folder)
    if found is None:
        raise FileNotFoundError(f"download_fashion_mnist: {folder} still lacks some files")
    for path in found.values():
        verify(path)
    return found


# ---------------------------------------------------------------- integrity


def _stamp_file() -> Path:
    return cache_dir() / "verified.json"


def _stamp_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _read_stamps() -> dict:
    try:
        return json.loads(_stamp_file().read_text())
    except (OSError, ValueError):
        return {}


def _remember(path: Path, digest: str) -> None:
    """Record that ``path`` (as it is now) was verified; silently skipped when the cache
    cannot be written (a read-only home, say)."""
    stamps = _read_stamps()
    stamps[_stamp_key(path)] = digest
    target = _stamp_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        tmp.write_text(json.dumps(stamps, indent=0, sort_keys=True))
        tmp.replace(target)
    except OSError:
        pass


def _name_of(path: Path) -> str:
    name = path.name.removesuffix(".gz")
    if name not in FASHION_MNIST_FILES:
        raise ValueError(
            f"verify: expected one of the files {', '.join(FASHION_MNIST_FILES)} "
            f"(.gz or raw), got {path.name!r}"
        )
    return name


def verify(path, raw: bytes | None = None) -> bytes | None:
    """Check a Fashion-MNIST file against the SHA-256 of its decompressed bytes.

    ``raw``: the decompressed bytes when the caller has read them already. Returns the
    decompressed bytes it read (or ``raw``), or None when the file's stamp shows it was
    verified before and nothing was read. A mismatch raises ValueError naming the file, the
    digest expected and the one found, and how to get a fresh copy; the file is left alone.
    """
    path = Path(path)
    name = _name_of(path)
    expected = FASHION_MNIST_FILES[name]
    if raw is None and _read_stamps().get(_stamp_key(path)) == expected:
        return None
    if raw is None:
        raw = read_idx_bytes(path)
    found = hashlib.sha256(raw).hexdigest()
    if found != expected:
        raise ValueError(
            f"load_fashion_mnist: {path} is not the published {name}: expected SHA-256 "
            f"{expected} of its decompressed bytes, found {found} ({len(raw):,} bytes; it may "
            f"be truncated or altered). The file was left as it is: move it aside and {HOW_TO_GET}"
        )
    _remember(path, expected)
    return raw


def read_fashion_mnist(root=None, download: bool = False) -> dict[str, np.ndarray]:
    """The four Fashion-MNIST arrays, verified: {"train-images-idx3-ubyte": (60000, 28, 28)
    uint8, "train-labels-idx1-ubyte": (60000,) uint8, "t10k-images-idx3-ubyte": (10000,
    28, 28) uint8, "t10k-labels-idx1-ubyte": (10000,) uint8} (for the published files)."""
    paths = find_fashion_mnist(root, download)
    arrays = {}
    for name, path in paths.items():
        raw = verify(path)
        if raw is None:  # verified before: read without hashing
            raw = read_idx_bytes(path)
        arrays[name] = parse_idx(raw, path)
    return arrays


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.data_files``: find (or download) and verify the files."""
    argv = sys.argv[1:] if argv is None else argv
    download = "--no-download" not in argv
    try:
        paths = find_fashion_mnist(None, download=download)
        for path in paths.values():
            verify(path)
    except (FileNotFoundError, ValueError) as err:
        print(err, file=sys.stderr)
        return 1
    print(f"Fashion-MNIST: verified in {paths['train-images-idx3-ubyte'].parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
