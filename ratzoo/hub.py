"""The Hugging Face Hub: ``hf-hub:`` names, the one download path, and publishing.

Saving, pushing and loading are huggingface_hub's own :class:`~huggingface_hub.PyTorchModelHubMixin`
on :class:`ratzoo.models.RandomizedClassifier`. What is ratzoo's here, and why:

- :func:`load_from_hub` is the one way a Hub checkpoint is loaded, by ``ratzoo.load("hf-hub:...")``
  and by ``RandomizedClassifier.from_pretrained("OWNER/NAME")`` alike: one :func:`download`, the
  strict :func:`~ratzoo.checkpoint.load_checkpoint` with its sha256 pins, the same errors.
- :func:`download` wraps ``snapshot_download`` (one call, huggingface_hub's cache, ``HF_HUB_OFFLINE``
  honoured) only to turn its exceptions into errors that name the repo and say what to do.
- :func:`push_to_hub` publishes an existing checkpoint *folder* through the mixin's
  ``push_to_hub`` (``create_repo(exist_ok=True)`` + one ``upload_folder`` commit), after checking
  that what the mixin will write is byte-identical to the folder's weights, and turns failures
  into a :class:`HubError` that says how to fix them and that nothing local changed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError, load_checkpoint, read_config
from .fileformat import CONFIG, FILES, WEIGHTS, canonical_header, weights_bytes
from .models import RandomizedClassifier
from .registry import hub_entry

HUB_PREFIX = "hf-hub:"  # timm's convention: "hf-hub:OWNER/NAME[@REVISION]"
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*")


class HubError(RuntimeError):
    """Publishing to the Hub failed; the local checkpoint is untouched."""


def _check_repo_id(repo_id: str) -> None:
    if not isinstance(repo_id, str) or not _REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise HubError(f"repo id must look like OWNER/NAME, got {repo_id!r}")


def parse_hub_name(name: str) -> tuple[str, str | None]:
    """``"hf-hub:OWNER/NAME@REVISION"`` -> ``("OWNER/NAME", "REVISION")`` (revision None if absent).

    Raises:
        KeyError: not of that form (the message shows the form).
    """
    rest = name[len(HUB_PREFIX):] if name.startswith(HUB_PREFIX) else name
    repo_id, _, revision = rest.partition("@")
    if not _REPO_ID.fullmatch(repo_id) or ".." in repo_id or (name.count("@") and not revision):
        raise KeyError(f"{name!r} is not a Hub model name: write {HUB_PREFIX}OWNER/NAME or "
                       f"{HUB_PREFIX}OWNER/NAME@REVISION (a branch, tag or commit)")
    return repo_id, revision or None


def _hub_name(repo_id: str, revision: str | None) -> str:
    return f"{HUB_PREFIX}{repo_id}" + (f"@{revision}" if revision else "")


def _registry_pin(repo_id: str, revision: str | None) -> tuple[str | None, str | None]:
    """(the revision to fetch, the registry's sha256 or None): a zoo registry entry that names
    the repo gives its revision, when none is asked for, and its sha256."""
    entry = hub_entry(repo_id, revision)
    return (revision, None) if entry is None else (revision or entry.hub_revision, entry.sha256)


def download(
    repo_id: str,
    revision: str | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> Path:
    """The checkpoint folder of ``repo_id`` at ``revision`` (None: the zoo registry's revision
    for a repo it names, else ``main``) in huggingface_hub's cache, fetched with one
    ``snapshot_download`` (no network call when ``HF_HUB_OFFLINE=1``). The keyword arguments
    are ``snapshot_download``'s.

    Raises:
        CheckpointError: the repo, the revision or a file is missing, the Hub cannot be reached
            and nothing is cached, or offline mode is on and nothing is cached.
    """
    from huggingface_hub import constants, snapshot_download, try_to_load_from_cache
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from . import __version__

    revision, _ = _registry_pin(repo_id, revision)
    where = _hub_name(repo_id, revision)
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, force_download=force_download,
                                        local_files_only=local_files_only, token=token, allow_patterns=FILES,
                                        library_name="ratzoo", library_version=__version__))
    except RevisionNotFoundError as e:
        raise CheckpointError(f"{where}: the repo has no revision {revision!r} on {constants.ENDPOINT}; "
                              "give an existing branch, tag or commit (or none, for main)") from e
    except RepositoryNotFoundError as e:
        raise CheckpointError(f"{where}: no such model repo on {constants.ENDPOINT}; check the name, or "
                              "log in (`hf auth login` or HF_TOKEN) if it is private") from e
    except LocalEntryNotFoundError as e:
        offline, online = (("HF_HUB_OFFLINE=1 is set", "unset HF_HUB_OFFLINE") if constants.HF_HUB_OFFLINE else
                           ("local_files_only=True", "local_files_only=False") if local_files_only else (None, None))
        cached = isinstance(try_to_load_from_cache(repo_id, CONFIG, cache_dir=cache_dir), str)
        if offline and revision and cached:
            raise CheckpointError(
                f"{where}: {offline} and revision {revision!r} is not in huggingface_hub's cache, "
                f"though the repo is ({_hub_name(repo_id, None)} loads offline); load that revision once with the "
                f"network on ({online})") from e
        if offline:
            raise CheckpointError(
                f"{where}: {offline} and this repo is not in huggingface_hub's cache "
                f"({cache_dir or constants.HF_HUB_CACHE}); load it once with the network on ({online}), "
                "after which offline loads are served from the cache") from e
        raise CheckpointError(
            f"{where}: could not reach {constants.ENDPOINT} and no complete copy is cached "
            f"({type(e).__name__}: {e}); check your connection and HF_ENDPOINT, then load again") from e
    except HfHubHTTPError as e:
        raise CheckpointError(f"{where}: the Hub at {constants.ENDPOINT} refused the download ({e}); "
                              "check HF_ENDPOINT and your token (`hf auth login`), then load again") from e
    missing = [f for f in (CONFIG, WEIGHTS) if not (folder / f).is_file()]
    if missing:
        raise CheckpointError(
            f"{where}: the repo has no {' or '.join(missing)} (at commit {folder.name}), so it is not a ratzoo "
            "checkpoint; publish one with `ratzoo.push_to_hub(folder, repo_id)` or `python -m train --push-to-hub`")
    return folder


def load_from_hub(
    repo_id: str,
    revision: str | None = None,
    *,
    device: str | torch.device = "cpu",
    expected_sha256: str | None = None,
    **download_kwargs: Any,
) -> RandomizedClassifier:
    """Load the checkpoint of a Hub repo: :func:`download`, then :func:`load_checkpoint`.

    A repo that a zoo registry entry names gets that entry's revision (when ``revision`` is
    None) and its sha256 pin (unless ``expected_sha256`` is given); the sha256 recorded in
    ``config.json`` is always checked. ``download_kwargs`` go to :func:`download`
    (``cache_dir``, ``force_download``, ``local_files_only``, ``token``).

    Raises:
        CheckpointError: as :func:`download`; or the downloaded files cannot be used (the
            message names the repo and says how to download them again).
    """
    revision, pin = _registry_pin(repo_id, revision)
    expected_sha256 = expected_sha256 or pin
    folder = download(repo_id, revision, **download_kwargs)
    try:
        return load_checkpoint(folder, device=device, expected_sha256=expected_sha256)
    except CheckpointError as e:
        again = f"hf download {repo_id}{f' --revision {revision}' if revision else ''} --force-download"
        raise CheckpointError(
            f"{_hub_name(repo_id, revision)}: the downloaded checkpoint cannot be used: {e}. Nothing was loaded. "
            f"Download it again (`{again}`, or delete {folder}) and, if the error stays, "
            "the repo itself holds a broken file: ask its owner to push the checkpoint again"
        ) from e


def load_pretrained(
    model_id: str,
    *,
    device: str | torch.device = "cpu",
    expected_sha256: str | None = None,
    **hub_kwargs: Any,
) -> RandomizedClassifier:
    """What ``RandomizedClassifier.from_pretrained(model_id)`` loads: a folder as
    ``ratzoo.load(path)`` does, anything else as a Hub repo id through :func:`load_from_hub`
    (``hub_kwargs``: ``revision`` and :func:`download`'s keyword arguments)."""
    if os.path.isdir(model_id):
        return load_checkpoint(model_id, device=device, expected_sha256=expected_sha256)
    return load_from_hub(model_id, device=device, expected_sha256=expected_sha256, **hub_kwargs)


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload ratzoo checkpoint",
) -> str:
    """Publish a checkpoint folder to ``repo_id`` in one commit; returns the commit URL.

    The folder is loaded strictly (sha256 included), then published with the model's
    ``push_to_hub`` from :class:`~huggingface_hub.PyTorchModelHubMixin`: the repo is created if
    needed and ``model.safetensors`` (byte-identical to the folder's, checked before sending),
    ``config.json`` and the model card go up in one commit. The token comes from ``token``,
    ``$HF_TOKEN`` or the cached login. Nothing local is modified, whatever happens.

    Raises:
        CheckpointError: the folder is not a valid checkpoint (nothing is sent).
        HubError: bad repo id, missing token, unreachable endpoint, or a rejected upload.

    >>> ratzoo.push_to_hub("checkpoints/rat", "you/ratzoo-rat")
    """
    import warnings

    _check_repo_id(repo_id)
    folder = Path(folder)
    config = read_config(folder)
    model = load_checkpoint(folder)  # validates everything before anything is sent
    dtype = getattr(torch, str(config.get("storage_dtype", "float32")))
    model = model.to(dtype)  # the storage dtype: the mixin saves the tensors as they are
    local, pushed = (folder / WEIGHTS).read_bytes(), weights_bytes(model)
    if canonical_header(local) != pushed:
        raise CheckpointError(f"{folder / WEIGHTS}: not in ratzoo's storage layout, so the pushed copy would differ "
                              f"from it; re-save the folder with ratzoo.save_checkpoint, then push")
    if local != pushed:  # same tensors and metadata; only the header's key order differs
        warnings.warn(f"{folder / WEIGHTS} was written with its header metadata in another order: the pushed "
                      "copy holds the same tensors but has another sha256 (pin that one)", stacklevel=2)
    try:
        info = model.push_to_hub(repo_id, config=config, token=token, private=private,
                                 commit_message=commit_message,
                                 model_card_kwargs={"checkpoint": config, "repo_id": repo_id})
    except Exception as e:
        hint = ("log in with `hf auth login` or set HF_TOKEN" if "401" in str(e) or "token" in str(e).lower()
                else "check your connection and HF_ENDPOINT")
        raise HubError(f"could not push {folder} to {repo_id}: {type(e).__name__}: {e} ({hint}); "
                       "the local checkpoint is intact") from e
    return str(getattr(info, "commit_url", info))
