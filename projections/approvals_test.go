package projections_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/projections"
)

func TestTheApprovalsViewFollowsEachRequestsAnswers(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		src := open(t)
		ctx := context.Background()
		expires := time.Date(2026, 3, 1, 12, 15, 0, 0, time.UTC)
		asked := func(requester string, needed int, perm string) dispatch.ApprovalRequested {
			return dispatch.ApprovalRequested{
				Requirements: []dispatch.ApprovalRequirement{{Permission: perm, Needed: needed, Stages: []int{0}}},
				Text:         "rel:prod db", Requester: "u-" + requester, RequesterName: requester, Approvers: []string{"bob", "dave"}, ExpiresAt: expires,
			}
		}
		// approved: alice's own approval refused, then bob and dave.
		appendTo(t, src, dispatch.Stream("approved"),
			dispatch.RequestReceived{Adapter: "slack", MessageID: "1", Room: "ops", ChatUser: "U1", Text: "rel:prod db"},
			asked("alice", 2, "rel:approver"),
			dispatch.ApprovalRefused{Verdict: dispatch.VerdictApprove, User: "u-alice", Username: "alice", Via: "v1", Reason: "it is your own"})
		appendTo(t, src, dispatch.Stream("approved"),
			dispatch.ApprovalGranted{User: "u-bob", Username: "bob", Reason: "fine", Via: "v2", Permissions: []string{"rel:approver"}},
			dispatch.ApprovalGranted{User: "u-dave", Username: "dave", Via: "v3", Permissions: []string{"rel:approver"}},
			dispatch.RequestApproved{Approvers: []string{"bob", "dave"}},
			dispatch.StageStarted{Stage: 0, RunID: "approved-s0-i0"})
		appendTo(t, src, dispatch.Stream("rejected"), asked("erin", 1, "site:dba"),
			dispatch.ApprovalRejected{User: "u-dave", Username: "dave", Reason: "not in the freeze", Via: "v4"},
			dispatch.RequestDenied{Reason: "dave rejected it"})
		appendTo(t, src, dispatch.Stream("expired"), asked("erin", 1, "rel:approver"), dispatch.ApprovalExpired{At: expires}, dispatch.RequestDenied{Reason: "expired"})
		appendTo(t, src, dispatch.Stream("pending"), asked("erin", 1, "site:dba"))
		appendTo(t, src, dispatch.Stream("plain"), dispatch.RequestReceived{Adapter: "slack", MessageID: "2", Room: "ops", ChatUser: "U1", Text: "echo"},
			dispatch.RequestCompleted{})
		catchUp(t, src, projections.NewApprovals(), projections.NewHistory())
		ar := projections.NewApprovalReader(projections.DBOf(src))

		all, err := ar.List(ctx, projections.ApprovalFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range all.Approvals {
			got = append(got, a.RequestID+":"+a.Status)
		}
		if strings.Join(got, " ") != "pending:pending expired:expired rejected:rejected approved:approved" {
			t.Fatalf("approvals newest first: %v", got)
		}
		d, err := ar.Get(ctx, "approved")
		if err != nil {
			t.Fatal(err)
		}
		if d.ApprovedBy != "bob, dave" || d.Needs != "2 approvals from rel:approver" || d.Requester != "alice" || !d.DecidedAt.Valid ||
			d.Approvers != "bob, dave" || strings.Join(d.Permissions, ",") != "rel:approver" {
			t.Fatalf("approved: %+v", d)
		}
		var answers []string
		for _, a := range d.Answers {
			answers = append(answers, a.Username+" "+a.Verdict+" "+a.Outcome+" "+a.Reason+a.Refusal)
		}
		if want := "alice approve refused it is your own|bob approve counted fine|dave approve counted "; strings.Join(answers, "|") != want {
			t.Fatalf("answers %q\nwant %q", strings.Join(answers, "|"), want)
		}
		if r, err := ar.Get(ctx, "rejected"); err != nil || r.RejectedBy != "dave" || r.Reason != "not in the freeze" || r.Answers[0].Outcome != projections.AnswerRejected {
			t.Fatalf("rejected: %+v %v", r, err)
		}
		if _, err := ar.Get(ctx, "plain"); !errors.Is(err, projections.ErrNoApproval) {
			t.Fatalf("a request that asked for no approval: %v", err)
		}

		for _, tc := range []struct {
			name   string
			filter projections.ApprovalFilter
			want   string
		}{
			{"pending only", projections.ApprovalFilter{Status: projections.ApprovalPending}, "pending"},
			{"one requester's", projections.ApprovalFilter{Requester: "alice"}, "approved"},
			{"a viewer sees their own and what their permissions may answer",
				projections.ApprovalFilter{Visible: &projections.ApprovalViewer{Username: "alice", Permissions: []string{"site:dba"}}}, "pending rejected approved"},
			{"a viewer without permissions sees their own only",
				projections.ApprovalFilter{Visible: &projections.ApprovalViewer{Username: "erin"}}, "pending expired rejected"},
			{"a page of two, then the rest", projections.ApprovalFilter{Limit: 2}, "pending expired"},
		} {
			page, err := ar.List(ctx, tc.filter)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			var ids []string
			for _, a := range page.Approvals {
				ids = append(ids, a.RequestID)
			}
			if strings.Join(ids, " ") != tc.want {
				t.Errorf("%s: %v, want %s", tc.name, ids, tc.want)
			}
			if tc.filter.Limit == 2 {
				rest, err := ar.List(ctx, projections.ApprovalFilter{Cursor: page.Next})
				if err != nil || len(rest.Approvals) != 2 || rest.Next != "" || rest.Approvals[0].RequestID != "rejected" {
					t.Errorf("the next page: %+v %v", rest, err)
				}
			}
		}
		if _, err := ar.List(ctx, projections.ApprovalFilter{Cursor: "x"}); !errors.Is(err, projections.ErrBadCursor) {
			t.Fatalf("a bad cursor gave %v", err)
		}

		h := projections.NewHistoryReader(projections.DBOf(src))
		page, err := h.Requests(ctx, projections.RequestFilter{Status: projections.RequestAwaitingApproval})
		if err != nil || len(page.Requests) != 1 || page.Requests[0].RequestID != "pending" {
			t.Fatalf("requests awaiting approval: %+v %v", page, err)
		}
		if r, err := h.Request(ctx, "approved"); err != nil || r.Status != projections.RequestRunning {
			t.Fatalf("the approved request: %+v %v", r, err)
		}
	})
}

func TestTheHistoryShowsARequestWaitingForAQuota(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, open func(t *testing.T) projections.Source) {
		src := open(t)
		appendTo(t, src, dispatch.Stream("q"), dispatch.RequestReceived{Adapter: "slack", MessageID: "1", Room: "ops", ChatUser: "U1", Text: "ops:deploy"},
			dispatch.QuotaWaiting{QuotaHit: dispatch.QuotaHit{Bundle: "ops", Quota: dispatch.QuotaUserConcurrency, Limit: 1, Current: 1}})
		catchUp(t, src, projections.NewHistory())
		h := projections.NewHistoryReader(projections.DBOf(src))
		if r, err := h.Request(context.Background(), "q"); err != nil || r.Status != projections.RequestQueued {
			t.Fatalf("request %+v %v", r, err)
		}
		appendTo(t, src, dispatch.Stream("q"), dispatch.QuotaExceeded{}, dispatch.RequestDenied{Reason: "over a quota"})
		catchUp(t, src, projections.NewHistory())
		if r, err := h.Request(context.Background(), "q"); err != nil || r.Status != projections.RequestDenied {
			t.Fatalf("request %+v %v", r, err)
		}
	})
}
