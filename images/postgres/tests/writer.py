#!/usr/bin/python3
"""Test and benchmark tool (Debian's python3-psycopg2): writes rows and reports every acknowledged id, or samples
which members accept writes. One line per event on stdout, flushed at once, so a test reads them as they happen.

    writer.py write DSN INTERVAL_MS     "ack <id> <epoch ms>" after each committed insert, "err <epoch ms> <message>"
                                        on a failure (then it reconnects); SIGTERM ends it with "done <acks> <errors>"
    writer.py sample INTERVAL_MS DSN... "sample <epoch ms> <indexes of the DSNs not in recovery, comma-separated>"

DSNs are libpq connection strings; for `write` a multi-host one with target_session_attrs=read-write follows the
leader as a failover-aware client does.
"""
import signal
import sys
import time

import psycopg2

stop = False


def on_term(*_):
    global stop
    stop = True


def now_ms():
    return int(time.time() * 1000)


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def write(dsn, interval):
    acks = errors = 0
    conn = None
    while not stop:
        started = time.time()
        try:
            if conn is None:
                conn = psycopg2.connect(dsn)
                with conn, conn.cursor() as cur:
                    cur.execute("CREATE TABLE IF NOT EXISTS writes (id bigserial PRIMARY KEY, payload text NOT NULL,"
                                " written_at timestamptz NOT NULL DEFAULT clock_timestamp())")
            with conn, conn.cursor() as cur:
                cur.execute("INSERT INTO writes (payload) VALUES (md5(random()::text)) RETURNING id")
                row_id = cur.fetchone()[0]
            acks += 1
            out("ack %d %d" % (row_id, now_ms()))
        except psycopg2.Error as e:
            errors += 1
            out("err %d %s" % (now_ms(), str(e).strip().replace("\n", " ")[:200]))
            try:
                if conn is not None:
                    conn.close()
            except psycopg2.Error:
                pass
            conn = None
            time.sleep(0.1)
        delay = interval / 1000.0 - (time.time() - started)
        if delay > 0:
            time.sleep(delay)
    out("done %d %d" % (acks, errors))


def sample(interval, dsns):
    conns = [None] * len(dsns)
    while not stop:
        writable = []
        for i, dsn in enumerate(dsns):
            try:
                if conns[i] is None:
                    conns[i] = psycopg2.connect(dsn, connect_timeout=1)
                    conns[i].autocommit = True
                with conns[i].cursor() as cur:
                    cur.execute("SET statement_timeout = 1000; SELECT NOT pg_is_in_recovery()")
                    if cur.fetchone()[0]:
                        writable.append(str(i))
            except psycopg2.Error:
                try:
                    if conns[i] is not None:
                        conns[i].close()
                except psycopg2.Error:
                    pass
                conns[i] = None
        out("sample %d %s" % (now_ms(), ",".join(writable)))
        time.sleep(interval / 1000.0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if len(sys.argv) >= 4 and sys.argv[1] == "write":
        write(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "sample":
        sample(int(sys.argv[2]), sys.argv[3:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
