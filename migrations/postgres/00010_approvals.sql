-- approvals: one row per request that asked for approval, one per answer
-- judged, and the permissions its approvers must hold (for "the approvals
-- I may answer").
-- +goose Up
CREATE TABLE view_approvals (
    request_id   text    PRIMARY KEY,
    position     bigint  NOT NULL, -- of ApprovalRequested
    requester_id text    NOT NULL,
    requester    text    NOT NULL,
    text         text    NOT NULL, -- what runs once approved
    needs        text    NOT NULL, -- "2 approvals from deploy:approver"
    approvers    text    NOT NULL, -- who could approve when asked, comma-separated
    status       text    NOT NULL, -- pending, approved, rejected, expired
    approved_by  text    NOT NULL, -- whose approvals counted, comma-separated, in order
    rejected_by  text    NOT NULL,
    reason       text    NOT NULL, -- the rejection's
    requested_at bigint,
    expires_at   bigint,
    decided_at   bigint
);
CREATE INDEX view_approvals_position ON view_approvals (position);
CREATE INDEX view_approvals_status ON view_approvals (status, position);
CREATE INDEX view_approvals_requester ON view_approvals (requester, position);

CREATE TABLE view_approval_permissions (
    request_id text    NOT NULL,
    permission text    NOT NULL,
    needed     bigint NOT NULL,
    position   bigint NOT NULL, -- the request's
    PRIMARY KEY (request_id, permission)
);
CREATE INDEX view_approval_permissions_permission ON view_approval_permissions (permission, position);

CREATE TABLE view_approval_answers (
    request_id text    NOT NULL,
    position   bigint  NOT NULL, -- of the judgement
    username   text    NOT NULL,
    verdict    text    NOT NULL, -- approve or reject
    outcome    text    NOT NULL, -- counted, refused or rejected
    reason     text    NOT NULL, -- the approver's
    refusal    text    NOT NULL, -- why it did not count
    at         bigint,
    PRIMARY KEY (request_id, position)
);

-- +goose Down
DROP TABLE view_approval_answers;
DROP TABLE view_approval_permissions;
DROP TABLE view_approvals;
