package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/rules"
)

// AccessExplanation is the answer of POST /v1/access/explain: what the
// dispatcher would decide for the user's request, stage by stage, without
// running or recording anything.
type AccessExplanation struct {
	User string `json:"user"`
	Text string `json:"text"`
	// Expanded is the pipeline that would run when Alias or "!!" replaced
	// the text; Alias names the alias.
	Expanded string `json:"expanded,omitempty"`
	Alias    string `json:"alias,omitempty"`
	// Allowed: every stage is allowed and nothing else denies the request.
	Allowed bool `json:"allowed"`
	// Rejected says why the text names nothing runnable (it does not parse,
	// a command is unknown or disabled); Column is 1-based, 0 when unknown.
	Rejected string `json:"rejected,omitempty"`
	Column   int    `json:"column,omitempty"`
	// Denied is the reason the request as a whole would be denied: a stage
	// not allowed, the user disabled, a redirect the bot cannot post to,
	// too few others who could approve it.
	Denied string             `json:"denied,omitempty"`
	Stages []StageExplanation `json:"stages"`
	// Approvals are what an allowed request would wait for before
	// anything of it runs, one per approver permission; Approvers who
	// could give them now (the user left out).
	Approvals []dispatch.ApprovalRequirement `json:"approvals"`
	Approvers []string                       `json:"approvers"`
}

// StageExplanation is one stage's permission check.
type StageExplanation struct {
	Stage   int    `json:"stage"` // 1-based
	Command string `json:"command"`
	Allowed bool   `json:"allowed"`
	// Rule is the deciding rule and Requires what it requires; both empty
	// when no rule matched.
	Rule     string `json:"rule,omitempty"`
	Requires string `json:"requires,omitempty"`
	Reason   string `json:"reason"`
	// Detail is every rule for the command and how it fared.
	Detail rules.Explanation `json:"detail"`
	// Approvals are what the deciding rules ask for before the stage runs.
	Approvals []rules.Approval `json:"approvals"`
}

// ErrNoSuchUser is returned by ExplainAccess for an unknown username.
var ErrNoSuchUser = errors.New("no such user")

// ExplainAccess decides the request text as username would send it over the
// API, with the live facts, and reports each stage's permission check.
// It runs dispatch.Decide, the function the dispatcher itself runs, so the
// answer resolves aliases, "!!", bare names and rules exactly as a real
// request would; the decision is read, never recorded or carried out.
func ExplainAccess(facts dispatch.Facts, username, text string) (AccessExplanation, error) {
	out := AccessExplanation{User: username, Text: text, Stages: []StageExplanation{}, Approvals: []dispatch.ApprovalRequirement{}, Approvers: []string{}}
	if _, ok := facts.UserByUsername(username); !ok {
		return out, fmt.Errorf("%w: there is no user named %s", ErrNoSuchUser, username)
	}
	received := dispatch.RequestReceived{Adapter: "api", MessageID: "access-explain", Room: "api", ChatUser: username, Text: strings.TrimPrefix(text, "!")}
	decision, err := dispatch.Decide(dispatch.Evolve(dispatch.Request{}, received), received, namedUser{facts})
	if err != nil {
		return out, err
	}
	for _, p := range decision.Request {
		switch e := p.(type) {
		case dispatch.IdentityUnknown:
			out.Denied = "the user has no identity the dispatcher recognises"
		case dispatch.PipelineParsed:
			out.Alias, out.Expanded = e.Alias, e.Expanded
		case dispatch.PipelineRejected:
			out.Rejected, out.Column = e.Error, e.Column
		case dispatch.PermissionChecked:
			stage := StageExplanation{Stage: e.Stage + 1, Command: e.Command, Allowed: e.Granted, Rule: e.Rule, Requires: e.Required, Reason: e.Reason, Approvals: e.Approvals}
			if stage.Approvals == nil {
				stage.Approvals = []rules.Approval{}
			}
			if len(e.Detail) > 0 {
				if err := json.Unmarshal(e.Detail, &stage.Detail); err != nil {
					return out, fmt.Errorf("reading the check of stage %d: %w", stage.Stage, err)
				}
			}
			out.Stages = append(out.Stages, stage)
		case dispatch.RequestDenied:
			out.Denied = e.Reason
		case dispatch.ApprovalRequested:
			out.Approvals, out.Approvers = e.Requirements, e.Approvers
		}
	}
	out.Allowed = out.Rejected == "" && out.Denied == "" && len(out.Stages) > 0
	for _, s := range out.Stages {
		out.Allowed = out.Allowed && s.Allowed
	}
	return out, nil
}

// namedUser resolves the explained request's sender by username, as the
// dispatcher does for the api provider, whatever Facts it is given.
type namedUser struct{ dispatch.Facts }

func (n namedUser) UserByHandle(_, username string) (access.UserInfo, bool) {
	return n.UserByUsername(username)
}

// explainBody is POST /v1/access/explain.
type explainBody struct {
	User string `json:"user"` // default: the token's user
	Text string `json:"text"`
}

// accessFacts is what explaining reads: Access, or Users when it answers
// the dispatcher's questions too (the dispatcher's Facts does).
func (a *API) accessFacts() (dispatch.Facts, bool) {
	if a.Access != nil {
		return a.Access, true
	}
	facts, ok := a.Users.(dispatch.Facts)
	return facts, ok
}

// explainAccess answers a dry run of a permission check. Explaining
// another user's access needs logbook:admin: it shows what they may do.
func (a *API) explainAccess(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	facts, ok := a.accessFacts()
	if !ok {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server cannot explain access"})
		return
	}
	if !noParams(w, r) {
		return
	}
	var body explainBody
	if !decodeBody(w, r, &body, `{"user": ..., "text": ...}`) {
		return
	}
	if strings.TrimSpace(body.Text) == "" {
		writeJSON(w, http.StatusBadRequest, apiError{`"text" is required: the pipeline to explain, such as "echo hello"`})
		return
	}
	if body.User == "" {
		body.User = user.Username
	}
	if body.User != user.Username && !slices.Contains(a.Users.PermissionsOf(user.ID), "logbook:admin") {
		writeJSON(w, http.StatusForbidden, apiError{"explaining another user's access needs the logbook:admin permission"})
		return
	}
	explanation, err := ExplainAccess(facts, body.User, body.Text)
	switch {
	case errors.Is(err, ErrNoSuchUser):
		writeJSON(w, http.StatusNotFound, apiError{err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
	default:
		writeJSON(w, http.StatusOK, explanation)
	}
}
