"""Notebook hygiene: no outputs in git, readable notebook diffs, and runs that say what changed.

A researcher runs a notebook in JupyterLab and saves it: 783 KB of outputs and a 717-line diff,
which only the test suite noticed. So, in the checkout (``make install`` runs :func:`setup_git`):

- **A clean filter** (``.gitattributes``: ``notebooks/*.ipynb filter=allocator-notebook``) that
  git runs on every notebook it stages or compares: ``python -m allocator.notebook.hygiene
  clean`` strips outputs and execution counts with the same
  :func:`~allocator.notebook.render.strip_outputs` as ``make clean-notebooks``. The file on disk
  keeps its outputs; ``git status`` and ``git diff`` see the source only, and nothing else can
  be committed. A file that is not a notebook (a merge conflict) passes through unchanged.
- **nbdime** for diffs and merges (``nbdime config-git --enable``, in this checkout's
  ``.git/config`` only), its programs pinned to this virtualenv so that ``git diff`` works
  without activating it, and its diff told to apply the clean filter first (``--use-filter``),
  so that outputs saved in the working copy do not show; the JupyterLab extension comes with
  the package.
- **What a run ran.** ``-dirty`` on a run's commit said only that something differed from HEAD.
  :func:`checkout_changes` records, in the archived notebook's metadata (``allocator.checkout``),
  the files that differ and the notebook's own diff against HEAD (at most
  :data:`MAX_DIFF_CHARS` characters); ``python -m allocator.notebook.hygiene show RUN.ipynb``
  prints it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from allocator.shell.atomic import write_atomic
from allocator.shell.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

#: The filter's name in ``.gitattributes`` and ``.git/config``.
FILTER = "allocator-notebook"
#: The longest notebook diff a run records, and the most changed files it lists.
MAX_DIFF_CHARS = 20_000
MAX_CHANGED_FILES = 50
#: Where in an archived notebook's metadata the checkout's changes are recorded.
METADATA_KEY = "allocator"
#: nbdime's git settings whose program is looked up on ``PATH``, pinned to the virtualenv.
NBDIME_COMMANDS = (
    "diff.jupyternotebook.command",
    "merge.jupyternotebook.driver",
    "difftool.nbdime.cmd",
    "mergetool.nbdime.cmd",
)


def clean(text: str) -> str:
    """``text`` (a notebook) without outputs, execution counts or run metadata.

    The same stripping as ``make clean-notebooks``; a text that is not a notebook comes back
    unchanged, so a filter never loses what git gave it.
    """
    with tempfile.TemporaryDirectory(prefix="allocator-clean-") as scratch:
        path = Path(scratch) / "notebook.ipynb"
        path.write_text(text, encoding="utf-8")
        try:
            from allocator.notebook.render import strip_outputs

            changed = strip_outputs(path)
        except Exception:  # noqa: BLE001 - not a notebook (a conflict, a half-saved file)
            return text
        if not changed:
            return text
        stripped = path.read_text(encoding="utf-8")
        # Ending as JupyterLab and nbformat.write end a file, as the committed notebooks do.
        return stripped if stripped.endswith("\n") else stripped + "\n"


def _git(root: Path | str, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout


def _quoted(program: Path) -> str:
    return '"' + str(program).replace('"', '\\"') + '"'


def setup_git(root: Path = PROJECT_ROOT, python: Path | None = None) -> list[str]:
    """Configure the checkout at ``root``: the clean filter and nbdime; one line per step.

    ``python`` is this virtualenv's interpreter (default: the running one); the filter and
    nbdime's programs are called by absolute path. Only ``.git/config`` is written (nbdime
    leaves the committed ``.gitattributes`` alone, which already names both). Outside a git
    checkout (an unpacked archive) it does nothing.
    """
    python = Path(python or sys.executable)
    try:
        top = _git(root, "rev-parse", "--show-toplevel").strip()
    except (OSError, subprocess.SubprocessError):
        return [f"{root} is not a git checkout: notebook filter and nbdime not configured"]
    command = f"{_quoted(python)} -m allocator.notebook.hygiene clean"
    _git(top, "config", f"filter.{FILTER}.clean", command)
    done = [f"git filter {FILTER}: outputs of notebooks/*.ipynb are stripped when staged"]
    nbdime = subprocess.run(
        [str(python), "-m", "nbdime", "config-git", "--enable"],
        cwd=top,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if nbdime.returncode:
        reason = (nbdime.stderr.strip().splitlines() or ["no message"])[-1]
        return [*done, f"WARNING nbdime config-git failed ({reason}): notebook diffs stay text"]
    for key in NBDIME_COMMANDS:
        value = _git(top, "config", "--get", key).strip()
        program, _, rest = value.partition(" ")
        if key == "diff.jupyternotebook.command" and "--use-filter" not in rest:
            rest = f"{rest} --use-filter"
        if program.startswith("git-nb"):
            _git(top, "config", key, f"{_quoted(python.parent / program)} {rest}".strip())
    return [*done, "nbdime: git diff and merge of notebooks (and its JupyterLab extension)"]


def _bounded(text: str) -> tuple[str, bool]:
    if len(text) <= MAX_DIFF_CHARS:
        return text, False
    more = len(text) - MAX_DIFF_CHARS
    return f"{text[:MAX_DIFF_CHARS]}\n... {more:,} more characters (run git diff)\n", True


def checkout_changes(notebook: Path) -> dict[str, Any] | None:
    """What the checkout holding ``notebook`` changed against HEAD; None when clean or no git.

    ``{"commit", "changed_files", "changed_files_total", "notebook", "notebook_tracked",
    "notebook_diff", "notebook_diff_truncated"}``: the diff is git's own (through the clean
    filter when it is set up, so outputs do not count), never an external diff program's.
    """
    notebook = Path(notebook).resolve()
    try:
        top = _git(notebook.parent, "rev-parse", "--show-toplevel").strip()
        head = _git(top, "rev-parse", "HEAD").strip()
        status = _git(top, "status", "--porcelain", "--untracked-files=normal")
        relative = os.path.relpath(notebook, top)
        tracked = bool(_git(top, "ls-files", "--", relative).strip())
        diff = _git(top, "diff", "--no-ext-diff", "--no-color", "HEAD", "--", relative)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if not status.strip():
        return None
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    text, truncated = _bounded(diff)
    return {
        "commit": head,
        "changed_files": changed[:MAX_CHANGED_FILES],
        "changed_files_total": len(changed),
        "notebook": relative,
        "notebook_tracked": tracked,
        "notebook_diff": text,
        "notebook_diff_truncated": truncated,
    }


def record_checkout(output: Path, changes: dict[str, Any]) -> bool:
    """Write ``changes`` into the notebook file ``output``'s metadata; False when it cannot.

    Whole or not at all. When it cannot (a full archive), the run's commit still says
    ``-dirty``, and whatever stopped it is the run's own one-line error: nothing more is said.
    """
    try:
        nb = json.loads(Path(output).read_text(encoding="utf-8"))
        nb.setdefault("metadata", {}).setdefault(METADATA_KEY, {})["checkout"] = changes
        text = json.dumps(nb, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False)
        write_atomic(output, text + "\n")  # whole or not at all: the archive is never truncated
    except (OSError, ValueError, AttributeError) as exc:
        log.debug("cannot record the checkout's changes in %s: %s", output, exc)
        return False
    return True


def recorded_checkout(notebook: Path) -> dict[str, Any] | None:
    """The changes an archived notebook recorded (:func:`record_checkout`), or None."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    return (nb.get("metadata", {}).get(METADATA_KEY) or {}).get("checkout")


def describe_checkout(changes: dict[str, Any] | None) -> str:
    """The recorded changes as text for a reader."""
    if not changes:
        return "the checkout was clean (or not a git checkout): the run's commit is the code"
    total, shown = changes["changed_files_total"], changes["changed_files"]
    lines = [f"commit {changes['commit']} with {total} changed file(s):"]
    lines += [f"  {name}" for name in shown]
    if total > len(shown):
        lines.append(f"  ... and {total - len(shown)} more")
    if not changes["notebook_tracked"]:
        lines.append(f"{changes['notebook']} is not in git at all")
    elif changes["notebook_diff"]:
        lines += [f"{changes['notebook']} differs from HEAD:", changes["notebook_diff"].rstrip()]
    else:
        lines.append(f"{changes['notebook']} is as in HEAD")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``clean`` (git's filter: stdin to stdout), ``setup`` (``make install``), ``show RUN``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m allocator.notebook.hygiene")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("clean", help="git's clean filter: a notebook on stdin, stripped on stdout")
    setup = sub.add_parser("setup", help="configure the git filter and nbdime in a checkout")
    setup.add_argument("--root", type=Path, default=PROJECT_ROOT)
    show = sub.add_parser("show", help="what an archived run's checkout changed against HEAD")
    show.add_argument("notebook", type=Path)
    args = parser.parse_args(argv)
    if args.action == "clean":
        raw = sys.stdin.buffer.read()
        try:
            out = clean(raw.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            out = raw
        sys.stdout.buffer.write(out)
    elif args.action == "setup":
        print("\n".join(setup_git(args.root)))
    else:
        print(describe_checkout(recorded_checkout(args.notebook)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
