-- The role the internet-facing API works as: only the DML its queries need, on its own tables, owner of nothing.
-- Its login user is a member of this role and is created by the migrate task, which alone signs in as the master
-- user: on RDS without a password and granted rds_iam (IAM database authentication), or from a secret's password. `selfnest_app` is cluster-wide: created
-- once, granted here per table; every later migration that adds a table grants what the API needs on it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'selfnest_app') THEN
        CREATE ROLE selfnest_app NOLOGIN;
    END IF;
END
$$;
-- Nobody but the owner creates objects in this schema (PostgreSQL 15+ default, made explicit for older clusters).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO selfnest_app;
GRANT SELECT, INSERT, UPDATE ON therapist_profiles, sessions, outbox_events TO selfnest_app;
