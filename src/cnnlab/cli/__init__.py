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
        if _is_click(exc, "Abort"):
            print("aborted", file=sys.stderr)
            return 1
        if _is_click(exc, "ClickException"):
            exc.show()  # type: ignore[attr-defined]
            return exc.exit_code  # type: ignore[attr-defined]
        raise
    return 0


def _is_click(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is click's ``name`` (or a subclass): from click itself, or from the copy of
    click that typer >= 0.20 vendors as ``typer._click``, whose classes are not click's."""
    return any(cls.__name__ == name and cls.__module__.split(".")[0] in ("click", "typer") for cls in type(exc).__mro__)


def _fill_optional_values(argv: list[str], defaults: dict[str, str]) -> list[str]:
    """Let an option that takes a value also stand alone (``--pretrained`` = ``--pretrained auto``)."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg in defaults and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append(defaults[arg])
    return out
