"""Who may do what: people and roles, passwords, tokens and API keys, device MQTT credentials,
the tamper-evident audit trail and electronic signatures.

Pure pieces (no I/O, no clock reads unless injected) and thin edges:

- :mod:`security.roles`       the four roles and what each may do (the matrix lives here only)
- :mod:`security.passwords`   argon2id hashing, password policy, generated passwords
- :mod:`security.tokens`      bearer tokens, dashboard sessions and API keys (random, stored hashed)
- :mod:`security.ratelimit`   failed-login limiter (per user name and per client address)
- :mod:`security.audit`       the hash chain: entry material, verification, the actor context
- :mod:`security.signatures`  disposition meanings and the signature record's hash
- :mod:`security.mosquitto`   Mosquitto password and ACL files from the device registry
- :mod:`security.accounts`    the database side: users, tokens, keys, logins (uses db.queries)
- :mod:`security.errors`      the exceptions
"""
