-- Room on conversation_sessions' pages for HOT updates: a turn updates its
-- conversation's row (next_seq; updated_at at most once a minute, see
-- sql/history.sql), and with 10% of each page left free the new version fits
-- on the same page, so no index gets a new entry and the old version is
-- pruned without VACUUM. Only the setting changes: no rewrite, no lock
-- beyond a moment's SHARE UPDATE EXCLUSIVE; pages written from now on keep
-- the room (existing full pages gain it as their rows are updated and pruned).
-- depends: 0004_exact_items

ALTER TABLE conversation_sessions SET (fillfactor = 90);
