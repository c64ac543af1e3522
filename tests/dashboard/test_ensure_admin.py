"""ensure_admin: creates the superuser once and prints its password once; never prints or changes it again."""
import io
import re

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("ensure_admin", *args, stdout=out)
    return out.getvalue()


def test_creates_a_superuser_and_prints_its_password_once():
    first = run()
    password = re.search(r"with password: (\S+)", first).group(1)
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.is_staff and len(password) >= 20
    assert password not in user.password  # stored as a hash only
    assert authenticate(username="admin", password=password) == user

    second = run()
    assert password not in second and "password:" not in second
    assert "exists" in second and "manage.py changepassword admin" in second
    assert authenticate(username="admin", password=password) == get_user_model().objects.get(username="admin")


def test_an_existing_user_of_that_name_is_left_alone(django_user_model):
    django_user_model.objects.create_user(username="ops", password="kept-as-it-was")
    assert "changepassword ops" in run("--username", "ops")
    assert authenticate(username="ops", password="kept-as-it-was") is not None
