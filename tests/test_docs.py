"""Generated documents stay generated: regenerate and compare."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_conventions_table_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "conventions.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
