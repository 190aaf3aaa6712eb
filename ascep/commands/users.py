"""`ascep users create|list|password|role|remove` and `ascep users token create|list|revoke`: the dashboard's
accounts and their API tokens, in the dashboard's database (dashboard.database_url, else SQLite in the state
directory), which is migrated first, so this works before any dashboard has run. Django's own `createsuperuser`
makes an editor too.
"""
from __future__ import annotations

import getpass
import json
import sys

from dashboard.accounts.roles import ROLES


def add_arguments(parser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="add a user with a role (asks for the password)")
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=ROLES, help="viewer reads; editor also writes rules")
    add_password_options(create)
    create.set_defaults(func=run_create)

    password = actions.add_parser("password", help="change a user's password (its browser sessions end; its "
                                                   "tokens stay)")
    password.add_argument("name")
    add_password_options(password)
    password.set_defaults(func=run_password)

    role = actions.add_parser("role", help="change a user's role, from its next request on")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(func=run_role)

    ls = actions.add_parser("list", help="the users, their roles and last logins")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=run_list)

    remove = actions.add_parser("remove", help="delete a user, its sessions and its tokens")
    remove.add_argument("name")
    remove.set_defaults(func=run_remove)

    token = actions.add_parser("token", help="a user's API tokens, for scripts and the CLI").add_subparsers(
        dest="token_action", metavar="ACTION", required=True)
    token_create = token.add_parser("create", help="make a token and print it, once")
    token_create.add_argument("name")
    token_create.add_argument("--label", default="cli", help="what it is for (default cli)")
    token_create.set_defaults(func=run_token_create)
    token_list = token.add_parser("list", help="a user's tokens (never their text)")
    token_list.add_argument("name")
    token_list.add_argument("--json", action="store_true", help="one JSON object per line")
    token_list.set_defaults(func=run_token_list)
    token_revoke = token.add_parser("revoke", help="refuse a token from now on")
    token_revoke.add_argument("name")
    token_revoke.add_argument("id", type=int, help="the token's id (ascep users token list NAME)")
    token_revoke.set_defaults(func=run_token_revoke)


def add_password_options(parser) -> None:
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of standard input instead of asking")
    given.add_argument("--random-password", action="store_true",
                       help="make a random password and print it, once (where nothing can be typed: a one-off task)")


def _accounts():
    """dashboard.accounts.users, with the database ready; Django is imported only here (fast --help)."""
    from dashboard.accounts.database import open_database

    open_database()
    from dashboard.accounts import users

    return users


def _password(args, users) -> str:
    if args.random_password:
        return users.random_password()
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ValueError("no terminal to ask for the password on: pass --password-stdin and write it to stdin")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def _when(moment) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never"


def run_create(args) -> int:
    users = _accounts()
    password = _password(args, users)
    users.create_user(args.name, args.role, password)
    print(f"user {args.name} created, role {args.role}" + (f", password {password} (shown this once)"
                                                            if args.random_password else ""))
    return 0


def run_password(args) -> int:
    users = _accounts()
    password = _password(args, users)
    users.set_password(args.name, password)
    print(f"password of {args.name} changed" + (f" to {password} (shown this once)" if args.random_password else "")
          + "; its browser sessions have ended")
    return 0


def run_role(args) -> int:
    _accounts().set_role(args.name, args.role)
    print(f"user {args.name} is now {args.role}")
    return 0


def run_list(args) -> int:
    accounts = _accounts().list_users()
    for account in accounts:
        if args.json:
            print(json.dumps({"name": account.name, "role": account.role, "last_login": _when(account.last_login),
                              "active_tokens": account.active_tokens}))
        else:
            print(f"{account.name:<24} {account.role:<7} last login {_when(account.last_login):<25} "
                  f"{account.active_tokens} active token(s)")
    if not accounts and not args.json:
        print("no users: ascep users create NAME --role editor", file=sys.stderr)
    return 0


def run_remove(args) -> int:
    _accounts().remove_user(args.name)
    print(f"user {args.name} removed, with its tokens")
    return 0


def run_token_create(args) -> int:
    token_id, text = _accounts().create_token(args.name, args.label)
    print(f"token {token_id} ({args.label}) for {args.name}; it is shown this once, send it as "
          f"Authorization: Bearer <token>:", file=sys.stderr)
    print(text)
    return 0


def run_token_list(args) -> int:
    for token in _accounts().list_tokens(args.name):
        state = f"revoked {_when(token.revoked_at)}" if token.revoked_at else "active"
        if args.json:
            print(json.dumps({"id": token.id, "label": token.label, "created_at": _when(token.created_at),
                              "last_used_at": _when(token.last_used_at),
                              "revoked_at": _when(token.revoked_at) if token.revoked_at else None}))
        else:
            print(f"{token.id:>5}  {token.label:<20} created {_when(token.created_at)}  "
                  f"last used {_when(token.last_used_at):<25}  {state}")
    return 0


def run_token_revoke(args) -> int:
    _accounts().revoke_token(args.name, args.id)
    print(f"token {args.id} of {args.name} revoked")
    return 0
