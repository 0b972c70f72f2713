-- The application role and its database, created once by Patroni's post_bootstrap (post-bootstrap.sh) on a
-- new cluster. The role is not a superuser: it owns its database and nothing else. Values come from the
-- environment through \getenv, never from a command line.
\set ON_ERROR_STOP on
SET log_min_error_statement = panic;
SET log_statement = 'none';
\getenv app_user APP_USER
\getenv app_password APP_PASSWORD
\getenv app_db APP_DATABASE
SELECT format('CREATE ROLE %I', :'app_user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user')
\gexec
SET password_encryption = 'scram-sha-256';
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'app_user', :'app_password')
\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'app_db')
\gexec
