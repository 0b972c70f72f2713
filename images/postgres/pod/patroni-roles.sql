-- The roles Patroni connects as, on a data directory Patroni did not create (the previous entrypoint's, or the
-- official image's, whose only superuser is POSTGRES_USER): the superuser `postgres` and the replication
-- role, created if missing, with the passwords of the Secret. Idempotent. Run by prepare-primary.sh.
\set ON_ERROR_STOP on
SET log_min_error_statement = panic;
SET log_statement = 'none';
\getenv superuser_password SUPERUSER_PASSWORD
\getenv repl_user REPLICATION_USER
\getenv repl_password REPLICATION_PASSWORD
SELECT 'CREATE ROLE postgres' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postgres')
\gexec
SELECT format('CREATE ROLE %I', :'repl_user') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'repl_user')
\gexec
SET password_encryption = 'scram-sha-256';
SELECT format('ALTER ROLE postgres WITH SUPERUSER LOGIN PASSWORD %L', :'superuser_password')
\gexec
SELECT format('ALTER ROLE %I WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L',
              :'repl_user', :'repl_password')
\gexec
