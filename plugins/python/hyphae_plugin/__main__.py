"""`python -m hyphae_plugin build [DIR] [--out FILE]`."""

import argparse
import sys
from pathlib import Path

from ._build import BuildError, build


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m hyphae_plugin", description="Hyphae plugins in Python")
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="build a plugin project into a WebAssembly component")
    build_command.add_argument("dir", nargs="?", default=".", type=Path, help="the project (with app.py); default .")
    build_command.add_argument("--out", type=Path, help="the component to write (default DIR/dist/NAME.wasm)")
    args = parser.parse_args()
    try:
        out = build(args.dir, args.out)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 65
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
