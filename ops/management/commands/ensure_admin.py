"""Create an admin user if there is none, and say how to log in."""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a superuser 'admin' if no superuser exists, and print how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("ADMIN_USERNAME", "admin"))

    def handle(self, *args, username: str, **options):
        User = get_user_model()
        admin_url = f"{settings.PUBLIC_BASE_URL}/admin/"
        password_file = settings.VAR_DIR / "admin-password.txt"
        existing = User.objects.filter(is_superuser=True).order_by("pk").first()
        if existing is not None:
            hint = (
                f"its generated password is in {password_file}"
                if password_file.exists()
                else "reset its password with: .venv/bin/python manage.py changepassword "
                + existing.get_username()
            )
            self.stdout.write(f"Admin: {admin_url}  user '{existing.get_username()}' ({hint})")
            return
        password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if not os.environ.get("ADMIN_PASSWORD"):
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created admin user. Log in at {admin_url} as '{username}' "
                f"with password '{password}'"
            )
        )
