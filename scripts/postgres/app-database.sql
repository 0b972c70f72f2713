-- Creates the application database owned by the application role, once, on a freshly initialised primary
-- (what the official image does with POSTGRES_DB). Run by entrypoint.sh through psql on a private socket.
\set ON_ERROR_STOP on
\getenv app_db POSTGRES_DB
\getenv app_user POSTGRES_USER
SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'app_db')
\gexec
