-- The views and the Merkle tree move to the views file
-- (migrations/sqlite-views): writing them no longer holds the write lock
-- the log's appends wait for. Here they are dropped. Everything dropped
-- is folded again from the log into the views file at the next start,
-- as a rebuild would: the views' checkpoints go with them, and the Merkle
-- tree's maintainer starts again from an empty tree, which `audit verify`
-- still checks against the signed checkpoints kept in this file. The
-- dispatcher keeps its checkpoint here.
-- +goose Up
DROP TABLE view_search_words;
DROP TABLE view_search_trigrams;
DROP TABLE view_search_docs;
DROP TABLE view_search_runs;
DROP TABLE view_history_requests;
DROP TABLE view_history_request_commands;
DROP TABLE view_history_runs;
DROP TABLE view_history_request_hours;
DROP TABLE view_history_run_hours;
DROP TABLE view_transcript_chunks;
DROP TABLE view_transcript_runs;
DROP TABLE view_access_users;
DROP TABLE view_access_handles;
DROP TABLE view_access_groups;
DROP TABLE view_access_members;
DROP TABLE view_access_roles;
DROP TABLE view_access_group_roles;
DROP TABLE view_access_role_permissions;
DROP TABLE view_access_permissions;
DROP TABLE view_access_user_permissions;
DROP TABLE view_approvals;
DROP TABLE view_approval_permissions;
DROP TABLE view_approval_answers;
DROP TABLE view_triggers;
DROP TABLE view_schedules;
DROP TABLE view_audit_events;
DROP TABLE view_deferred_indexes;
DROP TABLE merkle_tree_packs;
DROP TABLE merkle_tree_size;
DELETE FROM checkpoints WHERE name IN ('approvals', 'audit', 'history', 'permissions', 'search', 'sources', 'transcripts');
