"""How long ``fourd-hub --help``, ``--version`` and ``list`` take to answer, next to ``import torch``.

What it does
------------
Runs each command in a fresh interpreter, ``--repeat`` times (default 5), and prints the best
wall time (the least disturbed by other load on the machine). Each command runs two ways:

- ``as installed``: a copy of the console script pip writes for ``fourd-hub = "fourd_hub.cli:main"``
  (a file named ``fourd-hub`` that runs ``from fourd_hub.cli import main; sys.exit(main())``), run
  with this repository first on ``PYTHONPATH``. Importing ``fourd_hub.cli`` runs the package's
  ``fourd_hub/__init__.py`` first, as for any submodule;
- ``lazy __init__``: the same, with ``fourd_hub`` entered in ``sys.modules`` as a bare package
  (its ``__path__`` only) so that ``__init__.py`` does not run. This is what the CLI costs once
  the package ``__init__`` defers its imports (PEP 562 ``__getattr__``); ``fourd_hub.cli`` itself
  imports only the standard library and the light catalog / registry / task tables.

For each it also says whether torch / transformers ended up imported. For comparison it times
``python -c pass``, ``import torch``, ``import transformers`` and ``import fourd_hub``.
Nothing is asserted; the tests check only that the commands need no torch.

How to run (from the repository root)
-------------------------------------
    python benchmarks/cli_startup.py
    python benchmarks/cli_startup.py --repeat 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# A bare fourd_hub package: the submodules are importable, fourd_hub/__init__.py does not run.
BARE_PACKAGE = """
import importlib.util, sys, types
_spec = importlib.util.find_spec("fourd_hub")
_package = types.ModuleType("fourd_hub")
_package.__path__ = list(_spec.submodule_search_locations)
_package.__file__ = _spec.origin
sys.modules["fourd_hub"] = _package
"""

# The console script pip generates for `fourd-hub = "fourd_hub.cli:main"`, plus, when asked, which
# heavy modules were imported (on stderr, after the command).
CONSOLE_SCRIPT = """
import re
import sys
from fourd_hub.cli import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    try:
        code = main()
    finally:
        import json, os
        if os.environ.get("CLI_STARTUP_REPORT"):
            heavy = sorted({name.split(".")[0] for name in sys.modules} & {"torch", "transformers", "huggingface_hub", "numpy", "av"})
            sys.stderr.write("\\nCLI_STARTUP_REPORT " + json.dumps(heavy) + "\\n")
    sys.exit(code)
"""

COMMANDS = {"fourd-hub --help": ["--help"], "fourd-hub --version": ["--version"], "fourd-hub list": ["list"]}
IMPORTS = {
    "python -c pass": "pass",
    "import torch": "import torch",
    "import transformers": "import transformers",
    "import fourd_hub": "import fourd_hub",
}


# This repository's fourd_hub first, whatever is installed.
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))


def best_time(argv: list[str], repeat: int) -> float:
    """The best wall time of ``repeat`` runs (a failing command is timed too: older versions lack --version)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO_ROOT, env=ENV)
        times.append(time.perf_counter() - start)
    return min(times)


def heavy_modules(argv: list[str]) -> list[str]:
    env = dict(ENV, CLI_STARTUP_REPORT="1")
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
    lines = [text for text in done.stderr.splitlines() if text.startswith("CLI_STARTUP_REPORT ")]
    if not lines:
        raise SystemExit(f"{' '.join(argv)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    heavy = json.loads(lines[-1].split(" ", 1)[1])
    return heavy + ([f"(exit {done.returncode})"] if done.returncode else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement; the best is printed (default 5)")
    args = parser.parse_args()

    print(f"fourd-hub startup, best of {args.repeat} fresh interpreters (Python {platform.python_version()}, {os.cpu_count()} CPUs)")
    print(f"{'':24s}{'as installed':>16s}{'lazy __init__':>16s}   heavy modules imported (installed / lazy)")
    with tempfile.TemporaryDirectory() as scratch:
        installed_script = Path(scratch, "installed", "fourd-hub")
        lazy_script = Path(scratch, "lazy", "fourd-hub")
        for script, prelude in ((installed_script, ""), (lazy_script, BARE_PACKAGE)):
            script.parent.mkdir()
            script.write_text(prelude + CONSOLE_SCRIPT)
        for label, command in COMMANDS.items():
            installed = [sys.executable, str(installed_script), *command]
            lazy = [sys.executable, str(lazy_script), *command]
            row = [best_time(installed, args.repeat), best_time(lazy, args.repeat)]
            heavy = [", ".join(heavy_modules(argv)) or "none" for argv in (installed, lazy)]
            print(f"{label:24s}{row[0]:>14.3f} s{row[1]:>14.3f} s   {heavy[0]} / {heavy[1]}")
    print()
    for label, code in IMPORTS.items():
        print(f"{label:24s}{best_time([sys.executable, '-c', code], args.repeat):>14.3f} s")


if __name__ == "__main__":
    main()
