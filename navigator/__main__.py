"""`python -m navigator` runs the command-line interface."""

import sys

from navigator.cli import main

if __name__ == "__main__":
    sys.exit(main())
