package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/schedule"
	"github.com/logbookhq/logbook/domain/trigger"
	"github.com/logbookhq/logbook/projections"
)

// TriggerStore reads triggers and keeps their secrets (dispatcher.Triggers).
type TriggerStore interface {
	Load(ctx context.Context, name string) (trigger.Trigger, int64, error)
	Secret(ctx context.Context, name string, t trigger.Trigger) ([]byte, error)
	SetSecret(ctx context.Context, actor, name, value string) (int, error)
	LoadSchedule(ctx context.Context, name string) (schedule.Schedule, error)
}

// SourcesReader lists triggers and schedules (projections.SourcesReader).
type SourcesReader interface {
	Triggers(ctx context.Context) ([]projections.TriggerRow, error)
	Schedules(ctx context.Context, owner string) ([]projections.ScheduleRow, error)
}

// MaxTriggerBody bounds a trigger call's body: the call becomes the first
// stage's input, recorded in the request (raw and parsed), under the
// store's 4 MiB per event.
const MaxTriggerBody = 512 << 10

// DeliveryHeaders name a call's delivery id, in the order they are read:
// GitHub's, then Logbook's own. A delivery id received before is a replay.
var DeliveryHeaders = []string{"X-GitHub-Delivery", "X-Logbook-Delivery"}

// TokenHeader carries a trigger's token when the sender cannot set
// Authorization.
const TokenHeader = "X-Logbook-Token"

// hiddenHeaders never reach the recorded input: they carry credentials.
var hiddenHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", TokenHeader}

// TriggerAnswer is what a trigger call answers.
type TriggerAnswer struct {
	RequestID string          `json:"request_id"`
	Status    string          `json:"status,omitempty"` // completed, failed, denied, rejected, unknown_user
	Output    json.RawMessage `json:"output,omitempty"`
	Text      string          `json:"text,omitempty"`
	Error     string          `json:"error,omitempty"` // why it did not complete
}

// SecretBody is PUT /v1/triggers/{name}/secret.
type SecretBody struct {
	Value string `json:"value"`
}

// SecretAnswer answers it.
type SecretAnswer struct {
	Trigger string `json:"trigger"`
	Version int    `json:"version"`
}

// TriggerList and ScheduleList answer the lists.
type TriggerList struct {
	Triggers []projections.TriggerRow `json:"triggers"`
}
type ScheduleList struct {
	Schedules []projections.ScheduleRow `json:"schedules"`
}

func triggerRoutes() []Route {
	return []Route{
		{Method: "POST", Path: "/v1/triggers/{name}", Public: true, Summary: "Call a trigger: run its pipeline as its user, with this call as the first stage's input.",
			Description: "Authenticated by the trigger's token (Authorization: Bearer or X-Logbook-Token) and/or an HMAC-SHA256 signature of the raw body (X-Hub-Signature-256 by default, `sha256=<hex>`), checked in constant time before anything is recorded. A signed call carries a delivery id (X-GitHub-Delivery or X-Logbook-Delivery); one seen before is a replay and refused. The first stage gets {headers, query, body (the parsed JSON, or null), raw_body}, without credential headers. History records the request with provider trigger and the trigger's name as its room.",
			PathParams:  []Param{nameParam},
			Headers: []Param{
				{Name: "X-Hub-Signature-256", Type: "string", Description: "sha256=<hex HMAC-SHA256 of the raw body>, or the header the trigger names."},
				{Name: "X-GitHub-Delivery", Type: "string", Description: "The delivery id; also X-Logbook-Delivery."},
				{Name: TokenHeader, Type: "string", Description: "The trigger's token, when not sent as Authorization: Bearer."},
			},
			Responses: []Response{
				okJSON(TriggerAnswer{}, "The pipeline completed with output."),
				{Status: 202, Description: "The trigger's timeout passed first; the run goes on. The request id to look it up by.", JSON: TriggerAnswer{}},
				{Status: 204, Description: "The pipeline completed with no output."},
				errorResponse(400, "A signed call without a delivery id, or a body that says it is JSON and does not parse."),
				errorResponse(401, "The token or the signature is missing or wrong (or the trigger's secret is not set)."),
				{Status: 403, Description: "The pipeline is denied to the trigger's user; error says why.", JSON: TriggerAnswer{}},
				errorResponse(404, "There is no trigger of that name."),
				errorResponse(409, "A replay: this delivery id was received before."),
				errorResponse(413, "The body is over 512 KiB."),
				{Status: 422, Description: "The command aborted; its output, if any, and why.", JSON: TriggerAnswer{}},
				errorResponse(423, "The trigger is disabled."),
				{Status: 500, Description: "The pipeline failed, or does not parse; error says why.", JSON: TriggerAnswer{}},
			},
			open: func(a *API) http.HandlerFunc { return a.callTrigger }},
		{Method: "GET", Path: "/v1/triggers", Permission: "logbook:manage_triggers", Summary: "List the triggers (never their tokens or secrets).",
			Responses: []Response{okJSON(TriggerList{}, "Every trigger, by name."), badParams, forbidden, notServing},
			v1:        func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.listTriggers }},
		{Method: "POST", Path: "/v1/triggers/{name}/secret", Permission: "logbook:manage_triggers", Summary: "Set a trigger's HMAC secret (kept encrypted; the log records its version only).",
			PathParams: []Param{nameParam}, Body: SecretBody{},
			Responses: []Response{okJSON(SecretAnswer{}, "Set; the version in force."), badBody, forbidden, notFound, tooLarge, notServing},
			v1:        func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.setTriggerSecret }},
		{Method: "GET", Path: "/v1/schedules", Permission: "logbook:manage_schedules", Summary: "List the schedules, with each one's last tick.",
			Responses: []Response{okJSON(ScheduleList{}, "Every schedule, by name."), badParams, forbidden, notServing},
			v1:        func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.listSchedules }},
	}
}

// holds checks the route's query (it takes none) and the permission,
// before anything is looked up.
func (a *API) holds(w http.ResponseWriter, r *http.Request, user access.UserInfo, permission string) bool {
	if !noParams(w, r) {
		return false
	}
	if slices.Contains(a.Users.PermissionsOf(user.ID), permission) {
		return true
	}
	writeJSON(w, http.StatusForbidden, apiError{"this needs the " + permission + " permission"})
	return false
}

func (a *API) listTriggers(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.holds(w, r, user, "logbook:manage_triggers") {
		return
	}
	if a.Sources == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server has no triggers view"})
		return
	}
	rows, err := a.Sources.Triggers(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"reading the triggers: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, TriggerList{Triggers: rows})
}

func (a *API) listSchedules(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.holds(w, r, user, "logbook:manage_schedules") {
		return
	}
	if a.Sources == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server has no schedules view"})
		return
	}
	rows, err := a.Sources.Schedules(r.Context(), "")
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"reading the schedules: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, ScheduleList{Schedules: rows})
}

func (a *API) setTriggerSecret(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.holds(w, r, user, "logbook:manage_triggers") {
		return
	}
	if a.Triggers == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server has no triggers"})
		return
	}
	var body SecretBody
	if !decodeBody(w, r, &body, `{"value": ...}`) {
		return
	}
	name := r.PathValue("name")
	version, err := a.Triggers.SetSecret(r.Context(), user.Username, name, body.Value)
	switch {
	case errors.Is(err, trigger.ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{"there is no trigger named " + name})
	case err != nil:
		// The error names lengths and versions, never the value.
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
	default:
		writeJSON(w, http.StatusOK, SecretAnswer{Trigger: name, Version: version})
	}
}

// callTrigger runs a trigger. Everything that can refuse the call (no
// such trigger, the body's size, the token, the signature, a replay, the
// trigger disabled) is checked before anything is recorded; a refusal is
// logged, never recorded, so unauthenticated callers cannot fill the log.
func (a *API) callTrigger(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	log := a.Logger.With().Str("trigger", name).Str("remote", r.RemoteAddr).Logger()
	refuse := func(status int, reason string) {
		count := a.refusalCount.Add(1)
		a.refusalsOnce.Do(func() { a.refusals = &rate.Sometimes{First: 10, Interval: 10 * time.Second} })
		a.refusals.Do(func() {
			log.Warn().Int("status", status).Str("reason", reason).Int64("refused_so_far", count).Msg("trigger call refused")
		})
		writeJSON(w, status, apiError{reason})
	}
	if a.Triggers == nil || a.Requests == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server has no triggers"})
		return
	}
	if err := access.ValidateName("trigger name", name); err != nil {
		refuse(http.StatusNotFound, "there is no trigger named "+name)
		return
	}
	t, _, err := a.Triggers.Load(r.Context(), name)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"reading the trigger: " + err.Error()})
		return
	}
	if !t.Exists() {
		refuse(http.StatusNotFound, "there is no trigger named "+name)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxTriggerBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		refuse(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over the %d KiB limit of a trigger call", MaxTriggerBody>>10))
		return
	case err != nil:
		refuse(http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	cfg := t.Config()
	if cfg.TokenSHA256 != "" {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if token == "" {
			token = r.Header.Get(TokenHeader)
		}
		if !t.TokenMatches(strings.TrimSpace(token)) {
			refuse(http.StatusUnauthorized, "the trigger's token is missing or wrong (Authorization: Bearer TOKEN or "+TokenHeader+")")
			return
		}
	}
	delivery := ""
	for _, h := range DeliveryHeaders {
		if delivery = strings.TrimSpace(r.Header.Get(h)); delivery != "" {
			break
		}
	}
	if cfg.RequireHMAC {
		secret, err := a.Triggers.Secret(r.Context(), name, t)
		if err != nil {
			refuse(http.StatusUnauthorized, "the call cannot be checked: "+err.Error())
			return
		}
		if err := trigger.VerifySignature(secret, body, r.Header.Get(t.SignatureHeader())); err != nil {
			refuse(http.StatusUnauthorized, fmt.Sprintf("%v (%s)", err, t.SignatureHeader()))
			return
		}
		if delivery == "" {
			refuse(http.StatusBadRequest, "a signed call needs a delivery id ("+strings.Join(DeliveryHeaders, " or ")+"), which makes a replay recognisable")
			return
		}
	}
	if !t.Enabled() {
		refuse(http.StatusLocked, "trigger "+name+" is disabled")
		return
	}
	in := dispatch.RequestReceived{Adapter: dispatch.TriggerAdapter, MessageID: delivery, Room: name, ChatUser: cfg.As,
		Text: cfg.Pipeline, Sender: dispatch.TriggerAdapter + ":" + name, Source: name, ReplyVia: cfg.Provider}
	if delivery == "" {
		in = in.WithFreshMessageID()
	}
	if delivery != "" && a.Events != nil {
		seen, err := a.Events.ReadStream(r.Context(), dispatch.Stream(in.ID()), 0, 1)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, apiError{"reading the log: " + err.Error()})
			return
		}
		if len(seen) > 0 {
			refuse(http.StatusConflict, "delivery "+delivery+" was received before: a replay is refused")
			return
		}
	}
	in.Input, err = callInput(r, body)
	if err != nil {
		refuse(http.StatusBadRequest, err.Error())
		return
	}
	log = log.With().Str("request_id", in.ID()).Logger()
	waiting, stop := context.WithTimeout(r.Context(), t.Timeout())
	defer stop()
	id, replies, err := a.Requests.ReceiveAndWait(r.Context(), waiting, in, in.Sender)
	if err != nil {
		log.Error().Err(err).Msg("recording a trigger call")
		writeJSON(w, http.StatusServiceUnavailable, apiError{"the call could not be recorded: " + err.Error()})
		return
	}
	log.Info().Msg("trigger call recorded")
	select {
	case reply := <-replies:
		writeTriggerReply(w, id, reply)
	case <-waiting.Done():
		if r.Context().Err() == nil {
			writeJSON(w, http.StatusAccepted, TriggerAnswer{RequestID: id, Status: "running"})
		}
	}
}

// writeTriggerReply maps how the request ended onto the answer's status.
func writeTriggerReply(w http.ResponseWriter, id string, reply dispatch.Reply) {
	answer := TriggerAnswer{RequestID: id, Output: reply.Value, Text: reply.Text}
	if p := reply.Problem; p != nil {
		answer.Status, answer.Error = string(p.Status), p.Message
		status := http.StatusInternalServerError
		switch {
		case p.Status == dispatch.StatusDenied || p.Status == dispatch.StatusUnknown:
			status = http.StatusForbidden
		case p.Aborted:
			status = http.StatusUnprocessableEntity
		}
		writeJSON(w, status, answer)
		return
	}
	if reply.Text == dispatch.NoOutput || (len(reply.Value) == 0 && strings.TrimSpace(reply.Text) == "") {
		w.Header().Set("X-Logbook-Request-Id", id)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	answer.Status = string(dispatch.StatusCompleted)
	writeJSON(w, http.StatusOK, answer)
}

// callInput is the first stage's input: the call's headers (credentials
// left out, names lowercased, repeated values joined), its query (a token
// left out), its body parsed when it is JSON, and its raw body (as text,
// or base64 when it is not UTF-8). A form-encoded body is also given as
// `form`, and its `payload` field, when it holds JSON, as `body`: GitHub
// sends that way when a webhook's content type is a form.
func callInput(r *http.Request, body []byte) (json.RawMessage, error) {
	headers := map[string]string{}
	for name, values := range r.Header {
		if slices.Contains(hiddenHeaders, name) {
			continue
		}
		headers[strings.ToLower(name)] = strings.Join(values, ", ")
	}
	query := map[string]string{}
	for name, values := range r.URL.Query() {
		if name == "token" {
			continue
		}
		query[name] = strings.Join(values, ",")
	}
	input := map[string]any{"headers": headers, "query": query, "body": nil}
	if utf8.Valid(body) {
		input["raw_body"] = string(body)
	} else {
		input["raw_body_base64"] = body
	}
	contentType := r.Header.Get("Content-Type")
	trimmed := strings.TrimSpace(string(body))
	switch {
	case trimmed != "" && json.Valid(body):
		input["body"] = json.RawMessage(body)
	case strings.Contains(contentType, "json") && trimmed != "":
		return nil, errors.New("the body says it is JSON (Content-Type) and does not parse")
	case strings.HasPrefix(contentType, "application/x-www-form-urlencoded"):
		values, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("the body says it is a form (Content-Type) and does not parse: %v", err)
		}
		form := map[string]string{}
		for name, v := range values {
			form[name] = strings.Join(v, ",")
		}
		input["form"] = form
		if payload := values.Get("payload"); json.Valid([]byte(payload)) {
			input["body"] = json.RawMessage(payload)
		}
	}
	return json.Marshal(input)
}
