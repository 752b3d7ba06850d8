"""Run the ivr command-line interface: `python main.py --help`."""

from ivr.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
