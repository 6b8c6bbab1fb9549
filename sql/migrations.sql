-- name: can_take_migration_lock
-- Whether the current role may insert into yoyo's lock table %(lock_table)s
-- (NULL while the table does not exist yet): without that right yoyo would
-- retry for the whole lock timeout instead of failing.
SELECT CASE
    WHEN to_regclass(%(lock_table)s) IS NULL THEN NULL
    ELSE has_table_privilege(%(lock_table)s, 'INSERT')
END;
