#!/usr/bin/env bash
# Set up navigator on Debian/Ubuntu: system libraries (virtual X server and Mesa for the GUI and
# its tests, CGAL/Eigen to build the mesher), a virtual environment in .venv, and navigator with
# every extra. `--test` also installs the test tools. Safe to run again: finished parts are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TEST=0
for arg in "$@"; do
  case "$arg" in
    --test) WITH_TEST=1 ;;
    -h|--help) echo "usage: bash scripts/setup.sh [--test]"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

APT_PACKAGES=(
  xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libosmesa6
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0
  libxcb-render-util0 libxcb-xinerama0 libxcb-shape0 libdbus-1-3 libfontconfig1
  libcgal-dev libeigen3-dev libgmp-dev libmpfr-dev g++
)

if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "setup: apt-get not found; install the equivalents of: ${APT_PACKAGES[*]}" >&2
fi

PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "setup: navigator needs Python >= 3.11 (found $("$PY" --version))" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
EXTRAS="all"
[ "$WITH_TEST" = 1 ] && EXTRAS="all,test"
echo "setup: installing navigator[$EXTRAS] into .venv (the mesher builds from source the first time: ~5 min)"
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"
.venv/bin/navigator --version
