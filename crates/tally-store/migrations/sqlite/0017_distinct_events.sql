-- tally schema v17: the values unique-count metrics count, kept per subject.
--
-- A unique count needs every event's value (with its time and add/remove operation), so rollups
-- cannot hold it. Reading it from `events` meant scanning every event of the metric's code in the
-- period, whoever sent it: billing N customers read N times all customers' events. These rows are
-- written with the rollups, in the same transaction as the events they come from, one per event and
-- unique-count metric, keyed so that one subject's period is one range of the primary key. Migration
-- 17 fills the table from stored events (tally does it in Rust, right after this script).

CREATE TABLE distinct_events (
    org             INTEGER NOT NULL,
    metric          INTEGER NOT NULL,
    subject         TEXT NOT NULL,          -- '' when none, as in rollups
    at              INTEGER NOT NULL,       -- the event's timestamp, microseconds
    seq             INTEGER NOT NULL,       -- events.id
    subscription    TEXT NOT NULL,          -- '' when none
    group_key       TEXT NOT NULL,
    value           TEXT NOT NULL,
    operation       TEXT NOT NULL CHECK (operation IN ('add', 'remove')),
    PRIMARY KEY (org, metric, subject, at, seq)
) WITHOUT ROWID;
