import sys
from pathlib import Path

# tests import the plain reference (tests/naive.py) as a top-level module
sys.path.insert(0, str(Path(__file__).parent))
