import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from madoguchi.accounts import actions
from madoguchi.accounts.models import Role, User, Workspace


class Command(BaseCommand):
    help = "Create a user in a workspace (the workspace is created if it does not exist)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--workspace", required=True)
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--name", default="")
        parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    def handle(self, *args: object, **opts: object) -> None:
        email = str(opts["email"]).strip().lower()
        if User.objects.filter(email=email).exists():
            raise CommandError(f"a user with the email {email} already exists")
        password = None
        if opts["password_stdin"]:
            password = sys.stdin.readline().rstrip("\n")
            if len(password) < 8:
                raise CommandError("the password must have at least 8 characters")
        ws = Workspace.objects.filter(name=opts["workspace"]).first() or actions.do_create_workspace(str(opts["workspace"]))
        user = actions.do_create_user(email, workspace=ws, role=str(opts["role"]), password=password, name=str(opts["name"]))
        self.stdout.write(f"created {user.role} {user.email} in workspace {ws.name}")
