"""Upload a finished run's model folder, model card included, to the Hugging Face Hub.

mrpc-finetune push runs/mrpc_minilm your-name/mrpc-minilm [--private]

Everything that can be checked is checked before anything is uploaded: the run finished, its model has a card, a
token is configured (``hf auth login`` or ``HF_TOKEN``; it is read by huggingface_hub only, never printed or
written) and the Hub answers.
"""

from __future__ import annotations

from pathlib import Path

from mrpc_finetune import hub
from mrpc_finetune.errors import UserError, first_line
from mrpc_finetune.run.ensemble_dir import EnsembleDir, is_ensemble
from mrpc_finetune.run.rundir import RunDir


def push_run(run_dir: str | Path, repo_id: str, *, private: bool = False) -> str:
    """Create ``repo_id`` if needed (``private`` applies only then) and upload ``RUN/model`` to it; returns its URL."""
    from huggingface_hub import HfApi

    folder = check_pushable(run_dir, repo_id)
    api = HfApi()
    try:
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=str(folder),
            commit_message=f"Upload {Path(run_dir).name} (mrpc_finetune)",
        )
    except Exception as err:  # any failure of the Hub or the connection, once the local checks have passed
        raise UserError(f"push {repo_id}: the upload failed ({first_line(err)})") from None
    return str(url)


def check_pushable(run_dir: str | Path, repo_id: str) -> Path:
    """The run's model folder, after every check that can fail before an upload; one-line errors otherwise."""
    from huggingface_hub import get_token
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    run = RunDir(Path(run_dir))
    if is_ensemble(run.root):  # no model of its own: the members' models, and code to average them
        members = EnsembleDir(run.root).members()
        raise UserError(
            f"{run.root}: an ensemble of {len(members)} runs, not one model, so there is nothing to push as one; "
            f"push a member instead, e.g. `mrpc-finetune push {members[0]} {repo_id}`"
        )
    if not run.recipe_file.is_file():
        raise UserError(f"{run.root}: not a run directory (no recipe.json in it)")
    if not run.metrics_file.is_file() or not (run.model / "config.json").is_file():
        raise UserError(
            f"{run.root}: the run has not finished (no metrics.json and final model yet); finish it with "
            f"`mrpc-finetune train {run.root} resume=true` before pushing"
        )
    if not (run.model / "README.md").is_file():
        raise UserError(
            f"{run.model}: no model card (README.md); write one with mrpc_finetune.run.model_card.write_model_card "
            f"before pushing"
        )
    missing = missing_code_files(run.model)
    if missing:
        raise UserError(
            f"{run.model}: config.json's auto_map needs {missing[0]}, which is not in the folder, so the pushed model "
            f"could not be loaded; train the run again (save_pretrained writes it) or copy the file back"
        )
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise UserError(f"push: {repo_id!r} is not a Hub repo id ({first_line(err)})") from None
    try:
        token = get_token()
    except Exception as err:  # HF_OIDC_RESOURCE set and its token exchange failed
        raise UserError(f"push: no Hugging Face token could be obtained ({first_line(err)})") from None
    if token is None:
        raise UserError("push: no Hugging Face token; run `hf auth login` or set HF_TOKEN to a token with write access")
    if not hub.hub_reachable():
        raise UserError(
            "push: the Hugging Face Hub cannot be reached (check the network, HF_ENDPOINT and HF_HUB_OFFLINE); "
            "nothing was uploaded"
        )
    return run.model


def missing_code_files(model_dir: Path) -> list[str]:
    """The Python files a custom architecture's ``auto_map`` (config.json) names that the folder lacks: a
    ``model.pooler=mean`` model needs ``modeling_mean_pooled_bert.py`` beside its weights to load anywhere else.
    References to another repository's code (``repo--module.Class``) are that repository's to hold."""
    import json

    try:
        auto_map = json.loads((model_dir / "config.json").read_text()).get("auto_map") or {}
    except (OSError, ValueError, AttributeError) as err:
        raise UserError(f"{model_dir}/config.json: cannot be read ({first_line(err)})") from None
    references = [r for value in auto_map.values() for r in (value if isinstance(value, list) else [value])]
    files = {f"{r.rsplit('.', 1)[0]}.py" for r in references if isinstance(r, str) and "--" not in r}
    return sorted(name for name in files if not (model_dir / name).is_file())
