"""gunicorn.conf.py is read by gunicorn as meant: threaded workers that keep connections alive."""
import runpy
from pathlib import Path

from gunicorn.config import Config

CONF = Path(__file__).resolve().parents[1] / "gunicorn.conf.py"


def test_gunicorn_reads_threaded_keep_alive_workers_from_the_project_conf(monkeypatch):
    monkeypatch.delenv("WEB_THREADS", raising=False)
    settings = {name: value for name, value in runpy.run_path(str(CONF)).items() if not name.startswith("_") and name != "os"}
    config = Config()
    assert set(settings) <= set(config.settings), "a name gunicorn does not know would be ignored"
    for name, value in settings.items():
        config.set(name, value)  # gunicorn's own validation of each value
    assert config.worker_class_str == "gthread"
    assert config.threads == 4 and config.keepalive == 5
