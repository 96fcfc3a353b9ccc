// Schema migrations, versioned by PRAGMA user_version. Each runs with its
// user_version bump in one BEGIN IMMEDIATE transaction, so a database is
// always at exactly one known version.
//
// Version 1 is schema.sql verbatim (comments included: SQLite keeps the text
// of each CREATE statement in sqlite_master, and StoreTests compares a fresh
// database's sqlite_master with schema.sql's). Never edit a shipped
// migration; add the next one.

struct Migration {
    var version: Int
    var sql: String
}

let migrations: [Migration] = [
    Migration(version: 1, sql: schemaVersion1),
    Migration(version: 2, sql: schemaVersion2),
    Migration(version: 3, sql: schemaVersion3),
    Migration(version: 4, sql: schemaVersion4),
    Migration(version: 5, sql: schemaVersionProbeOptions),
    Migration(version: 6, sql: schemaVersionTargetSpans),
    Migration(version: 7, sql: schemaVersionPaths),
    Migration(version: 8, sql: schemaVersionPathBlocks),
    Migration(version: 9, sql: schemaVersionPathSummaries),
]

/// The highest schema version this build knows.
let latestSchemaVersion = migrations.last!.version

let schemaVersion1 = #"""
-- pingem database schema (user_version 1).
--
-- This file is the documented schema and the one source of truth for the
-- tables: a test proves that a database made by `pingem record` has exactly
-- these tables, columns and indexes. Store's migrations build it.
--
-- Conventions
--   * Times ("..._ns") are integer nanoseconds since the Unix epoch, UTC, read
--     from the wall clock (CLOCK_REALTIME) at the moment named.
--   * Durations ("rtt_ns", "interval_ns", "offset_ns") are integer nanoseconds.
--     Round-trip times are measured on the monotonic clock, so a step of the
--     wall clock (NTP) never makes them negative or huge; a reply's wall-clock
--     receive time is sent_ns + rtt_ns.
--   * Nothing is averaged at record time: every probe, every echo reply
--     (duplicates and late ones too) and every ICMP error is a row. Whether a
--     probe was lost is decided by `pingem report`, with its --timeout.
--   * The big tables are WITHOUT ROWID and keyed by time first, so the
--     recorder always appends at the end of the b-tree (full pages, small
--     files) and reports read a time range in one sequential scan.

-- A host probed by pingem, named as the user named it.
CREATE TABLE target (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,   -- what reports show: the label ("home-router"), else the host as given
    host TEXT NOT NULL           -- the host name or address as given to the latest recorder
);

-- One run of `pingem record`: from start to clean stop, or to its last sign
-- of life after a crash. Time outside every session is "no data", never loss.
CREATE TABLE session (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL,  -- random 64-bit id carried in every probe's payload (two's complement)
    pid           INTEGER NOT NULL,  -- process id of the recorder
    hostname      TEXT NOT NULL,     -- machine the recorder ran on
    version       TEXT NOT NULL,     -- pingem version that recorded
    socket_kind   TEXT NOT NULL,     -- 'datagram' (unprivileged ICMP socket) or 'raw'
    interval_ns   INTEGER NOT NULL,  -- time between two probes of one target
    payload_bytes INTEGER NOT NULL,  -- ICMP echo payload size (--size)
    started_ns    INTEGER NOT NULL,  -- when the recorder started probing
    heartbeat_ns  INTEGER NOT NULL,  -- when its latest batch committed: its last sign of life
    stopped_ns    INTEGER,           -- clean stop (SIGINT/SIGTERM); NULL while running or after a crash
    foreign_packets INTEGER NOT NULL DEFAULT 0  -- ICMP packets received that matched no probe of this run (counted, not stored)
);

-- Which targets a session probed, and where in the interval their slots lie:
-- probe k of a target is due at start + k * interval + offset.
CREATE TABLE session_target (
    session_id INTEGER NOT NULL REFERENCES session(id),
    target_id  INTEGER NOT NULL REFERENCES target(id),
    offset_ns  INTEGER NOT NULL,     -- the target's fixed offset in the interval, 0 <= offset < interval
    PRIMARY KEY (session_id, target_id)
) WITHOUT ROWID;

-- The address a target's probes went to, from since_ns on (until the next row
-- of the same target). A row is written when a recorder starts and whenever a
-- re-resolved name gives a new address.
CREATE TABLE address (
    target_id INTEGER NOT NULL REFERENCES target(id),
    since_ns  INTEGER NOT NULL,      -- first probe to this address was sent at or after this time
    address   TEXT NOT NULL,         -- numeric IPv4 or IPv6 address
    PRIMARY KEY (target_id, since_ns)
) WITHOUT ROWID;

-- Stretches inside a session when no probe was sent on purpose: the process
-- was stopped or the machine suspended (missed slots are skipped, not sent
-- in a burst), or unwritten probes had to be dropped. Reports count them as
-- "no data", like time outside any session.
CREATE TABLE gap (
    session_id INTEGER NOT NULL REFERENCES session(id),
    start_ns   INTEGER NOT NULL,     -- slot time of the first missed probe
    end_ns     INTEGER NOT NULL,     -- slot time of the next probe that was sent
    reason     TEXT NOT NULL,        -- 'stalled' or 'dropped'
    PRIMARY KEY (session_id, start_ns)
) WITHOUT ROWID;

-- Every echo request, one row: also those whose send failed (the network was
-- down) or whose name did not resolve. Those count as lost in reports.
CREATE TABLE probe (
    sent_ns    INTEGER NOT NULL,     -- wall clock at the send call
    target_id  INTEGER NOT NULL REFERENCES target(id),
    rtt_ns     INTEGER,              -- first echo reply received before this row was written, else NULL (see reply)
    send_error INTEGER,              -- NULL: sent; > 0: errno of the failed send (101 ENETUNREACH, 113 EHOSTUNREACH, ...); -1: the name did not resolve
    PRIMARY KEY (sent_ns, target_id)
) WITHOUT ROWID;

-- Echo replies not stored in probe.rtt_ns: duplicates (a second reply for the
-- same probe) and replies that arrived after their probe's row was written
-- (late, even minutes late). The first reply of a probe is the smallest
-- rtt_ns among probe.rtt_ns and its rows here; every other one is a duplicate.
CREATE TABLE reply (
    sent_ns   INTEGER NOT NULL,      -- the probe's sent_ns
    target_id INTEGER NOT NULL REFERENCES target(id),
    rtt_ns    INTEGER NOT NULL       -- receive time (kernel timestamp) - sent_ns, on the monotonic clock
);
CREATE INDEX reply_by_probe ON reply(sent_ns, target_id);

-- ICMP errors quoting one of our probes (destination unreachable, time
-- exceeded, ...), with the router that sent them.
CREATE TABLE icmp_error (
    sent_ns   INTEGER NOT NULL,      -- the probe's sent_ns
    target_id INTEGER NOT NULL REFERENCES target(id),
    rtt_ns    INTEGER NOT NULL,      -- receive time - sent_ns, on the monotonic clock
    family    INTEGER NOT NULL,      -- 4: ICMP (RFC 792), 6: ICMPv6 (RFC 4443); the type numbers differ
    type      INTEGER NOT NULL,      -- ICMP type as on the wire (v4: 3 unreachable, 11 time exceeded, ...)
    code      INTEGER NOT NULL,      -- ICMP code as on the wire
    source    TEXT NOT NULL          -- numeric address of the router that reported it
);
CREATE INDEX icmp_error_by_probe ON icmp_error(sent_ns, target_id);

-- Plain rows for people with the sqlite3 shell: one row per probe with its
-- first reply and times in UTC.
CREATE VIEW probe_view AS
SELECT target.name AS target,
       strftime('%Y-%m-%dT%H:%M:%f', probe.sent_ns / 1000000000.0, 'unixepoch') || 'Z' AS sent_utc,
       probe.sent_ns AS sent_ns,
       probe.sent_ns + first.rtt_ns AS received_ns,
       first.rtt_ns / 1000000.0 AS rtt_ms,
       probe.send_error AS send_error
FROM probe
JOIN target ON target.id = probe.target_id
LEFT JOIN (
    SELECT sent_ns, target_id, min(rtt_ns) AS rtt_ns FROM (
        SELECT sent_ns, target_id, rtt_ns FROM probe WHERE rtt_ns IS NOT NULL
        UNION ALL
        SELECT sent_ns, target_id, rtt_ns FROM reply
    ) GROUP BY sent_ns, target_id
) AS first ON first.sent_ns = probe.sent_ns AND first.target_id = probe.target_id;
"""#

/// Version 2: compacted probe blocks (Database+Blocks, BlockCodec). Nothing
/// existing changes: old rows stay plain rows until the recorder compacts
/// their hours.
private let schemaVersion2 = #"""
-- Probes of one target in one UTC hour, compacted losslessly into one row
-- (about 6 bytes per probe instead of 20 to 30): every sent_ns, rtt_ns and
-- send_error exact to the nanosecond. The recorder moves a target-hour here
-- once the hour ended more than 30 minutes ago (no late reply can still
-- change its first reply), in one transaction: its probe rows are deleted,
-- and each probe's first reply (the smallest of probe.rtt_ns and its reply
-- rows) goes into the block, its reply row deleted, so `reply` keeps only
-- the replies that are not a probe's first. A probe is in `probe` or in a
-- block, never both. `pingem dump` gives plain rows of both back.
-- Keyed time first, like the other big tables: reports read every target
-- of a window, and retention deletes from the oldest end.
CREATE TABLE block (
    start_ns      INTEGER NOT NULL,  -- the hour: a multiple of 3600 s since the epoch (UTC); probes sent in [start_ns, start_ns + 1 h)
    target_id     INTEGER NOT NULL REFERENCES target(id),
    count         INTEGER NOT NULL,  -- probes in the block, at least 1
    replied       INTEGER NOT NULL,  -- of those, probes with a first reply (their rtt_ns is not NULL)
    first_sent_ns INTEGER NOT NULL,  -- sent_ns of its first probe
    last_sent_ns  INTEGER NOT NULL,  -- sent_ns of its last probe
    data          BLOB NOT NULL,     -- the probes (sent_ns, rtt_ns, send_error), Sources/Store/BlockCodec.swift
    PRIMARY KEY (start_ns, target_id)
) WITHOUT ROWID;
"""#

// The summary table (issue 5, "Scale"): reports over months read hours, not
// probes. Its CREATE text is also in schema.sql, byte for byte.
private let schemaVersion3 = #"""
-- One target's probes of one complete, aligned UTC hour, summarized for
-- reports over long windows (Sources/Store/HourSummary.swift): exact counts,
-- RTT sum, min, max, spread and jitter parts, an RTT histogram (1.5 % wide
-- log buckets: percentiles within 1 %), and the lost runs outages need. The
-- recorder writes them for hours that ended more than 30 minutes ago; prune
-- keeps them when it deletes raw probes. A report uses a summary only where it
-- gives exactly what the raw probes would (else it reads the probes), and
-- says when its percentiles come from histograms.
CREATE TABLE summary (
    target_id INTEGER NOT NULL REFERENCES target(id),
    hour_ns   INTEGER NOT NULL,      -- start of the hour, a multiple of 3600 s since the Unix epoch
    sent      INTEGER NOT NULL,      -- probes of the target sent in the hour (also inside data)
    data      BLOB NOT NULL,         -- the summary, compact encoding of HourSummary (varints, version byte first)
    PRIMARY KEY (target_id, hour_ns)
) WITHOUT ROWID;
"""#

/// Version 4: compaction in short transactions (Database+Compaction). Also
/// what keeps an older pingem, which would read an hour being compacted
/// twice and the newer summary encodings as damaged, from opening the file.
private let schemaVersion4 = #"""
-- Hours being compacted: their blocks are written, and their probe rows are
-- being deleted chunk by chunk, one short transaction each, so the
-- recorder's writer never waits long for its lock. Until the hour's row
-- here is gone, a probe row of the hour whose (sent_ns, target_id) is also
-- in its target's block is a copy of the block's probe: readers take the
-- block's and skip the row (a new probe is never stored under a key a
-- block holds).
CREATE TABLE compacting (
    start_ns INTEGER PRIMARY KEY     -- the hour, as block.start_ns
);
"""#

// Version 5: how each target was probed in a session (issue 12): --source, --interface,
// --tos, globally or per target. NULL: not set, as in every older session.
// ALTER TABLE appends the columns to session_target's CREATE text in
// sqlite_master, and schema.sql runs the same statements, so the schema
// test still compares the two byte for byte.
private let schemaVersionProbeOptions = #"""
ALTER TABLE session_target ADD COLUMN source TEXT;        -- local address the probes were sent from (bind), numeric; NULL: chosen by the kernel
ALTER TABLE session_target ADD COLUMN interface TEXT;     -- interface they were bound to (SO_BINDTODEVICE); NULL: by the routes
ALTER TABLE session_target ADD COLUMN tos INTEGER;        -- TOS byte (IPv4) / traffic class (IPv6) they carried, 0-255; NULL: not set (0)
"""#

// Version 6: targets that come and go within a session (issue 12, a targets file and
// SIGHUP). A table of its own, not columns of session_target: a target
// removed and added again in one session needs a second stretch, and
// session_target's key allows one row per session and target. Its CREATE
// text is also in schema.sql, byte for byte.
private let schemaVersionTargetSpans = #"""
-- When a session probed a target, for targets added or removed while it ran
-- (`pingem record --targets-file`, reloaded on SIGHUP). A session_target
-- with no row here was probed for its whole session; one with rows, only
-- inside them: the rest of the session is "no data" for that target, never
-- loss (Sources/Store/Judge/Sessions.swift). A target removed and added
-- again in one session has one row per stretch, and keeps its offset.
CREATE TABLE session_target_span (
    session_id INTEGER NOT NULL REFERENCES session(id),
    target_id  INTEGER NOT NULL REFERENCES target(id),
    start_ns   INTEGER NOT NULL,     -- the session's start, or the first slot of a target added while it ran
    end_ns     INTEGER,              -- when the target was removed; NULL: probed until the session's end
    PRIMARY KEY (session_id, target_id, start_ns)
) WITHOUT ROWID;
"""#

// Version 7: each target's path, round by round (issue 13). Tables of their
// own: a path probe is not one of the target's probes (it must never change
// their counts), and a round's rows are keyed by the round. Its CREATE text
// is also in schema.sql, byte for byte.
private let schemaVersionPaths = #"""
-- Path rounds (user_version 7; Sources/Recorder/PathRounds.swift): every
-- TTL-limited echo request of a round towards a target, one row, stored like
-- a probe. A round is one probe per hop 1..distance-1 (the router at hop h
-- answers "time exceeded") and one to the target itself, sent within a few
-- milliseconds; rounds never touch the target's own probes or their counts.
CREATE TABLE path_probe (
    round_ns   INTEGER NOT NULL,     -- sent_ns of the round's first probe: names the round
    target_id  INTEGER NOT NULL REFERENCES target(id),
    ttl        INTEGER NOT NULL,     -- the TTL / hop limit it was sent with, 1-30; the target's probe carries the round's distance
    to_target  INTEGER NOT NULL,     -- 1: the round's probe to the target itself (its last), 0: a hop's
    sent_ns    INTEGER NOT NULL,     -- wall clock at the send call
    send_error INTEGER,              -- NULL: sent; > 0: errno of the failed send (the probe never left)
    rtt_ns     INTEGER,              -- the answer's receive time (kernel timestamp) - sent_ns, on the monotonic clock; NULL: no answer
    source     TEXT,                 -- numeric address that answered (with %zone if link-local); NULL: no answer
    type       INTEGER,              -- the answer's ICMP type as on the wire (v4: 11 time exceeded, 0 echo reply, 3 unreachable; v6: 3, 129, 1)
    code       INTEGER,              -- the answer's ICMP code as on the wire
    PRIMARY KEY (round_ns, target_id, ttl)
) WITHOUT ROWID;

-- The address each hop of a target's path answered from, from since_ns on
-- (until the next row of the same target and TTL), as `address` is for
-- targets: a row when a hop first answers and whenever it answers from a
-- new address for several rounds in a row (a route change).
CREATE TABLE path_hop (
    target_id INTEGER NOT NULL REFERENCES target(id),
    ttl       INTEGER NOT NULL,      -- the hop, 1-30
    since_ns  INTEGER NOT NULL,      -- round_ns of the first round it answered from this address
    address   TEXT NOT NULL,         -- numeric IPv4 or IPv6 address
    PRIMARY KEY (target_id, ttl, since_ns)
) WITHOUT ROWID;
"""#

// Version 8: path rounds compacted into hour blocks (issue 13, "storage stays
// lean"): a table of their own, keyed like `block`, because a path probe has
// fields a probe has not (ttl, source, type, code). Its CREATE text is also in
// schema.sql, byte for byte, after `block`.
private let schemaVersionPathBlocks = #"""
-- Path probes of one target whose rounds began in one UTC hour, compacted
-- losslessly into one row (user_version 8; Sources/Store/PathBlockCodec.swift),
-- about 5 bytes per path probe instead of about 51 as a path_probe row:
-- every column of path_probe comes back exactly. The recorder moves a
-- target-hour here on the probe blocks' cadence (once the hour ended more
-- than 30 minutes ago), its block written and its rows deleted in one
-- transaction, so a path probe is in `path_probe` or in a path block, never
-- both. Rows written later into a compacted hour stay rows until the next
-- compaction of that hour; a row under a key (round_ns, target_id, ttl) a
-- block holds is passed over, as the recorder's INSERT OR IGNORE would.
CREATE TABLE path_block (
    start_ns       INTEGER NOT NULL, -- the hour: a multiple of 3600 s since the epoch (UTC); rounds with round_ns in [start_ns, start_ns + 1 h)
    target_id      INTEGER NOT NULL REFERENCES target(id),
    count          INTEGER NOT NULL, -- path probes in the block, at least 1
    first_round_ns INTEGER NOT NULL, -- round_ns of its first probe
    last_round_ns  INTEGER NOT NULL, -- round_ns of its last probe
    data           BLOB NOT NULL,    -- the path probes (every path_probe column but target_id), Sources/Store/PathBlockCodec.swift
    PRIMARY KEY (start_ns, target_id)
) WITHOUT ROWID;
"""#

// Version 9: each target's path rounds per hour, tallied (issue 13), so a
// report of a year, and serve's first /metrics, read hours instead of path
// probes. A table of its own beside `summary`: its rows are written with
// the hour's summaries, and an hour summarized by an older build has none.
// Its CREATE text is also in schema.sql, byte for byte.
private let schemaVersionPathSummaries = #"""
-- One target's path rounds of one UTC hour (user_version 9;
-- Sources/Store/PathSummary.swift), as the path judge tallies them: per hop
-- sent, answered, forward lost, an RTT accumulator and histogram, the
-- answering addresses with their counts; the target's distances; the counts
-- `where` needs; and the rounds that lost the target, reduced to which hops
-- answered. Written with the hour's `summary` rows, in the same transaction,
-- for each target with a summary or a round in the hour; like `summary`,
-- kept when prune deletes the raw path probes. A report uses one only where
-- it judges exactly as the raw rounds would (else it reads the rounds).
-- A rowid table, unlike its neighbours: a row is about 1.2 KB (mostly the
-- hops' histograms), more than a WITHOUT ROWID page keeps in place, which
-- spilled every row to overflow pages (4 times its bytes on disk).
CREATE TABLE path_summary (
    target_id INTEGER NOT NULL REFERENCES target(id),
    hour_ns   INTEGER NOT NULL,      -- start of the hour, a multiple of 3600 s since the Unix epoch
    rounds    INTEGER NOT NULL,      -- path rounds of the target whose round_ns lies in the hour (also inside data)
    data      BLOB NOT NULL,         -- the tally, compact encoding of PathSummary (varints, version byte first)
    PRIMARY KEY (target_id, hour_ns)
);
"""#
