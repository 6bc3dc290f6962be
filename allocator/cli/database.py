"""The ``db backup`` and ``db restore`` subcommands of ``allocator`` (registered by commands.py).

Exit codes: 0 done; 1 the backup or restore failed (pg_dump or the copy failed, a checksum is
missing or does not match, the database cannot be reached), on one line, the database left as it
was; 2 a bad argument, refused before anything is changed (no such file, not a backup, a backup of
the other engine, a non-empty target without ``--force``); 75 runs are live (after ``--wait``
seconds): a restore would replace the database under them, so nothing was changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from allocator.cli.bounds import whole_number
from allocator.shell.settings import get_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: sysexits.h EX_TEMPFAIL, as for ``allocator run``: live runs hold the database; try later.
EXIT_IN_USE = 75
#: The longest ``--wait`` for live runs: a day.
MAX_WAIT_SECONDS = 86_400


def cmd_db_backup(args: argparse.Namespace) -> int:
    """Write a backup and its checksum, print both, then delete backups past the retention."""
    from allocator.shell.persistence.backup import RETENTION_DAYS, backup_database

    settings = get_settings()
    folder = Path(args.to) if args.to else settings.backup_dir
    backup = backup_database(settings.database_url, folder)
    print(
        f"backup of {settings.masked_database_url}: {backup.path} "
        f"({backup.size:,} bytes, sha256 {backup.sha256})"
    )
    if backup.removed:
        names = ", ".join(path.name for path in backup.removed)
        print(f"removed {len(backup.removed)} backup(s) older than {RETENTION_DAYS} days: {names}")
    return EXIT_OK


def cmd_db_restore(args: argparse.Namespace) -> int:
    """Restore a verified backup into DATABASE_URL; a non-empty target only with ``--force``."""
    from allocator.shell.persistence.backup import RestoreRefused, restore_database
    from allocator.shell.persistence.migrate import head_revision
    from allocator.shell.persistence.runlock import DatabaseInUse

    settings = get_settings()
    try:
        restored = restore_database(
            settings.database_url, Path(args.file), force=args.force, wait=args.wait
        )
    except RestoreRefused as exc:
        print(f"allocator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DatabaseInUse as exc:
        print(f"allocator: {exc}", file=sys.stderr)
        return EXIT_IN_USE
    head = head_revision()
    note = "up to date" if restored.revision == head else "run `allocator db upgrade`"
    replaced = f", replacing {restored.replaced_rows} rows" if restored.replaced_rows else ""
    print(
        f"restored {restored.path} into {settings.masked_database_url}{replaced}: "
        f"revision {restored.revision} (head {head}, {note})"
    )
    return EXIT_OK


def add_backup_parsers(db_sub) -> None:
    """``db backup`` and ``db restore``, on the ``db`` command's subparsers."""
    backup = db_sub.add_parser(
        "backup",
        help="write a backup and its .sha256 (pg_dump -Fc or SQLite's online backup); "
        "delete this tool's backups older than 30 days in that folder",
    )
    backup.add_argument(
        "--to",
        metavar="DIR",
        help="backup folder (default ALLOCATOR_BACKUP_DIR, else var/backup in the checkout)",
    )
    backup.set_defaults(func=cmd_db_backup)
    restore = db_sub.add_parser(
        "restore",
        help="replace the database's contents with a backup, after checking its .sha256",
    )
    restore.add_argument("file", help="a backup written by `allocator db backup`")
    restore.add_argument(
        "--force",
        action="store_true",
        help="restore even though the database holds rows (they are replaced)",
    )
    restore.add_argument(
        "--wait",
        metavar="SECONDS",
        type=whole_number(0, MAX_WAIT_SECONDS),
        default=0,
        help="while job runs are live, wait up to SECONDS for them to end (default 0: refuse "
        "at once, exit 75); no run starts while the restore works",
    )
    restore.set_defaults(func=cmd_db_restore)
