"""The `cnnlab` command. A thin skin over the Python API: one API call per command, no logic.

Importing this package imports neither torch nor timm, so `cnnlab --help` answers at once; each
command imports what it needs when it runs.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from cnnlab.cli.app import app
    from cnnlab.cli.train import OPTIONAL_VALUES
    from cnnlab.errors import CnnlabError

    argv = _fill_optional_values(list(sys.argv[1:] if argv is None else argv), OPTIONAL_VALUES)
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


def _fill_optional_values(argv: list[str], defaults: dict[str, str]) -> list[str]:
    """Let an option that takes a value also stand alone (``--pretrained`` = ``--pretrained auto``)."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg in defaults and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append(defaults[arg])
    return out
