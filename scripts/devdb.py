"""Odoo's addons path and PostgreSQL databases, for scripts/test, scripts/demo and the
end-to-end tests. libpq's PGHOST/PGPORT/PGUSER say which server and role.

    python3 scripts/devdb.py addons-path
    python3 scripts/devdb.py check | exists NAME | drop NAME | copy TEMPLATE NAME | ensure-role NAME
"""

import os
import pathlib
import sys

import psycopg2

ROOT = pathlib.Path(__file__).resolve().parent.parent


def odoo_addons_path():
    """Odoo's own addons (from ODOO_SRC or beside the importable odoo package) plus this repository."""
    import odoo  # noqa: PLC0415 -- the prerequisite; scripts/lib.sh says so clearly when it is missing

    package = pathlib.Path(odoo.__file__).resolve().parent
    candidates = [pathlib.Path(os.environ["ODOO_SRC"]) / "addons"] if os.environ.get("ODOO_SRC") else []
    candidates += [package.parent / "addons", package / "addons"]
    paths = [str(path) for path in candidates if path.is_dir()]
    return ",".join(dict.fromkeys([*paths, str(ROOT)]))


def pg_connect(dbname="postgres", user=None):
    connection = psycopg2.connect(
        dbname=dbname,
        host=os.environ.get("PGHOST"),
        port=os.environ.get("PGPORT"),
        user=user or os.environ.get("PGUSER"),
    )
    connection.autocommit = True
    return connection


def _run(statement, params=(), user=None):
    connection = pg_connect(user=user)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else None
    finally:
        connection.close()


def database_exists(name):
    return bool(_run("SELECT 1 FROM pg_database WHERE datname = %s", [name]))


def drop_database(name):
    _run(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [name]
    )
    _run(f'DROP DATABASE IF EXISTS "{name}"')


def copy_database(template, name):
    _run(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def ensure_role(name):
    """A superuser role Odoo accepts (it refuses 'postgres'), created through the 'postgres' role."""
    if not _run("SELECT 1 FROM pg_roles WHERE rolname = %s", [name], user="postgres"):
        _run(f'CREATE ROLE "{name}" LOGIN SUPERUSER', user="postgres")


def main(command, *args):
    if command == "addons-path":
        print(odoo_addons_path())  # pylint: disable=print-used
    elif command == "check":
        pg_connect().close()
    elif command == "exists":
        return 0 if database_exists(*args) else 1
    elif command == "drop":
        drop_database(*args)
    elif command == "copy":
        copy_database(*args)
    elif command == "ensure-role":
        ensure_role(*args)
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
