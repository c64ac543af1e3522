"""Create the admin superuser on first run and print its random password once; leave an existing one alone."""
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

PASSWORD_BYTES = 18


class Command(BaseCommand):
    help = "Create a superuser (default: admin) with a random password printed once; an existing user is left as it is."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, **options):
        username = options["username"]
        users = get_user_model()._default_manager
        with transaction.atomic():
            if users.filter(username=username).exists():
                self.stdout.write(
                    f"Admin user {username!r} exists; its password is unchanged "
                    f"(set a new one with: manage.py changepassword {username})."
                )
                return
            password = secrets.token_urlsafe(PASSWORD_BYTES)
            # Only the hash is stored; this output is the one place the password is ever shown.
            users.create_superuser(username=username, email="", password=password)
        self.stdout.write(self.style.SUCCESS(f"Created admin user {username!r} with password: {password}"))
        self.stdout.write("It is shown only this once; change it with: manage.py changepassword " + username)
