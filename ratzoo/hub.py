"""The Hugging Face Hub: ``hf-hub:`` names, one ``snapshot_download`` per load, and publishing.

Saving, pushing and loading are huggingface_hub's own :class:`~huggingface_hub.PyTorchModelHubMixin`
on :class:`ratzoo.models.RandomizedClassifier`. What is ratzoo's here, and why:

- :func:`download` wraps ``snapshot_download`` (one call, huggingface_hub's cache, ``HF_HUB_OFFLINE``
  honoured) only to turn its exceptions into errors that name the repo and say what to do; the
  mixin's ``from_pretrained`` logs and swallows a failed ``config.json`` download, then fails later
  on the weights with the library's generic message.
- :func:`push_to_hub` publishes an existing checkpoint *folder* through the mixin's
  ``push_to_hub`` (``create_repo(exist_ok=True)`` + one ``upload_folder`` commit), after checking
  that what the mixin will write is byte-identical to the folder's weights, and turns failures
  into a :class:`HubError` that says how to fix them and that nothing local changed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .checkpoint import CheckpointError
from .fileformat import CONFIG, FILES, WEIGHTS, canonical_header, weights_bytes

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


def download(repo_id: str, revision: str | None = None) -> Path:
    """The checkpoint folder of ``repo_id`` at ``revision`` in huggingface_hub's cache, fetched
    with one ``snapshot_download`` (no network call when ``HF_HUB_OFFLINE=1``).

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

    where = f"{HUB_PREFIX}{repo_id}" + (f"@{revision}" if revision else "")
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=FILES,
                                        library_name="ratzoo", library_version=__version__))
    except RevisionNotFoundError as e:
        raise CheckpointError(f"{where}: the repo has no revision {revision!r} on {constants.ENDPOINT}; "
                              "give an existing branch, tag or commit (or none, for main)") from e
    except RepositoryNotFoundError as e:
        raise CheckpointError(f"{where}: no such model repo on {constants.ENDPOINT}; check the name, or "
                              "log in (`hf auth login` or HF_TOKEN) if it is private") from e
    except LocalEntryNotFoundError as e:
        if constants.HF_HUB_OFFLINE and revision and isinstance(try_to_load_from_cache(repo_id, CONFIG), str):
            raise CheckpointError(
                f"{where}: HF_HUB_OFFLINE=1 is set and revision {revision!r} is not in huggingface_hub's cache, "
                f"though the repo is ({HUB_PREFIX}{repo_id} loads offline); load that revision once with the "
                "network on (unset HF_HUB_OFFLINE)") from e
        if constants.HF_HUB_OFFLINE:
            raise CheckpointError(
                f"{where}: HF_HUB_OFFLINE=1 is set and this repo is not in huggingface_hub's cache "
                f"({constants.HF_HUB_CACHE}); load it once with the network on (unset HF_HUB_OFFLINE), "
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

    import torch

    from .checkpoint import load_checkpoint, read_config

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
