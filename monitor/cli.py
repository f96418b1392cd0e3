"""The ``likeness-monitor`` command: what a rights team runs by hand.

Every project error ends as one readable line on stderr and exit status 2; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from monitor.config import ROLES, load_settings
from monitor.errors import GalleryNotBuiltError, MonitorError

__all__ = ["app", "main"]

app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, help=__doc__
)
models_app = typer.Typer(no_args_is_help=True, help="Pretrained weights.")
gallery_app = typer.Typer(no_args_is_help=True, help="Build and inspect a gallery.")
app.add_typer(models_app, name="models")
app.add_typer(gallery_app, name="gallery")

out = Console()
err = Console(stderr=True)

BUILT_DIR = "built"


def resolve_built(path: Path) -> Path:
    """A built gallery folder, given either it or the gallery folder it was built from."""
    for candidate in (path, path / BUILT_DIR):
        if (candidate / "gallery.json").is_file():
            return candidate
    raise GalleryNotBuiltError(f"{path}: no built gallery (run `likeness-monitor gallery build`)")


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[str], None]]:
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(label, total=total)

        def advance(name: str) -> None:
            bar.update(task, advance=1, description=f"{label} {name}")

        yield advance


@models_app.command("fetch")
def models_fetch(
    from_dir: Annotated[
        list[Path] | None, typer.Option("--from", help="Folder holding weight files you have.")
    ] = None,
) -> None:
    """Fetch, verify and cache every bundled weight (and convert FaceNet once)."""
    from monitor.likeness.models import prepare_weights

    for path in prepare_weights(extra_dirs=tuple(from_dir or ())):
        out.print(f"[green]ok[/green] {path}", soft_wrap=True)


@models_app.command("list")
def models_list() -> None:
    """The bundled weights and the cohort's pictures, their hashes and sources."""
    from monitor.likeness.cohort.bundled import COHORT_WEIGHTS
    from monitor.likeness.weights import BUNDLED_WEIGHTS

    table = Table("name", "sha256", "cached", "sources")
    for weight in (*BUNDLED_WEIGHTS.values(), *COHORT_WEIGHTS):
        sources = "\n".join(source.describe() for source in weight.sources)
        table.add_row(weight.name, weight.sha256[:16], str(weight.cached().is_file()), sources)
    out.print(table)


@gallery_app.command("build")
def gallery_build(
    folder: Path,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Default: FOLDER/built.")] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Embed every file again, ignoring the cache.")
    ] = False,
) -> None:
    """Embed a gallery folder's references and negatives, calibrate, and save.

    Files embedded by an earlier build with the same models and settings come from the cache.
    """
    from monitor.likeness.gallery.build import build_gallery, media_count
    from monitor.likeness.gallery.cache import EmbeddingCache
    from monitor.likeness.models import Models

    settings = load_settings()
    models = Models.load(settings.likeness)
    cache = None if fresh else EmbeddingCache.default()
    with _progress(media_count(folder), "embedding") as advance:
        gallery = build_gallery(
            folder, models, settings.likeness, settings.decode, progress=advance, cache=cache
        )
    target = out_dir or folder / BUILT_DIR
    gallery.save(target)
    reused = f", {cache.stats.hits} files from the cache" if cache and cache.stats.hits else ""
    out.print(
        f"built gallery [bold]{gallery.version}[/bold] ({len(gallery.entities)} entities{reused}) "
        f"in {target}"
    )


@gallery_app.command("calibrate")
def gallery_calibrate(
    gallery: Path,
    target_fpr: Annotated[
        float | None, typer.Option(help="Default: the configured target.")
    ] = None,
) -> None:
    """Set each entity's threshold from the negatives for a target false-positive rate."""
    from monitor.likeness.gallery.built import Gallery
    from monitor.likeness.gallery.calibrate import calibrate

    built = resolve_built(gallery)
    target = target_fpr if target_fpr is not None else load_settings().likeness.target_fpr
    calibrated = calibrate(Gallery.load(built), target)
    calibrated.save(built)
    _show(calibrated.version, calibrated)


@gallery_app.command("show")
def gallery_show(gallery: Path, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Entities, references, thresholds and versions of a built gallery."""
    from monitor.likeness.gallery.built import Gallery

    built = resolve_built(gallery)
    loaded = Gallery.load(built)
    if as_json:
        out.print_json((built / "gallery.json").read_text())
        return
    _show(loaded.version, loaded)


def _show(version: str, gallery: Any) -> None:
    out.print(f"gallery {version}  models {gallery.models}  target FPR {gallery.target_fpr}")
    table = Table(
        "entity", "kind", "franchise", "refs", "threshold", "source", "negatives", "max negative"
    )
    for entry in gallery.entities.values():
        t = entry.threshold
        table.add_row(
            entry.entity.id,
            entry.entity.kind,
            entry.entity.franchise or "",
            str(len(set(entry.references))),
            f"{t.value:.3f}",
            t.source,
            str(t.negatives),
            "" if t.max_negative is None else f"{t.max_negative:.3f}",
        )
    out.print(table)


def _scorer(gallery: Path) -> Any:
    from monitor.likeness.gallery.built import Gallery
    from monitor.likeness.models import Models
    from monitor.likeness.scoring import Scorer

    settings = load_settings()
    return Scorer(
        Gallery.load(resolve_built(gallery)), Models.load(settings.likeness), settings.likeness
    )


@app.command("score")
def score(
    path: Path,
    gallery: Annotated[Path, typer.Option(help="Gallery folder or built gallery.")],
    caption: Annotated[str | None, typer.Option(help="The clip's caption or title.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Score one clip or image: which protected entities it shows, with evidence."""
    from monitor.media import load_media

    settings = load_settings()
    scorer = _scorer(gallery)
    frames = load_media(path, settings.decode.limits, even_frames=settings.decode.even_frames)
    result = scorer.score_frames(frames, caption)
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    out.print(f"{path}: {result.frames} frames, gallery {result.gallery_version}")
    table = Table("entity", "kind", "score", "threshold", "flagged", "evidence")
    for entity in result.entities:
        best = entity.evidence[0] if entity.evidence else None
        where = (
            f"{best.signal} t={best.frame_time}s {best.region or ''} {best.box.as_list() if best.box else ''}"
            if best and best.signal != "caption"
            else ""
        )
        flag = "[bold red]YES[/bold red]" if entity.flagged else "no"
        table.add_row(
            entity.entity_id,
            entity.kind,
            f"{entity.score:.3f}",
            f"{entity.threshold:.3f}",
            flag,
            where,
        )
    out.print(table)


def _fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


@app.command("eval")
def evaluate(
    gallery: Annotated[Path, typer.Option(help="Gallery folder or built gallery.")],
    cases: Annotated[Path, typer.Option(help="Manifest of cases (path + expect).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """TPR, FPR, precision and average precision per entity on labelled cases."""
    from monitor.likeness.evaluation import evaluate as run_eval
    from monitor.likeness.evaluation import load_cases

    settings = load_settings()
    scorer = _scorer(gallery)
    loaded = load_cases(cases)
    with _progress(len(loaded), "scoring") as advance:
        report = run_eval(scorer, loaded, settings.decode, progress=lambda c: advance(c.path.name))
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    table = Table("entity", "kind", "threshold", "pos", "neg", "TPR", "FPR", "precision", "AP")
    for m in report.entities:
        table.add_row(
            m.entity_id,
            m.kind,
            f"{m.threshold:.3f}",
            str(m.positives),
            str(m.negatives),
            _fmt(m.tpr),
            _fmt(m.fpr),
            _fmt(m.precision),
            _fmt(m.average_precision),
        )
    for name, figures in (*report.by_kind.items(), ("overall", report.overall)):
        table.add_row(
            f"[bold]{name}[/bold]",
            "",
            "",
            str(figures["positives"]),
            str(figures["negatives"]),
            _fmt(figures["tpr"]),
            _fmt(figures["fpr"]),
            _fmt(figures["precision"]),
            _fmt(figures["mean_ap"]),
        )
    out.print(table)
    for line in report.errors:
        err.print(f"[yellow]media error[/yellow] {line}")


@app.command("eval-captions")
def evaluate_captions(
    gallery: Annotated[Path, typer.Option(help="Gallery folder or built gallery.")],
    cases: Annotated[Path, typer.Option(help="Caption cases (text + entity or null).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Captions by meaning alone: TPR and FPR per entity on describing and other captions."""
    from monitor.likeness.evaluation import evaluate_captions as run_eval
    from monitor.likeness.evaluation import load_caption_cases

    report = run_eval(_scorer(gallery), load_caption_cases(cases))
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    table = Table("entity", "threshold", "pos", "neg", "TPR", "FPR")
    for m in report.entities:
        table.add_row(
            m["entity_id"],
            _fmt(m["threshold"]),
            str(m["positives"]),
            str(m["negatives"]),
            _fmt(m["tpr"]),
            _fmt(m["fpr"]),
        )
    out.print(table)
    o = report.overall
    out.print(
        f"overall: {o['positives']} describing captions, TPR {_fmt(o['tpr'])}, matched to "
        f"another entity {_fmt(o['wrong_entity'])}; {o['negatives']} other captions, "
        f"FPR {_fmt(o['fpr'])}"
    )


@app.command("up")
def up(
    roles: Annotated[
        str, typer.Option(help="Comma-separated subset of crawl,score,decide,notify,review.")
    ] = ",".join(ROLES),
) -> None:
    """Run the monitor: embedded broker, demo platform and demo gallery unless configured."""
    import logging

    from monitor.pipeline.run import up as run_up

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    chosen = [role.strip() for role in roles.split(",") if role.strip()]
    run_up(load_settings(), roles=chosen, say=lambda line: out.print(line, soft_wrap=True))


@app.command("broker")
def broker() -> None:
    """Run the embedded Kafka-protocol broker alone and print its URL."""
    from monitor.pipeline.broker import run_broker_forever

    run_broker_forever(lambda url: out.print(url, soft_wrap=True))


@app.command("demo-platform")
def demo_platform(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8765,
    root: Annotated[Path | None, typer.Option(help="Where the demo media are built.")] = None,
) -> None:
    """Serve the demo platform: a listing API with growing view counts, and clip media."""
    from monitor.demo.platform import run_demo_platform

    run_demo_platform(port=port, root=root)


@app.command("crawl")
def crawl(
    source: Annotated[str, typer.Option(help="youtube, reddit, tiktok, x or rss.")],
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be sent; send and remember nothing.")
    ] = False,
) -> None:
    """Crawl one configured platform: each observation to clips.discovered, and as JSON here."""
    import asyncio
    import logging

    from monitor.pipeline.crawl_command import crawl_command

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(
        crawl_command(
            load_settings(),
            source,
            once=once,
            dry_run=dry_run,
            say=lambda line: out.print(line, soft_wrap=True, highlight=False, markup=False),
            note=lambda line: err.print(line, soft_wrap=True, highlight=False, markup=False),
        )
    )


def main() -> None:
    try:
        app()
    except MonitorError as exc:
        err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
        sys.exit(2)
