"""Publishing checkpoint folders to the Hugging Face Hub (one commit per push)."""

from __future__ import annotations

import os
from pathlib import Path

from .checkpoint import CARD, CONFIG, WEIGHTS, CheckpointError, read_config


class HubError(RuntimeError):
    """Publishing to the Hub failed; the local checkpoint is untouched."""


def files_to_push(folder: str | os.PathLike) -> list[Path]:
    """The files a push uploads: exactly the checkpoint's weights, config and card."""
    folder = Path(folder)
    read_config(folder)  # validates the folder before anything is sent
    files = [folder / f for f in (WEIGHTS, CONFIG, CARD)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise CheckpointError(f"cannot push {folder}: missing {missing}")
    return files


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload ratzoo checkpoint",
) -> str:
    """Publish a checkpoint folder to ``repo_id`` in one commit; returns the commit URL.

    The repo is created if needed (``create_repo(exist_ok=True)``) and the folder's
    ``model.safetensors``, ``config.json`` and ``README.md`` are uploaded with one
    ``upload_folder`` call. The token comes from ``token``, ``$HF_TOKEN`` or the
    cached login. Nothing local is modified, whatever happens.

    Raises:
        HubError: missing token, unreachable endpoint, or a rejected upload.
    """
    from huggingface_hub import create_repo, upload_folder

    if "/" not in repo_id or repo_id.count("/") != 1:
        raise HubError(f"repo id must look like OWNER/NAME, got {repo_id!r}")
    files_to_push(folder)
    try:
        create_repo(repo_id, token=token, private=private, exist_ok=True)
        info = upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            token=token,
            commit_message=commit_message,
            allow_patterns=[WEIGHTS, CONFIG, CARD],
        )
    except Exception as e:
        hint = "log in with `hf auth login` or set HF_TOKEN" if "401" in str(e) or "token" in str(e).lower() else "check your connection and HF_ENDPOINT"
        raise HubError(f"could not push {folder} to {repo_id}: {type(e).__name__}: {e} ({hint}); the local checkpoint is intact") from e
    return str(getattr(info, "commit_url", info))
