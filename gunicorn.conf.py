"""gunicorn's settings for `gunicorn tradelearn.wsgi` run from the project folder (the Procfile, the benchmarks).

Threads, so a worker keeps its clients' connections open between requests (HTTP keep-alive):
the default sync worker closes each one after its response, and accepting, parsing and closing a
connection per request cost more CPU than most API calls themselves. The number of workers is still
given on the command line (`--workers`, WEB_CONCURRENCY).
"""
import os

worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
keepalive = 5  # seconds an idle keep-alive connection is held open
