"""The `cnnlab` command. A thin skin over the Python API: one API call per command, no logic.

Importing this package imports neither torch nor timm, so `cnnlab --help` answers at once; each
command imports what it needs when it runs.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from cnnlab.cli.app import app
    from cnnlab.errors import CnnlabError

    try:
        app(args=argv, prog_name="cnnlab", standalone_mode=False)
    except CnnlabError as exc:
        from cnnlab.cli.output import err_console

        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # click usage errors arrive here when not standalone
        import click

        if isinstance(exc, click.exceptions.Abort):
            print("aborted", file=sys.stderr)
            return 1
        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return 0
