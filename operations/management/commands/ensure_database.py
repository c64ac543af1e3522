"""Create the configured PostgreSQL database when it does not exist yet, so `make up` starts on a fresh server."""
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections


class Command(BaseCommand):
    help = "Create the database DATABASE_URL names if the server has none of that name (PostgreSQL); SQLite creates its file itself."

    def handle(self, *args, **options):
        connection = connections[DEFAULT_DB_ALIAS]
        name = connection.settings_dict["NAME"]
        try:
            connection.ensure_connection()
            return
        except OperationalError as error:
            problem = " ".join(str(error).split())
            if connection.vendor != "postgresql" or "does not exist" not in problem:
                raise CommandError(f"Cannot open the database {name!r}: {problem[:300]}") from None
        # Connected to the server's maintenance database instead: the same host, user and password.
        try:
            with connection._nodb_cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(name)}")
        except Exception as error:  # psycopg raises several kinds; each means the same here
            raise CommandError(
                f"The database {name!r} does not exist and could not be created ({' '.join(str(error).split())[:200]}); "
                f"create it with: createdb {name}"
            ) from None
        self.stdout.write(f"Created the PostgreSQL database {name!r}.")
