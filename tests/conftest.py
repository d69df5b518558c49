import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Lambda code imports the shared library from its layer; put the layer on the path for unit tests.
sys.path.insert(0, str(ROOT / "lambda" / "layers" / "datalake" / "python"))
