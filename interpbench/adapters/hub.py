"""Where checkpoint files come from: a local path or the Hugging Face hub.

Location grammar (a *location* names a file or a folder):

    PATH                                  a local file or folder (tried first when it exists)
    hf://OWNER/REPO[@REVISION][/PATH]     a file or folder in a hub model repo (same form as
                                          huggingface_hub's own `hf://` URIs, models only)
    OWNER/REPO[@REVISION]:PATH            short form of the same; `OWNER/REPO:` is the repo root

Inside model specs (`sae:FORMAT:LOCATION@BASE`) the `@` separates the base model, so use
the default revision there. Hub files go through `huggingface_hub.hf_hub_download`, i.e.
its normal cache (HF_HOME / HF_HUB_CACHE, read at call time). Offline (the `offline`
argument or HF_HUB_OFFLINE=1) only the cache is used, and a missing file is an
`OfflineError` that says how to fetch it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import OfflineModeIsEnabled
from huggingface_hub.utils import (
    EntryNotFoundError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from interpbench.errors import BadSpecError, MissingFileError, OfflineError

_PART = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_SHORT = re.compile(rf"^(?P<repo>{_PART}/{_PART})(?:@(?P<rev>[^:@\s]+))?:(?P<path>.*)$")
_TRUE = ("1", "on", "yes", "true")


@dataclass(frozen=True)
class HubRef:
    repo_id: str
    path: str = ""  # inside the repo; "" is the root
    revision: str | None = None

    def join(self, name: str | None) -> str:
        return "/".join(p.strip("/") for p in (self.path, name or "") if p and p.strip("/"))

    def uri(self, name: str | None = None) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        inner = self.join(name)
        return f"hf://{self.repo_id}{rev}" + (f"/{inner}" if inner else "")


def env_offline() -> bool:
    return any((os.environ.get(v) or "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def is_offline(offline: bool = False) -> bool:
    """The caller's flag or the environment's HF_HUB_OFFLINE, whichever says offline."""
    return bool(offline) or env_offline()


def cache_dir() -> Path:
    """The hub cache huggingface_hub would use, computed now (its constants are frozen at import)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.path.expandvars(os.path.expanduser(os.environ[var])))
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return Path(os.path.expandvars(os.path.expanduser(home))) / "hub"


def parse_hub(location: str) -> HubRef | None:
    """HubRef for a hub location, None for a local path (see the module docstring)."""
    if location.startswith("hf://"):
        return _parse_uri(location)
    m = _SHORT.match(location)
    if m and not Path(location).exists():
        return HubRef(m["repo"], m["path"].strip("/"), m["rev"])
    return None


def _parse_uri(location: str) -> HubRef:
    body = location[len("hf://"):].strip("/")
    if body.startswith(("datasets/", "spaces/", "buckets/", "kernels/")):
        raise BadSpecError(f"{location!r}: only model repositories hold checkpoints here; "
                           "write hf://OWNER/REPO/PATH")
    parts = body.split("/")
    if len(parts) < 2 or not all(re.fullmatch(_PART, p) for p in (parts[0], parts[1].split("@")[0])):
        raise BadSpecError(f"{location!r}: expected hf://OWNER/REPO[@REVISION][/PATH/IN/REPO]")
    name, _, rev = parts[1].partition("@")
    return HubRef(f"{parts[0]}/{name}", "/".join(parts[2:]), rev or None)


def is_hub(location: str) -> bool:
    return parse_hub(str(location)) is not None


def resolve(location: str, filename: str | None = None, *, offline: bool = False) -> Path:
    """Local path of `location` (or of `filename` inside the folder `location`), downloading
    hub files into the cache when online. Raises MissingFileError / OfflineError."""
    location = str(location)
    ref = parse_hub(location)
    if ref is None:
        path = Path(location).expanduser()
        path = path / filename if filename else path
        if not path.exists():
            raise MissingFileError(path, f"{'a file' if filename else 'a checkpoint file or folder'}",
                                   "check the path; hub checkpoints are written hf://OWNER/REPO/PATH "
                                   "or OWNER/REPO:PATH")
        return path
    inner = ref.join(filename)
    if not inner:
        raise BadSpecError(f"{location!r} names a whole repository; add the file, e.g. {ref.uri('FILE')}")
    return _download(ref, inner, is_offline(offline))


def _download(ref: HubRef, inner: str, offline: bool) -> Path:
    where = HubRef(ref.repo_id, inner, ref.revision).uri()
    try:
        return Path(hf_hub_download(repo_id=ref.repo_id, filename=inner, revision=ref.revision,
                                    cache_dir=str(cache_dir()), local_files_only=offline))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise _offline_error(ref, inner, offline) from exc
    except RepositoryNotFoundError as exc:  # also GatedRepoError
        raise MissingFileError(where, f"a Hugging Face model repository {ref.repo_id!r}",
                               "check the owner/name spelling; private or gated repos need "
                               "`hf auth login` and accepted terms") from exc
    except RevisionNotFoundError as exc:
        raise MissingFileError(where, f"revision {ref.revision!r} of {ref.repo_id}",
                               "check the branch, tag or commit") from exc
    except EntryNotFoundError as exc:
        raise MissingFileError(where, f"a file {inner!r} in {ref.repo_id}",
                               f"check the file name (see https://huggingface.co/{ref.repo_id}/tree/main)") from exc


def _offline_error(ref: HubRef, inner: str, offline: bool) -> OfflineError:
    why = ("offline mode is on (--offline or HF_HUB_OFFLINE=1)" if offline
           else "the Hugging Face hub could not be reached")
    rev = f" --revision {ref.revision}" if ref.revision else ""
    return OfflineError(
        f"{ref.uri(None)}: file {inner!r} of repo {ref.repo_id!r} is not in the local cache ({cache_dir()}) "
        f"and {why}. Fix: run once online without --offline to cache it, or fetch it with "
        f"`hf download {ref.repo_id} {inner}{rev}`, or download it yourself and pass the local path.")


def join(location: str, name: str) -> str:
    """Location of `name` inside the folder `location` (local or hub)."""
    ref = parse_hub(str(location))
    if ref is None:
        return str(Path(location) / name)
    return ref.uri(name)


def sibling(location: str, name: str) -> str:
    """Location of `name` next to the file `location` (same folder, same repo)."""
    ref = parse_hub(str(location))
    if ref is None:
        return str(Path(location).parent / name)
    parent = ref.path.rsplit("/", 1)[0] if "/" in ref.path else ""
    return HubRef(ref.repo_id, parent, ref.revision).uri(name)


def basename(location: str) -> str:
    ref = parse_hub(str(location))
    return Path(location).name if ref is None else ref.path.rsplit("/", 1)[-1]


def is_dir(location: str, *, offline: bool = False) -> bool:
    """Whether `location` names a folder. On the hub: no file extension and files below it."""
    ref = parse_hub(str(location))
    if ref is None:
        return Path(location).expanduser().is_dir()
    if not ref.path:
        return True
    if "." in ref.path.rsplit("/", 1)[-1]:
        return False
    return bool(list_files(location, offline=offline))


def list_files(location: str, *, offline: bool = False) -> list[str]:
    """Files (relative paths, sorted) inside the folder `location`. Offline, for the hub, only
    the files already in the cache are known."""
    ref = parse_hub(str(location))
    if ref is None:
        root = Path(location).expanduser()
        if not root.is_dir():
            raise MissingFileError(root, "a checkpoint folder", "check the path")
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    prefix = ref.path.strip("/") + "/" if ref.path.strip("/") else ""
    names = None
    if not is_offline(offline):
        try:
            names = HfApi().list_repo_files(ref.repo_id, revision=ref.revision)
        except RepositoryNotFoundError as exc:
            raise MissingFileError(ref.uri(), f"a Hugging Face model repository {ref.repo_id!r}",
                                   "check the owner/name spelling") from exc
        except Exception:  # any transport failure (requests/httpx): fall back on the cache
            names = None
    if names is None:
        names = _cached_files(ref)
        if not names:
            state = "offline mode is on" if is_offline(offline) else "the hub could not be reached"
            raise OfflineError(f"{ref.uri()}: cannot list the files of {ref.repo_id!r}: none are in the local "
                               f"cache ({cache_dir()}) and {state}. Fix: run once online, or "
                               f"`hf download {ref.repo_id}`, or name the file explicitly.")
    return sorted(n[len(prefix):] for n in names if n.startswith(prefix))


def _cached_files(ref: HubRef) -> list[str]:
    repo_dir = cache_dir() / f"models--{ref.repo_id.replace('/', '--')}"
    rev = ref.revision or "main"
    ref_file = repo_dir / "refs" / rev
    commit = ref_file.read_text().strip() if ref_file.is_file() else rev
    snap = repo_dir / "snapshots" / commit
    if not snap.is_dir():
        return []
    return [str(p.relative_to(snap)) for p in snap.rglob("*") if p.is_file()]


def file_fingerprint(path: Path) -> str:
    """A content id for a resolved file: the hub blob name (its sha256 for LFS files) when the
    file sits in the hub cache, else the sha256 of its bytes."""
    from interpbench.ioutils import sha256_file

    real = Path(path).resolve()
    if real.parent.name == "blobs" and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", real.name):
        return real.name
    return sha256_file(real)
