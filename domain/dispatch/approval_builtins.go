package dispatch

import (
	"fmt"
	"slices"
	"strings"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// The approve and reject builtins answer a request awaiting approval. Each
// judges the answer as the request's decision will (Approval.Judge): an
// answer that would not count fails the run with the reason and records
// nothing in the request; one that counts is recorded there as
// ApprovalAnswered, in the same atomic append as the run's end, and the
// request's decision, taken when the runner reads it, records the verdict.

// minIDPrefix is the shortest part of a request id an answer may give.
const minIDPrefix = 8

func runApprove(c BuiltinCall) (run.Result, error) { return answer(c, VerdictApprove) }

func runReject(c BuiltinCall) (run.Result, error) { return answer(c, VerdictReject) }

func answer(c BuiltinCall, v Verdict) (run.Result, error) {
	usage := "approve ID [REASON...]"
	if v == VerdictReject {
		usage = "reject ID REASON..."
	}
	if len(c.Args) == 0 {
		return run.Result{}, fmt.Errorf("name the request to %s: %s", v, usage)
	}
	reason := strings.TrimSpace(strings.Join(c.Args[1:], " "))
	if v == VerdictReject && reason == "" {
		return run.Result{}, fmt.Errorf("say why you reject it: %s", usage)
	}
	a, err := findPending(c.Facts.PendingApprovals(), c.Args[0])
	if err != nil {
		return run.Result{}, err
	}
	user, ok := c.Facts.UserByUsername(c.Invocation.Username)
	if !ok {
		return run.Result{}, fmt.Errorf("there is no user named %s", c.Invocation.Username)
	}
	ans := ApprovalAnswered{Verdict: v, User: user.ID, Username: user.Username, Reason: reason, At: c.At.UTC(), Via: c.RunID, Room: c.Invocation.Room}
	j := a.Judge(ans, c.Facts.PermissionsOf(user.ID))
	if !j.Counts {
		noun := "approval"
		if v == VerdictReject {
			noun = "rejection"
		}
		return run.Result{}, fmt.Errorf("your %s does not count: %s", noun, j.Refusal)
	}
	c.Record(Change{Stream: Stream(a.RequestID), Expected: eventstore.Any, Events: []domain.Payload{ans}})
	what := fmt.Sprintf("request %s (%s: %s)", shortID(a.RequestID), a.Requested.RequesterName, a.Requested.Text)
	switch {
	case v == VerdictReject:
		return BodyResult("Rejected " + what + ": it will not run."), nil
	case j.Approves:
		return BodyResult("Approved " + what + ": that was the last approval it needed, so it goes ahead now."), nil
	}
	after := a
	after.Granted = append(slices.Clip(a.Granted), ApprovalGranted{User: user.ID, Username: user.Username, Permissions: j.Permissions})
	return BodyResult(fmt.Sprintf("Approved %s: it has %s.", what, after.Progress())), nil
}

// findPending finds the request awaiting approval that id names: its whole
// id, or the start of it, at least minIDPrefix characters, that no other
// pending request shares.
func findPending(pending []Approval, id string) (Approval, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	var found []Approval
	for _, a := range pending {
		if a.RequestID == id {
			return a, nil
		}
		if len(id) >= minIDPrefix && strings.HasPrefix(a.RequestID, id) {
			found = append(found, a)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		ids := make([]string, len(found))
		for i, a := range found {
			ids[i] = a.RequestID
		}
		slices.Sort(ids)
		return Approval{}, fmt.Errorf("%s starts the ids of %d requests waiting for approval (%s); give more of it", id, len(found), strings.Join(ids, ", "))
	case len(id) < minIDPrefix:
		return Approval{}, fmt.Errorf("%q is too short to name a request: give at least its first %d characters", id, minIDPrefix)
	}
	return Approval{}, fmt.Errorf("no request waiting for approval has the id %s (it may have been answered, or expired)", id)
}

// runApprovals lists the requests waiting for approval that the caller may
// answer (they hold a required permission) or that are their own.
func runApprovals(c BuiltinCall) (run.Result, error) {
	user, ok := c.Facts.UserByUsername(c.Invocation.Username)
	if !ok {
		return run.Result{}, fmt.Errorf("there is no user named %s", c.Invocation.Username)
	}
	perms := c.Facts.PermissionsOf(user.ID)
	pending := c.Facts.PendingApprovals()
	slices.SortFunc(pending, func(a, b Approval) int { return a.Requested.ExpiresAt.Compare(b.Requested.ExpiresAt) })
	var lines []string
	for _, a := range pending {
		mine := a.Requested.Requester == user.ID
		if !mine && len(a.Answerable(perms)) == 0 {
			continue
		}
		line := fmt.Sprintf("%s  %s: %s  (%s; expires %s)", shortID(a.RequestID), a.Requested.RequesterName, a.Requested.Text, a.Progress(), clock(a.Requested.ExpiresAt))
		if mine {
			line += "  [yours]"
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return BodyResult("No request waits for your approval."), nil
	}
	return BodyResult(append([]string{"Waiting for approval:"}, lines...)...), nil
}
