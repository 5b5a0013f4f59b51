-- Checkpoints of the rules engine's evaluation of a (shipment, device) pair (issue 15): a round
-- re-judges a pair from the latest checkpoint that still holds rather than from its first
-- reading, so its cost follows the readings since then, not the length of the trip.
-- depends: 0004_rules_delivery
--
-- * A row is what the readings before `at` left for the rules (alerts/conditions/prefix.py):
--   the excursions and episodes that ended before it, the stability budget's counts, the
--   latest readings of each measurement. `state` is JSON text in the `json` type (kept verbatim:
--   floats and times read back bit for bit, alerts/checkpoints.py).
-- * `fingerprint` is what it was computed under: the rules that judge readings, the data-gap
--   limit and the pair's assignments; a checkpoint under another fingerprint is never used.
-- * Written, rewound and pruned by the engine in the transaction of the results it goes with;
--   a round that takes a reading older than a checkpoint deletes that checkpoint first. A
--   derived cache: deleting rows only makes the next rounds judge those pairs in full (not
--   audited, like rule_states).

CREATE TABLE pair_checkpoints (
    shipment_id         bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    device_id           text NOT NULL,
    at                  timestamptz NOT NULL,  -- the data's time: a reading no run straddles
    fingerprint         text NOT NULL,
    state               json NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shipment_id, device_id, at)
);
