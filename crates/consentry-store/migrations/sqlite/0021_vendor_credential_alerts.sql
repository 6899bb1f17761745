-- Alerts raised about the vendor's own credentials (its app registrations' secrets and certificates): one row
-- per credential and stage ('attention': 30 days or less left; 'expired'), inserted by whichever replica raised
-- it first (INSERT … ON CONFLICT DO NOTHING), so that the webhook and the email go out once across replicas
-- and restarts.
CREATE TABLE vendor_credential_alerts (
    app            TEXT  NOT NULL,   -- app type key, or 'consentry-app'
    cloud          TEXT  NOT NULL,
    credential_id  TEXT  NOT NULL,   -- the credential's keyId, or 'local:<thumbprint>'
    stage          TEXT  NOT NULL,   -- 'attention' or 'expired'
    ends_at        BIGINT,
    raised_at      BIGINT  NOT NULL,
    raised_by      TEXT    NOT NULL,
    PRIMARY KEY (app, cloud, credential_id, stage)
);
