-- How to reach a person: the e-mail address and the mobile number (E.164) notifications are sent
-- to when the person is on call (issue 16: on-call rotations name people, not addresses), and
-- that a one-time acknowledgement link or an SMS reply is matched against.
-- depends: 0022_change_log_horizon

ALTER TABLE app_users ADD COLUMN email text
    CHECK (email IS NULL OR email ~ '^[^@\s]{1,64}@[^@\s]{1,255}$');
ALTER TABLE app_users ADD COLUMN phone text
    CHECK (phone IS NULL OR phone ~ '^\+[1-9][0-9]{6,14}$');
CREATE UNIQUE INDEX app_users_phone ON app_users (phone) WHERE phone IS NOT NULL;
