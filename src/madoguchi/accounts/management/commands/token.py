from django.core.management.base import BaseCommand, CommandError, CommandParser

from madoguchi.accounts import actions
from madoguchi.accounts.models import User


class Command(BaseCommand):
    help = "Manage API tokens: `token create EMAIL [--name NAME]` prints a new token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("verb", choices=["create"])
        parser.add_argument("email")
        parser.add_argument("--name", default="cli")

    def handle(self, *args: object, **opts: object) -> None:
        user = User.objects.filter(email=str(opts["email"]).lower()).first()
        if user is None:
            raise CommandError(f"no user with the email {opts['email']}")
        _token, raw = actions.do_create_token(user, str(opts["name"]))
        self.stdout.write(raw)
