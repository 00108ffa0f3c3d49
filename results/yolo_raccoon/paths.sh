# Sourced by this record's scripts: where the repository (ROOT, the working directory), this
# folder (HERE), the data and runs (WORK, not committed), the shared files and Python are.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
WORK=${WORK:-$ROOT/../data/yolo_raccoon}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
cd "$ROOT"
