"""The ``sslkit`` command: run, validate, export, list and describe."""
from __future__ import annotations

import inspect
import json
import sys

import click

from .errors import SSLKitError


def _fail(exc: SSLKitError):
    from .distributed import world

    rank, _, size = world()
    where = f"rank {rank}: " if size > 1 else ""  # under torchrun: which process says it
    click.echo(f"error: {where}{exc}", err=True)
    sys.exit(exc.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sslkit")
def main():
    """sslkit: semi-, weak- and self-supervised learning from YAML recipes."""


@main.command()
@click.argument("recipe", required=False, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe key, e.g. --set trainer.max_steps=5 (repeatable).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Run folder (default runs/<recipe>-<time>); an existing run there is refused.")
@click.option("--overwrite", is_flag=True, help="Replace the run already in the --out folder.")
@click.option("--resume", type=click.Path(file_okay=False),
              help="Continue the run in this folder (no RECIPE, no --out).")
@click.option("--stage", help="In a staged recipe, run only this stage (earlier stages' folders must exist).")
def run(recipe, overrides, out, overwrite, resume, stage):
    """Train RECIPE and write a run folder."""
    from .runner import run as run_recipe

    try:
        result = run_recipe(recipe, list(overrides), out=out, resume=resume, stage=stage, overwrite=overwrite)
    except SSLKitError as exc:
        _fail(exc)
    if result.already_finished:
        click.echo(f"{result.run_dir} is already finished (step {result.metrics.get('step', '?')}); nothing was "
                   f"changed. To train longer, add --set trainer.max_steps=N.", err=True)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if result.run_dir is not None:
        shown = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
        click.echo(json.dumps(shown, indent=2))
        click.echo(f"run folder: {result.run_dir}")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--to", "to", required=True, type=click.Path(), help="New folder to write the encoder into.")
@click.option("--stage", help="Of a staged run, the stage to export (default: its last trained stage).")
def export(run_dir, to, stage):
    """Write the trained encoder of RUN_DIR for use without sslkit (save_pretrained for hf encoders,
    else safetensors + sslkit_encoder.json). Of a staged run, the last trained stage unless --stage."""
    from pathlib import Path

    from .export import export as export_run
    from .export import run_folder_of

    try:
        source = run_folder_of(Path(run_dir), stage)
        folder = export_run(run_dir, to, stage=stage)
    except SSLKitError as exc:
        _fail(exc)
    what = f"stage '{source.name}' of {run_dir}" if source != Path(run_dir) else str(run_dir)
    click.echo(f"exported {what} to {folder}")


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a recipe key.")
def validate(recipe, overrides):
    """Check RECIPE (keys, types, part names, data) without training."""
    from .runner import validate_report

    try:
        _, lines = validate_report(recipe, list(overrides))
    except SSLKitError as exc:
        _fail(exc)
    click.echo(f"{recipe}: ok")
    for line in lines:
        click.echo(f"  {line}")


@main.command(name="list")
@click.argument("kind", required=False)
def list_parts(kind):
    """List registered parts, of every kind or of KIND (e.g. objectives)."""
    from .registry import KINDS, registry

    try:
        kinds = [registry(kind).kind] if kind else KINDS
    except SSLKitError as exc:
        _fail(exc)
    for k in kinds:
        click.echo(f"{k}:")
        for name in registry(k).names():
            click.echo(f"  {name:<16} {registry(k).get(name).summary}")


def _format_default(p) -> str:
    if p.required:
        return "(required)"
    d = p.default
    return json.dumps(list(d) if isinstance(d, tuple) else d, default=str)


def _format_type(p) -> str:
    from .schema import _type_name

    return _type_name(p.annotation) if p.annotation is not inspect.Parameter.empty else "any"


@main.command()
@click.argument("name")
@click.option("--import", "imports", multiple=True, metavar="MODULE",
              help="Import MODULE first, as a recipe's imports: does (its parts register themselves).")
def describe(name, imports):
    """Show a part's parameters (with defaults) and its documentation. NAME may be KIND/NAME, or a recipe
    section: recipe, trainer, data, encoder, objective, regularizer."""
    from .config import SECTIONS, section_keys
    from .encoders.capabilities import capabilities_of
    from .errors import ConfigError, did_you_mean
    from .registry import KINDS, find, registry

    from .registry import import_user_modules

    try:
        import_user_modules(list(imports), path="--import")
    except SSLKitError as exc:
        _fail(exc)
    if name in SECTIONS:  # a recipe section: its keys, as the recipe checks them
        cls = SECTIONS[name]
        click.echo(f"{name}: {(cls.__doc__ or '').strip() or 'recipe keys'}")
        for key, kind, default, comment in section_keys(cls):
            click.echo(f"  {key}: {kind} = {json.dumps(default, default=str)}" + (f"  # {comment}" if comment else ""))
        return
    try:
        entries = find(name)
    except SSLKitError as exc:
        _fail(exc)
    if not entries:
        known = [n for k in KINDS for n in registry(k).names()] + list(SECTIONS)
        _fail(ConfigError(name, f"no part is called '{name}'{did_you_mean(name, known)}; see `sslkit list`"))
    for entry in entries:
        click.echo(f"{entry.kind[:-1]} '{entry.name}'  ({entry.target.__module__}.{entry.target.__qualname__})")
        if entry.params:
            click.echo("parameters:")
            for p in entry.params.values():
                click.echo(f"  {p.name}: {_format_type(p)} = {_format_default(p)}")
        else:
            click.echo("parameters: none")
        if entry.kind == "encoders":
            click.echo(f"capabilities: {', '.join(capabilities_of(entry.target)) or 'none beyond forward(x)'}")
        needs = getattr(entry.target, "requires", ())
        if entry.kind == "objectives":
            click.echo(f"needs: {', '.join(c.name for c in needs) or 'any encoder'}")
            reporters = [r if isinstance(r, str) else r["name"] for r in getattr(entry.target, "reporters", ())]
            click.echo(f"default reporters: {', '.join(reporters) or 'none'} (besides curves)")
        if entry.kind == "reporters" and getattr(entry.target, "needs", None):
            click.echo(f"needs: an objective that {entry.target.needs[1]}")
        if entry.doc:
            click.echo("")
            click.echo(entry.doc)
        click.echo("")


if __name__ == "__main__":
    main()
