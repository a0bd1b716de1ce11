"""`harness sandbox ...`: build and inspect sandbox images and backends."""
from __future__ import annotations

import json

import typer

sandbox_app = typer.Typer(help="Build and inspect the sandboxes that model-written code runs in.",
                          no_args_is_help=True)


@sandbox_app.command()
def build(
    image: list[str] = typer.Option(None, "--image", "-i", metavar="NAME", help="Image(s) to build; default: all."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the definition is unchanged."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only print the result."),
) -> None:
    """Build the sandbox images (idempotent: cached by a hash of each image's definition)."""
    from rich.console import Console

    from . import _image

    console = Console(stderr=True)
    ok, err = _image.docker_available()
    if not ok:
        console.print(f"[red]No Docker daemon answers ({err}).[/red] Install docker.io and start dockerd.")
        raise typer.Exit(1)
    for name in image or _image.list_images():
        with console.status(f"building {name}") as status:
            def progress(line: str, _s=status) -> None:
                _s.update(f"{name}: {line[:100]}")
                if not quiet:
                    console.log(line, markup=False, highlight=False)
            image_id = _image.build_image(name, force=force, progress=progress)
        typer.echo(f"{_image.image_tag(name)} {image_id}")


@sandbox_app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show which sandbox backends work here and whether each image is built and current."""
    from . import _bwrap, _image

    out = {"images": [_image.image_status(n) for n in _image.list_images()],
           "bwrap": _bwrap.bwrap_status()}
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    for st in out["images"]:
        state = "built" if st.get("built") else ("docker unreachable" if not st["docker"] else "NOT BUILT")
        typer.echo(f"image {st['tag']}: {state}" + (f" ({st.get('size_mb')} MiB)" if st.get("built") else ""))
    b = out["bwrap"]
    typer.echo(f"bwrap: {'ok, ' + b['version'] if b['ok'] else 'unavailable: ' + b['error']}")
