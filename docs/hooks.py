"""MkDocs hooks of the linops site (``hooks:`` in mkdocs.yml).

The notebooks live at the repository root, in ``notebooks/``, where CI executes them with nbmake;
the site shows each one as the page ``notebooks/<name>.ipynb``, rendered from its committed outputs
by mkdocs-jupyter (``execute: false``). Adding them here, instead of through a symlink in docs/,
works in any checkout on any OS, and ``mkdocs serve`` reloads when a notebook changes.
"""

from __future__ import annotations

import pathlib

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File


def _root(config) -> pathlib.Path:
    return pathlib.Path(config.config_file_path).resolve().parent


@event_priority(100)  # before mkdocs-jupyter's on_files, which makes pages of the .ipynb files
def on_files(files, config):
    """Add every ``notebooks/*.ipynb`` to the site's files, at ``notebooks/<name>.ipynb``.

    The file's source directory is the repository root (mkdocs-jupyter reads ``abs_src_path``
    through it), so its path in the site is the path in the repository.
    """
    root = _root(config)
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        files.append(File(f"notebooks/{path.name}", src_dir=str(root), dest_dir=config.site_dir,
                          use_directory_urls=config.use_directory_urls))
    return files


def on_serve(server, config, builder):
    """``mkdocs serve`` rebuilds when a notebook changes."""
    server.watch(str(_root(config) / "notebooks"))
    return server
