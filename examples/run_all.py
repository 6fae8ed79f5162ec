"""Run every example, writing its PNG files to one folder.

    python examples/run_all.py --out docs/_generated [--quick]
"""

import argparse
import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "..", "docs", "_generated"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    scripts = sorted(glob.glob(os.path.join(HERE, "plot_*.py")))
    for script in scripts:
        command = [sys.executable, script, "--out", args.out]
        if args.quick:
            command.append("--quick")
        print(f"running {os.path.basename(script)}", flush=True)
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
