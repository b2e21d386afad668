"""Dataset archives on the Hugging Face Hub: ``hf://datasets/<owner>/<repo>[@revision]/<path>.tar.gz``.

The archive is downloaded once into the Hugging Face cache (``HF_HUB_CACHE``); archives.py then extracts it
safely next to the cached file, once, and what it lists must stay inside it.
"""

from __future__ import annotations

from pathlib import Path

from vidcls.data.archives import ARCHIVE_SUFFIXES
from vidcls.errors import DatasetError, MissingDependency

HF_DATASETS = "hf://datasets/"
_EXAMPLE = "hf://datasets/sayakpaul/ucf101-subset/UCF101_subset.tar.gz"


def parse_hub_url(url: str) -> tuple[str, str | None, str]:
    """``hf://datasets/owner/repo@rev/dir/file.tar.gz`` -> ("owner/repo", "rev", "dir/file.tar.gz")."""
    parts = url.removeprefix(HF_DATASETS).split("/", 2) if url.startswith(HF_DATASETS) else []
    if len(parts) != 3 or not all(parts) or not parts[2].lower().endswith(ARCHIVE_SUFFIXES):
        raise DatasetError(
            f"--data_dir {url}: expected hf://datasets/<owner>/<repo>/<archive>"
            f"{'|'.join(ARCHIVE_SUFFIXES)} (e.g. {_EXAMPLE}); other Hub files are not datasets vidcls can read"
        )
    owner, repo, filename = parts
    repo, _, revision = repo.partition("@")
    return f"{owner}/{repo}", revision or None, filename


def fetch_from_hub(url: str) -> Path:
    """Download the archive that ``url`` names into the Hugging Face cache (once); return its local path.

    Raises:
        DatasetError: the URL is malformed, or the file cannot be downloaded (offline, not found, no access).
    """
    repo_id, revision, filename = parse_hub_url(url)
    try:  # huggingface_hub comes with transformers, but only this path needs it
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError
    except ImportError as err:
        raise MissingDependency(f"--data_dir {url} needs huggingface_hub: pip install huggingface_hub") from err
    try:
        return Path(hf_hub_download(repo_id, filename, repo_type="dataset", revision=revision))
    # Offline, unreachable and not-cached all end as LocalEntryNotFoundError (an EntryNotFoundError); a wrong
    # name or missing access is an HTTP error; a malformed repo id is a ValueError.
    except (EntryNotFoundError, HfHubHTTPError, OSError, ValueError) as err:
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise DatasetError(
            f"--data_dir {url}: cannot download {filename} from dataset {repo_id} ({reason}); check the name and "
            "the connection (HF_HUB_OFFLINE=1 allows only cached files), or download the archive and pass its path"
        ) from err
