-- approvals: one row per request that asked for approval, one per answer
-- judged, and the permissions its approvers must hold (for "the approvals
-- I may answer").
-- +goose Up
CREATE TABLE view_approvals (
    request_id   TEXT    PRIMARY KEY,
    position     INTEGER NOT NULL, -- of ApprovalRequested
    requester_id TEXT    NOT NULL,
    requester    TEXT    NOT NULL,
    text         TEXT    NOT NULL, -- what runs once approved
    needs        TEXT    NOT NULL, -- "2 approvals from deploy:approver"
    approvers    TEXT    NOT NULL, -- who could approve when asked, comma-separated
    status       TEXT    NOT NULL, -- pending, approved, rejected, expired
    approved_by  TEXT    NOT NULL, -- whose approvals counted, comma-separated, in order
    rejected_by  TEXT    NOT NULL,
    reason       TEXT    NOT NULL, -- the rejection's
    requested_at INTEGER,
    expires_at   INTEGER,
    decided_at   INTEGER
) STRICT;
CREATE INDEX view_approvals_position ON view_approvals (position);
CREATE INDEX view_approvals_status ON view_approvals (status, position);
CREATE INDEX view_approvals_requester ON view_approvals (requester, position);

CREATE TABLE view_approval_permissions (
    request_id TEXT    NOT NULL,
    permission TEXT    NOT NULL,
    needed     INTEGER NOT NULL,
    position   INTEGER NOT NULL, -- the request's
    PRIMARY KEY (request_id, permission)
) STRICT;
CREATE INDEX view_approval_permissions_permission ON view_approval_permissions (permission, position);

CREATE TABLE view_approval_answers (
    request_id TEXT    NOT NULL,
    position   INTEGER NOT NULL, -- of the judgement
    username   TEXT    NOT NULL,
    verdict    TEXT    NOT NULL, -- approve or reject
    outcome    TEXT    NOT NULL, -- counted, refused or rejected
    reason     TEXT    NOT NULL, -- the approver's
    refusal    TEXT    NOT NULL, -- why it did not count
    at         INTEGER,
    PRIMARY KEY (request_id, position)
) STRICT;

-- +goose Down
DROP TABLE view_approval_answers;
DROP TABLE view_approval_permissions;
DROP TABLE view_approvals;
