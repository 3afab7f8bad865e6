-- Run once by the postgres image when it creates its database (docker-compose.yml): the login role the
-- FaceLedger replicas connect as. Its rights come from `faceledger_service`, which migration 008 grants
-- (created here first, so the membership can be given now; the migration finds it and grants to it).
-- Change the password for anything but a trial: set it here and in FACELEDGER_DATABASE_URL.
CREATE ROLE faceledger_service NOLOGIN;
CREATE ROLE faceledger_app LOGIN PASSWORD 'faceledger_app' IN ROLE faceledger_service;
