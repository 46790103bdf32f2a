"""``python -m poromet.synth OUT_DIR ...``: write a synthetic set with its truth."""

from __future__ import annotations

import sys

import click

from ..errors import PorometError


def _size(ctx, param, value):
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 1024x768") from None
    if w < 64 or h < 64:
        raise click.BadParameter(f"{value!r}: width and height must be at least 64")
    return w, h


def _porosity(ctx, param, value):
    if value is None:
        return None
    try:
        vals = [float(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a fraction or a comma list of fractions") from None
    return vals[0] if len(vals) == 1 else vals


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--samples", default=9, show_default=True, type=click.IntRange(1, 999))
@click.option("--fields", default=10, show_default=True, type=click.IntRange(1, 999),
              help="Fields per sample.")
@click.option("--seed", default=1, show_default=True, type=click.IntRange(0))
@click.option("--flat", is_flag=True, help="S01_f01.tif in OUT_DIR instead of S01/S01_f01.tif.")
@click.option("--sidecar", type=click.Choice(["rect", "none"]), default="rect", show_default=True)
@click.option("--stack-fraction", default=0.3, show_default=True, type=click.FloatRange(0, 1))
@click.option("--size", default="1024x768", show_default=True, callback=_size)
@click.option("--porosity", default=None, callback=_porosity,
              help="Sample porosity: one fraction, or one per sample (comma list).")
@click.option("--difficulty", type=click.Choice(["easy", "mixed", "hard"]), default="mixed",
              show_default=True)
@click.option("--bit-depth", type=click.Choice(["8", "16"]), default=None,
              help="Default: drawn per sample.")
@click.option("--metadata", type=click.Choice(["random", "fei", "resolution", "none"]),
              default="random", show_default=True)
@click.option("--info-bar", type=click.IntRange(0), default=None,
              help="Data bar height in px (0: none). Default: drawn per sample.")
@click.option("--no-truth-masks", is_flag=True, help="Do not write _truth/*.mask.png.")
def main(out_dir, samples, fields, seed, flat, sidecar, stack_fraction, size, porosity,
         difficulty, bit_depth, metadata, info_bar, no_truth_masks):
    """Write SAMPLES x FIELDS synthetic SEM fields with exact truth to OUT_DIR."""
    from .writer import write_set

    try:
        truth = write_set(
            out_dir, n_samples=samples, fields_per_sample=fields, seed=seed,
            layout="flat" if flat else "samples", sidecar=sidecar,
            stack_fraction=stack_fraction, sample_porosity=porosity, size=size,
            difficulty=difficulty, bit_depth=int(bit_depth) if bit_depth else None,
            metadata=metadata, info_bar=info_bar, truth_masks=not no_truth_masks,
        )
    except PorometError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {samples * fields} fields; truth: {truth}")


if __name__ == "__main__":
    sys.exit(main())
