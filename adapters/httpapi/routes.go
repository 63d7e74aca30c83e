package httpapi

import (
	"net/http"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/projections"
)

// Route is one endpoint: how the mux serves it and how the OpenAPI
// document describes it. The one table (Routes) feeds both, so the
// document cannot name a route that is not served or miss one that is.
type Route struct {
	Method string
	// Path is both the ServeMux pattern and the OpenAPI path: /v1/runs/{id}.
	Path        string
	Summary     string
	Description string
	// Public routes take no bearer token.
	Public bool
	// Permission is what the caller must hold beyond a valid token.
	Permission string
	// PathParams describe each {name} in Path; Query lists the query
	// parameters, the same names the handler accepts (and no others).
	PathParams []Param
	Query      []Param
	// Headers are request headers the handler reads.
	Headers []Param
	// Body is a value of the JSON body's type; nil when there is none.
	Body any
	// Responses are the answers besides the errors every route may give
	// (401 without a valid token, 503 while a view or the store is down).
	Responses []Response

	v1     func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo)
	public func(a *API, ready Readiness) http.HandlerFunc
	// open is a /v1 route that authenticates its callers itself (a
	// trigger's token or signature), not with a bearer token.
	open func(a *API) http.HandlerFunc
}

// Param is one parameter.
type Param struct {
	Name        string
	Description string
	// Type is string, integer or boolean; Format and Enum narrow it.
	Type     string
	Format   string
	Enum     []string
	Required bool
}

// Response is one answer: a status and its body by content type.
type Response struct {
	Status      int
	Description string
	// JSON is a value of the body's type for application/json; Text and
	// EventStream name other bodies.
	JSON        any
	Text        bool
	EventStream bool
}

func errorResponse(status int, description string) Response {
	return Response{Status: status, Description: description, JSON: apiError{}}
}

var (
	badParams  = errorResponse(http.StatusBadRequest, "A parameter is malformed or unknown; the error names it.")
	forbidden  = errorResponse(http.StatusForbidden, "The token's user lacks the permission the route needs; the error names it.")
	notFound   = errorResponse(http.StatusNotFound, "Nothing has that id or name.")
	tooLarge   = errorResponse(http.StatusRequestEntityTooLarge, "The body is over the 64 KiB limit.")
	badBody    = errorResponse(http.StatusBadRequest, "The body is not the JSON object expected; the error says what is wrong.")
	notServing = errorResponse(http.StatusNotImplemented, "This server was started without what the route reads.")
	// The history rule (access.HistoryReader): a request, run or transcript
	// is its sender's, and anyone's with logbook:read_history.
	otherUsersHistory  = errorResponse(http.StatusForbidden, "`user` names another user and the token's user lacks logbook:read_history; the error names it.")
	notFoundOrNotYours = errorResponse(http.StatusNotFound, "Nothing has that id, or it is another user's (or an unknown sender's) and the token's user lacks logbook:read_history: the two are answered alike.")
)

// historyListDescription says whose rows a history list holds.
const historyListDescription = "Without logbook:read_history a caller lists only their own: with no `user` the list is theirs, and another user's is a 403. With it, everyone's, unknown senders' included."

func okJSON(v any, description string) Response {
	return Response{Status: http.StatusOK, Description: description, JSON: v}
}

func param(name, description string) Param {
	return Param{Name: name, Type: "string", Description: description}
}

var (
	idParam   = Param{Name: "id", Type: "string", Required: true, Description: "The id."}
	nameParam = Param{Name: "name", Type: "string", Required: true, Description: "The name."}
)

// listQueryParams documents listParams; requestStatuses or runStatuses
// narrow status.
func listQueryParams(statuses []string) []Param {
	described := map[string]Param{
		"user":     param("user", "Only this username's; another user's needs logbook:read_history."),
		"command":  param("command", "Only those that ran this command (bundle:command); no spaces."),
		"status":   {Name: "status", Type: "string", Enum: statuses, Description: "Only those in this status."},
		"provider": param("provider", "Only those from this chat provider (api, web, slack, irc, ...)."),
		"room":     param("room", "Only those from this room."),
		"since":    {Name: "since", Type: "string", Format: "date-time", Description: "Only those at or after this RFC 3339 time."},
		"until":    {Name: "until", Type: "string", Format: "date-time", Description: "Only those before this RFC 3339 time; after since."},
		"limit":    {Name: "limit", Type: "integer", Description: "Rows per page, 1 to 200 (default 50)."},
		"cursor":   param("cursor", "next_cursor of the previous page; absent for the first page."),
	}
	out := make([]Param, len(listParams))
	for i, name := range listParams {
		out[i] = described[name]
	}
	return out
}

// Routes is every endpoint the server answers, in the order the document
// lists them.
func Routes() []Route {
	return append([]Route{
		{Method: "GET", Path: "/healthz", Public: true, Summary: "Liveness: answers while the process runs.",
			Responses: []Response{{Status: 200, Description: "ok", Text: true}},
			public:    func(*API, Readiness) http.HandlerFunc { return healthz }},
		{Method: "GET", Path: "/readyz", Public: true, Summary: "Readiness: 200 while the database answers and every essential part of the server runs.",
			Description: "Lists every part (the store, the executor, the views, the dispatcher, HTTP, the chat providers) with its state, restarts and last error. 503 while the store, the executor, the views or the dispatcher is not running.",
			Responses:   []Response{okJSON(ReadinessReport{}, "ready"), {Status: 503, Description: "not ready, and why", JSON: ReadinessReport{}}},
			public:      func(_ *API, ready Readiness) http.HandlerFunc { return readyz(ready) }},
		{Method: "GET", Path: "/v1/openapi.json", Public: true, Summary: "This document.",
			Responses: []Response{{Status: 200, Description: "The OpenAPI 3 document of this API.", JSON: map[string]any{}}},
			public:    func(*API, Readiness) http.HandlerFunc { return serveOpenAPI }},

		{Method: "POST", Path: "/v1/requests", Summary: "Issue a command as the token's user (provider api).",
			Description: "Records a RequestReceived with the token's user as actor. `as` issues it for another user and needs logbook:admin. The message_id makes a retry idempotent; it is the token user's own, so another user's message_id never names their request. With wait, answers with the reply once it is posted (or 202 after the reply timeout).",
			Query:       []Param{{Name: "wait", Type: "string", Description: "Any value: wait for the reply."}},
			Body:        requestBody{},
			Responses: []Response{
				{Status: 202, Description: "Recorded; the request id to look it up by.", JSON: requestResponse{}},
				okJSON(requestResponse{}, "Recorded and answered (wait)."),
				badBody, forbidden, errorResponse(404, "`as` names no user."),
				errorResponse(http.StatusConflict, "The token's user sent this message_id before as another user (`as`); it is not that request again."),
				tooLarge,
			},
			v1: func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.postRequest }},
		{Method: "GET", Path: "/v1/history", Summary: "Requests, newest first, filtered, in keyset pages.",
			Description: historyListDescription,
			Query:       listQueryParams(requestStatuses),
			Responses:   []Response{okJSON(HistoryPage{}, "One page; next_cursor is absent on the last."), badParams, otherUsersHistory, notServing},
			v1:          func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.listHistory }},
		{Method: "GET", Path: "/v1/runs", Summary: "Runs, newest first, filtered, in keyset pages.",
			Description: historyListDescription,
			Query:       listQueryParams(runStatuses),
			Responses:   []Response{okJSON(RunsPage{}, "One page; next_cursor is absent on the last."), badParams, otherUsersHistory, notServing},
			v1:          func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.listRuns }},
		{Method: "GET", Path: "/v1/search", Summary: "Full-text search over request text, command arguments and run output, newest first, in keyset pages.",
			Description: "q is words (whole words, any case), prefixes (deplo*) and substrings (anything with other characters than letters and digits, such as 10.0.3.7, or \"quoted text\"; at least 3 characters); every one must match. A hit names its request, its run and the output line the match is on, with the line as snippet fragments (match marks what was found). The history filters apply to the hit's request. " + historyListDescription,
			Query:       append([]Param{{Name: "q", Type: "string", Required: true, Description: "What to find, in the search syntax; at most 256 bytes and 8 words."}}, listQueryParams(requestStatuses)...),
			Responses:   []Response{okJSON(SearchResults{}, "One page of hits; next_cursor is absent on the last."), badParams, otherUsersHistory, notServing},
			v1:          func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.search }},
		{Method: "GET", Path: "/v1/requests/{id}", Summary: "A request with its whole event chain.",
			Description: "The caller's own request, or anyone's with logbook:read_history; another user's is answered as a missing one.",
			PathParams:  []Param{idParam},
			Responses:   []Response{okJSON(RequestDetail{}, "The history row and every event of request-<id>, in order."), badParams, notFoundOrNotYours, notServing},
			v1:          func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.getRequest }},
		{Method: "GET", Path: "/v1/runs/{id}", Summary: "A run with its whole event chain.",
			Description: "The caller's own run, or anyone's with logbook:read_history; another user's is answered as a missing one.",
			PathParams:  []Param{idParam},
			Responses:   []Response{okJSON(RunDetail{}, "The history row and every event of run-<id>, in order."), badParams, notFoundOrNotYours, notServing},
			v1:          func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.getRun }},
		{Method: "GET", Path: "/v1/runs/{id}/transcript", Summary: "A run's output: exact bytes, chunks, or followed live over Server-Sent Events.",
			Description: "The caller's own run, or anyone's with logbook:read_history; another user's is answered as a missing one, also when followed. Without format, the bytes as printed (X-Logbook-Truncated carries the cap when output was cut). format=chunks gives each chunk with its stream and offset from the run's start. follow=1 streams `chunk` events (id = seq) until an `end` event says how the run ended; Last-Event-ID resumes after a seq.",
			PathParams:  []Param{idParam},
			Query: []Param{
				{Name: "stream", Type: "string", Enum: []string{"stdout", "stderr"}, Description: "Only this stream."},
				{Name: "format", Type: "string", Enum: []string{"text", "chunks"}, Description: "text (default) or chunks."},
				{Name: "follow", Type: "boolean", Description: "Stream Server-Sent Events until the run ends."},
			},
			Headers: []Param{{Name: "Last-Event-ID", Type: "integer", Description: "With follow: resume after this chunk seq."}},
			Responses: []Response{
				{Status: 200, Description: "The output; chunks as JSON; or an event stream.", Text: true, JSON: TranscriptView{}, EventStream: true},
				badParams, notFoundOrNotYours, notServing,
			},
			v1: func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.getTranscript }},

		{Method: "GET", Path: "/v1/approvals", Summary: "Requests that asked for approval, newest first, in keyset pages.",
			Description: "Without logbook:read_history a caller lists their own requests and those whose approvers' permissions they hold (the ones they may answer); with it, everyone's.",
			Query: []Param{
				{Name: "status", Type: "string", Enum: projections.ApprovalStatuses, Description: "Only those in this state; pending for those waiting."},
				param("requester", "Only this username's requests."),
				{Name: "limit", Type: "integer", Description: "Rows per page, 1 to 200 (default 50)."},
				param("cursor", "next_cursor of the previous page; absent for the first page."),
			},
			Responses: []Response{okJSON(ApprovalsPage{}, "One page; next_cursor is absent on the last."), badParams, notServing},
			v1:        func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.listApprovals }},
		{Method: "GET", Path: "/v1/approvals/{id}", Summary: "One request's approval: what it needs, who answered, how each answer fared.",
			Description: "Seen as in the list: the caller's own request, one whose approvers' permission they hold, or anyone's with logbook:read_history; any other is answered as a missing one.",
			PathParams:  []Param{{Name: "id", Type: "string", Required: true, Description: "The request id."}},
			Responses:   []Response{okJSON(ApprovalDetail{}, "The approval and its answers, in the order they were judged."), badParams, errorResponse(404, "No request with that id asked for approval, or the caller may not see it."), notServing},
			v1:          func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.getApproval }},
		{Method: "POST", Path: "/v1/approvals/{id}/approve", Summary: "Approve a request waiting for approval, as the token's user.",
			Description: "Sends `approve ID \"reason\"` as chat would and answers with its reply: counted is false, and the reply says why, when the answer does not count (the caller's own request, a permission the caller lacks, an approval given already, a request no longer waiting). ",
			PathParams:  []Param{{Name: "id", Type: "string", Required: true, Description: "The id of the request to answer."}},
			Body:        answerBody{},
			Responses: []Response{okJSON(AnswerResponse{}, "The answer's reply."), {Status: 202, Description: "Recorded, not answered within the reply timeout.", JSON: requestResponse{}},
				badBody, errorResponse(404, "No request with that id asked for approval, or the caller may not see it (see GET /v1/approvals/{id})."), errorResponse(http.StatusConflict, "The message_id names another request of the caller."), tooLarge},
			v1: func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.approve }},
		{Method: "POST", Path: "/v1/approvals/{id}/reject", Summary: "Reject a request waiting for approval, saying why, as the token's user.",
			Description: "Sends `reject ID \"reason\"` as chat would and answers with its reply, as approve does. A rejection that counts ends the request.",
			PathParams:  []Param{{Name: "id", Type: "string", Required: true, Description: "The id of the request to answer."}},
			Body:        answerBody{},
			Responses: []Response{okJSON(AnswerResponse{}, "The answer's reply."), {Status: 202, Description: "Recorded, not answered within the reply timeout.", JSON: requestResponse{}},
				badBody, errorResponse(404, "No request with that id asked for approval, or the caller may not see it (see GET /v1/approvals/{id})."), errorResponse(http.StatusConflict, "The message_id names another request of the caller."), tooLarge},
			v1: func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.reject }},

		{Method: "POST", Path: "/v1/access/explain", Summary: "Dry run: what the dispatcher would decide for a request, stage by stage.",
			Description: "Runs dispatch.Decide against the live facts and records nothing. Explaining another user's access needs logbook:admin.",
			Body:        explainBody{},
			Responses:   []Response{okJSON(AccessExplanation{}, "Each stage's check and the deciding rule."), badBody, forbidden, errorResponse(404, "No user has that name."), tooLarge, notServing},
			v1:          func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.explainAccess }},
		{Method: "GET", Path: "/v1/access/who", Permission: permManageRoles, Summary: "Who may run a command: every user, allowed or denied, with the deciding rule.",
			Description: "Decides `command args` for each user with dispatch.Decide, exactly as a real request would be decided now.",
			Query: []Param{
				{Name: "command", Type: "string", Required: true, Description: "The full name, bundle:command."},
				param("args", "The arguments and options that follow the command, as typed; rules may depend on them."),
			},
			Responses: []Response{okJSON(WhoMayRun{}, "The users allowed and denied."), badParams, forbidden, notServing},
			v1:        func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.whoMayRun }},

		{Method: "GET", Path: "/v1/users", Permission: permManageUsers, Summary: "Users with their handles, groups, roles and permissions.",
			Description: "permissions are the permission view's; effective_permissions are what the dispatcher decides with now.",
			Responses:   []Response{okJSON(UsersList{}, "Every user, by username."), badParams, forbidden, notServing},
			v1:          func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.listUsers }},
		{Method: "GET", Path: "/v1/users/{name}", Permission: permManageUsers, Summary: "One user; anyone may read their own.",
			Description: "permissions are the permission view's; effective_permissions are what the dispatcher decides with now.",
			PathParams:  []Param{nameParam},
			Responses:   []Response{okJSON(UserView{}, "The user."), badParams, forbidden, notFound, notServing},
			v1:          func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.getUser }},
		{Method: "GET", Path: "/v1/groups", Permission: permManageGroups, Summary: "Groups with their members and roles.",
			Responses: []Response{okJSON(GroupsList{}, "Every group, by name."), badParams, forbidden, notServing},
			v1:        func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.listGroups }},
		{Method: "GET", Path: "/v1/groups/{name}", Permission: permManageGroups, Summary: "One group.",
			PathParams: []Param{nameParam},
			Responses:  []Response{okJSON(projections.AccessGroup{}, "The group."), badParams, forbidden, notFound, notServing},
			v1:         func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.getGroup }},
		{Method: "GET", Path: "/v1/roles", Permission: permManageRoles, Summary: "Roles with their grants and the groups holding them.",
			Responses: []Response{okJSON(RolesList{}, "Every role, by name."), badParams, forbidden, notServing},
			v1:        func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.listRoles }},
		{Method: "GET", Path: "/v1/roles/{name}", Permission: permManageRoles, Summary: "One role and its grants.",
			PathParams: []Param{nameParam},
			Responses:  []Response{okJSON(projections.AccessRole{}, "The role."), badParams, forbidden, notFound, notServing},
			v1:         func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.getRole }},
		{Method: "GET", Path: "/v1/permissions", Permission: permManageRoles, Summary: "Permissions: declared ones and granted ones, with the roles granted each.",
			Responses: []Response{okJSON(PermissionsList{}, "Every permission, by name."), badParams, forbidden, notServing},
			v1:        func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.listPermissions }},
		{Method: "GET", Path: "/v1/bundles", Permission: permManageBundles, Summary: "Installed bundles, enabled or not, with their commands and rules.",
			Responses: []Response{okJSON(BundlesList{}, "Every installed bundle, by name."), badParams, forbidden, notServing},
			v1:        func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.listBundles }},
		{Method: "GET", Path: "/v1/bundles/{name}", Permission: permManageBundles, Summary: "One installed bundle.",
			PathParams: []Param{nameParam},
			Responses:  []Response{okJSON(BundleView{}, "The bundle."), badParams, forbidden, notFound, notServing},
			v1:         func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.getBundle }},

		{Method: "GET", Path: "/v1/executors", Permission: permManageBundles, Summary: "The live executors on a NATS bus: id, host, relay groups, version, the runs they hold.",
			Description: "An executor is live while its heartbeats arrive; one silent for LOGBOOK_EXECUTOR_LOST_AFTER leaves the list, and its started runs are recorded RunLost.",
			Responses:   []Response{okJSON(ExecutorsList{}, "Every live executor, by id."), badParams, forbidden, errorResponse(http.StatusNotImplemented, "The server runs commands in-process (no LOGBOOK_BUS_URL).")},
			v1:          func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.listExecutors }},

		{Method: "POST", Path: "/v1/secrets", Permission: permManageBundles, Summary: "Set a bundle's secret in one configuration layer.",
			Description: "Stores the value encrypted, outside the event log, as the secret's next version, and records SecretSet with the bundle, key, layer and version: never the value. Send the value here, never in a chat message (a message is recorded as typed). `logbook secret set` reads it from standard input.",
			Body:        secretBody{},
			Responses: []Response{okJSON(SecretSetAnswer{}, "The version stored."), badParams, badBody, forbidden,
				errorResponse(404, "The layer names no group or user."),
				errorResponse(http.StatusConflict, "The key is a plain value in that layer; unset it first."),
				errorResponse(http.StatusNotImplemented, "The server keeps no secrets (no key file)."), tooLarge},
			v1: func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.setSecret }},
		{Method: "POST", Path: "/v1/secrets/rotate-key", Permission: permAdmin, Summary: "Encrypt every secret again under a new key.",
			Description: "Adds a new key to the key file, encrypts every stored value again under it in one transaction, then drops the old key from the file; records SecretKeyRotated.",
			Body:        struct{}{},
			Responses: []Response{okJSON(KeyRotationAnswer{}, "The new key's id and how many values were encrypted again."), badBody, forbidden, tooLarge,
				errorResponse(http.StatusNotImplemented, "The server keeps no secrets (no key file).")},
			v1: func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.rotateSecretKey }},

		{Method: "GET", Path: "/v1/audit/verify", Permission: permAdmin, Summary: "Walk the hash chain of the log, whole or from a position.",
			Description: "One walk runs at a time: concurrent calls from the same position share it, others wait for it. Keep head_position and head_hash outside the database: the chain alone cannot show that the newest events were deleted.",
			Query:       []Param{{Name: "from", Type: "integer", Description: "Walk from this position (default 1), anchored at the stored hash of the one before; says nothing about the events before it."}},
			Responses:   []Response{okJSON(AuditReport{}, "ok, or the first bad position and why."), badParams, forbidden, notServing},
			v1:          func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.verifyAudit }},

		{Method: "GET", Path: "/v1/export/status", Permission: permAdmin, Summary: "Each export destination's cursor, the head, its lag and last error.",
			Description: "The destinations LOGBOOK_EXPORT lists, and any cursor stored for one it no longer lists (configured false). lag_seconds is the age of the oldest event the destination has not acknowledged.",
			Responses:   []Response{okJSON(ExportStatusAnswer{}, "The destinations, by name."), badParams, forbidden, notServing},
			v1:          func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.exportStatus }},
	}, append(triggerRoutes(), manageRoutes()...)...)
}

// Pattern is the route's ServeMux pattern.
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// isV1 reports whether the route is served by the API's mux (under /v1/,
// once the API exists) rather than by the outer one.
func (r Route) isV1() bool { return r.v1 != nil || r.open != nil }

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	for _, r := range Routes() {
		switch {
		case r.open != nil:
			mux.HandleFunc(r.Pattern(), r.open(a))
		case r.v1 != nil:
			mux.HandleFunc(r.Pattern(), a.authenticated(r.v1(a)))
		}
	}
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}
