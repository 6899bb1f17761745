-- The audit log: every security-relevant action, append-only and hash-chained. Migrations only move
-- forward: never edit an applied file, add a new one.
--
-- Entries are numbered 1, 2, 3, … (seq) and each carries hash = SHA-256(prev_hash || canonical encoding
-- of the entry), computed by consentry-domain's audit module. The store has no UPDATE or DELETE of these
-- rows. audit_head holds the chain's end (last seq and hash) in one row that every append updates first,
-- inside the append's transaction: the row lock serializes appends from every connection and replica,
-- so the chain stays linear. Entries keep their organization's ID as text without a foreign key: an
-- organization's deletion is itself audited and its entries stay.

CREATE TABLE audit_log (
    seq        BIGINT  NOT NULL PRIMARY KEY,
    at         BIGINT  NOT NULL,               -- Unix nanoseconds, UTC
    actor      TEXT    NOT NULL,               -- JSON of the actor
    org_id     TEXT COLLATE "C",                       -- NULL for platform-level events
    action     TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    detail     TEXT    NOT NULL,               -- JSON object, never a secret
    prev_hash  TEXT    NOT NULL,               -- hex
    hash       TEXT    NOT NULL                -- hex
);
CREATE INDEX audit_log_by_org ON audit_log (org_id, seq);

CREATE TABLE audit_head (
    slot  INTEGER  NOT NULL PRIMARY KEY CHECK (slot = 1),
    seq   BIGINT   NOT NULL,
    hash  TEXT     NOT NULL
);
INSERT INTO audit_head (slot, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Entries are never changed or removed through the database either (the hash chain detects it when
-- someone with the rights to disable this trigger does).
CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_append_only
BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
