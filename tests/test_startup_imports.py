"""Commands start fast: loading the apps, models, admin and URL conf imports no heavy library.

scikit-learn, skops, matplotlib, scipy, pandas, ccxt and TA-Lib are imported where they are used
(fitting a model, drawing a chart, reading candles), so `manage.py check` or `help` does not pay
seconds for them. The check runs in a fresh interpreter: the test process has imported them all.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sklearn", "skops", "matplotlib", "scipy", "pandas", "ccxt", "talib")

LOAD_EVERYTHING_A_COMMAND_LOADS = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.contrib import admin
from django.urls import get_resolver
get_resolver().url_patterns  # imports the URL conf, every view module and the admin registrations
admin.autodiscover()
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_loading_apps_admin_and_url_conf_imports_no_heavy_library():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tradelearn.settings.test"}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_EVERYTHING_A_COMMAND_LOADS], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "django" in loaded and "rest_framework" in loaded  # the probe really loaded the project
    assert sorted(loaded & set(HEAVY)) == []
