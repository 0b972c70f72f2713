-- Creates the replication role if it is missing and (re)applies its attributes and password, so it is
-- idempotent: run on every start of the primary, it also covers data directories initialised by the
-- official image and a rotated REPLICATION_PASSWORD. The password comes from the environment through
-- \getenv, never from a command line; password_encryption (scram-sha-256) hashes it on the server.
\set ON_ERROR_STOP on
-- Keep the password out of the server log if a statement fails.
SET log_min_error_statement = panic;
SET log_statement = 'none';
\getenv repl_user REPLICATION_USER
\getenv repl_password REPLICATION_PASSWORD
SELECT format('CREATE ROLE %I', :'repl_user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'repl_user')
\gexec
SET password_encryption = 'scram-sha-256';
SELECT format('ALTER ROLE %I WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L',
              :'repl_user', :'repl_password')
\gexec
