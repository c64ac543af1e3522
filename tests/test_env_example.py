"""`.env.example` lists every variable the configuration reads, as the README promises."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Directories that are not the project's own code.
NOT_SOURCE = {".venv", "tests", "benchmarks", "scripts", "var", "node_modules", ".git"}
# tradelearn.env's readers are the functions named env_*.
ENV_READER_PREFIX = "env_"


def _project_sources():
    for path in ROOT.rglob("*.py"):
        if not NOT_SOURCE.intersection(path.relative_to(ROOT).parts):
            yield path
    yield ROOT / "tests" / "conftest.py"  # the test suite's own services (TEST_REDIS_URL)


def _name_of(call: ast.Call) -> str | None:
    """The variable name a call reads from the environment, or None when it reads none."""
    function = call.func
    if isinstance(function, ast.Name) and function.id.startswith(ENV_READER_PREFIX):
        pass
    elif isinstance(function, ast.Attribute) and function.attr.startswith(ENV_READER_PREFIX):
        pass
    elif isinstance(function, ast.Attribute) and function.attr in ("get", "setdefault", "getenv") and "environ" in ast.unparse(function.value) + function.attr:
        pass
    else:
        return None
    first = call.args[0] if call.args else None
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def variables_read() -> dict[str, str]:
    """Every environment variable the project's code reads, with the file that reads it."""
    found = {}
    for path in _project_sources():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and (name := _name_of(node)):
                found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def variables_listed() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_the_reader_finds_the_settings_variables():
    read = variables_read()
    # One of each kind of read: a typed env_* call, a list, and os.environ in the test settings.
    assert read["LEARNING_PRIOR_STRENGTH"] == "tradelearn/settings/base.py"
    assert read["TRADING_MARKETS"] == "tradelearn/settings/base.py"
    assert read["TEST_DATABASE_NAME"] == "tradelearn/settings/test.py"
    assert read["SECURE_HSTS_SECONDS"] == "tradelearn/settings/production.py"


def test_env_example_lists_every_variable_the_configuration_reads():
    read = variables_read()
    missing = {name: where for name, where in read.items() if name not in variables_listed()}
    assert not missing, f".env.example lacks {', '.join(f'{name} (read in {where})' for name, where in sorted(missing.items()))}"


def test_env_example_lists_nothing_the_configuration_does_not_read():
    unknown = variables_listed() - set(variables_read())
    assert not unknown, f".env.example lists variables nothing reads: {', '.join(sorted(unknown))}"
