package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
)

// The management routes of triggers and schedules send the chat builtins'
// text as the token's user, as the approvals' routes do, so chat, the CLI
// and the API decide alike (and each change is a request in the history).

// TriggerCreateBody is POST /v1/triggers. HMACSecret, when given, is
// stored as the trigger's secret once it is created (the trigger then
// requires a signature); it never enters the command's text.
type TriggerCreateBody struct {
	Name            string `json:"name"`
	Pipeline        string `json:"pipeline"`
	As              string `json:"as,omitempty"`
	Timeout         string `json:"timeout,omitempty"` // a Go duration, 30s by default
	Provider        string `json:"provider,omitempty"`
	RequireHMAC     bool   `json:"require_hmac,omitempty"`
	SignatureHeader string `json:"signature_header,omitempty"`
	Token           bool   `json:"token,omitempty"` // issue a token as well as requiring a signature
	HMACSecret      string `json:"hmac_secret,omitempty"`
}

// ScheduleAddBody is POST /v1/schedules.
type ScheduleAddBody struct {
	Spec     string `json:"spec"`
	Pipeline string `json:"pipeline"`
	Name     string `json:"name,omitempty"`
	TZ       string `json:"tz,omitempty"`
	Missed   string `json:"missed,omitempty"` // skip (default) or run-once
	Provider string `json:"provider,omitempty"`
	Room     string `json:"room,omitempty"`
}

// EmptyBody is the body of the routes that take none: {}.
type EmptyBody struct{}

// ManageAnswer answers a management route: the request that carried the
// change and its reply (a trigger's new token is in the reply, once).
type ManageAnswer struct {
	RequestID     string          `json:"request_id"`
	Reply         *dispatch.Reply `json:"reply,omitempty"`
	SecretVersion int             `json:"secret_version,omitempty"`
}

func manageRoutes() []Route {
	changed := func(what string) []Response {
		return []Response{okJSON(ManageAnswer{}, what+"; the reply says what changed."),
			{Status: 202, Description: "Recorded, not answered within the reply timeout.", JSON: ManageAnswer{}},
			badBody, errorResponse(403, "The token's user lacks the permission; the error names it."), notFound,
			{Status: 422, Description: "The change is refused (a name taken, a bad spec or pipeline); the reply says why.", JSON: ManageAnswer{}},
			tooLarge, notServing}
	}
	named := []Param{nameParam}
	return []Route{
		{Method: "POST", Path: "/v1/triggers", Permission: "logbook:manage_triggers", Summary: "Create a trigger (sends `trigger create` as the token's user).",
			Description: "Running as another user (`as`) needs logbook:admin. Without require_hmac (or hmac_secret) the trigger gets a token, shown once in the reply. hmac_secret is stored encrypted after the trigger is created and never enters the log.",
			Body:        TriggerCreateBody{}, Responses: changed("Created"),
			v1: func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.createTrigger }},
		{Method: "POST", Path: "/v1/triggers/{name}/enable", Permission: "logbook:manage_triggers", Summary: "Enable a trigger.", PathParams: named, Body: EmptyBody{},
			Responses: changed("Enabled"), v1: func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) {
				return a.switchTrigger("enable")
			}},
		{Method: "POST", Path: "/v1/triggers/{name}/disable", Permission: "logbook:manage_triggers", Summary: "Disable a trigger: its calls are refused with 423.", PathParams: named, Body: EmptyBody{},
			Responses: changed("Disabled"), v1: func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) {
				return a.switchTrigger("disable")
			}},
		{Method: "DELETE", Path: "/v1/triggers/{name}", Permission: "logbook:manage_triggers", Summary: "Delete a trigger.", PathParams: named,
			Responses: changed("Deleted"), v1: func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) {
				return a.switchTrigger("delete")
			}},
		{Method: "POST", Path: "/v1/schedules", Permission: "logbook:manage_schedules", Summary: "Add a schedule owned by the token's user (sends `schedule add`).",
			Description: "spec is `every 10m` (from 5s up), `at 2026-12-24 09:00` (in tz, else UTC) or a cron expression read in tz. Replies go to room on provider, or are only recorded.",
			Body:        ScheduleAddBody{}, Responses: changed("Added"),
			v1: func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) { return a.addSchedule }},
		{Method: "POST", Path: "/v1/schedules/{name}/pause", Permission: "logbook:manage_schedules", Summary: "Pause a schedule.", PathParams: named, Body: EmptyBody{},
			Responses: changed("Paused"), v1: func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) {
				return a.switchSchedule("pause")
			}},
		{Method: "POST", Path: "/v1/schedules/{name}/resume", Permission: "logbook:manage_schedules", Summary: "Resume a schedule from its next tick.", PathParams: named, Body: EmptyBody{},
			Responses: changed("Resumed"), v1: func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) {
				return a.switchSchedule("resume")
			}},
		{Method: "DELETE", Path: "/v1/schedules/{name}", Permission: "logbook:manage_schedules", Summary: "Delete a schedule.", PathParams: named,
			Responses: changed("Deleted"), v1: func(a *API) func(http.ResponseWriter, *http.Request, access.UserInfo) {
				return a.switchSchedule("delete")
			}},
	}
}

func (a *API) createTrigger(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	var body TriggerCreateBody
	if !a.holds(w, r, user, "logbook:manage_triggers") || !decodeBody(w, r, &body, `{"name": ..., "pipeline": ...}`) {
		return
	}
	if a.Triggers == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this server has no triggers"})
		return
	}
	words := []string{"trigger", "create", pipeline.QuoteWord(body.Name), "--pipeline=" + pipeline.QuoteWord(body.Pipeline)}
	for flag, value := range map[string]string{"as": body.As, "timeout": body.Timeout, "provider": body.Provider, "hmac-header": body.SignatureHeader} {
		if value != "" {
			words = append(words, "--"+flag+"="+pipeline.QuoteWord(value))
		}
	}
	if body.RequireHMAC || body.HMACSecret != "" {
		words = append(words, "--require-hmac")
	}
	if body.Token {
		words = append(words, "--token")
	}
	answer, ok := a.manage(w, r, user, strings.Join(words, " "))
	if !ok || body.HMACSecret == "" {
		return
	}
	version, err := a.Triggers.SetSecret(r.Context(), user.Username, body.Name, body.HMACSecret)
	if err != nil {
		// Created, refusing every call until a secret is set.
		writeJSON(w, http.StatusUnprocessableEntity, apiError{"the trigger is created, but its secret was not set (set it with POST /v1/triggers/" + body.Name + "/secret): " + err.Error()})
		return
	}
	answer.SecretVersion = version
	writeJSON(w, http.StatusOK, answer)
}

func (a *API) switchTrigger(verb string) func(http.ResponseWriter, *http.Request, access.UserInfo) {
	return func(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
		if !a.holds(w, r, user, "logbook:manage_triggers") || (r.Method == http.MethodPost && !decodeBody(w, r, &EmptyBody{}, "{}")) {
			return
		}
		if a.Triggers == nil {
			writeJSON(w, http.StatusNotImplemented, apiError{"this server has no triggers"})
			return
		}
		name := r.PathValue("name")
		t, _, err := a.Triggers.Load(r.Context(), name)
		if err != nil {
			unavailable(w, "reading the trigger", err)
			return
		}
		if !t.Exists() {
			writeJSON(w, http.StatusNotFound, apiError{"there is no trigger named " + name})
			return
		}
		if answer, ok := a.manage(w, r, user, "trigger "+verb+" "+pipeline.QuoteWord(name)); ok {
			writeJSON(w, http.StatusOK, answer)
		}
	}
}

func (a *API) addSchedule(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	var body ScheduleAddBody
	if !a.holds(w, r, user, "logbook:manage_schedules") || !decodeBody(w, r, &body, `{"spec": ..., "pipeline": ...}`) {
		return
	}
	words := []string{"schedule", "add", pipeline.QuoteWord(body.Spec), pipeline.QuoteWord(body.Pipeline)}
	for flag, value := range map[string]string{"name": body.Name, "tz": body.TZ, "missed": body.Missed, "provider": body.Provider, "room": body.Room} {
		if value != "" {
			words = append(words, "--"+flag+"="+pipeline.QuoteWord(value))
		}
	}
	if answer, ok := a.manage(w, r, user, strings.Join(words, " ")); ok {
		writeJSON(w, http.StatusOK, answer)
	}
}

func (a *API) switchSchedule(verb string) func(http.ResponseWriter, *http.Request, access.UserInfo) {
	return func(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
		if !a.holds(w, r, user, "logbook:manage_schedules") || (r.Method == http.MethodPost && !decodeBody(w, r, &EmptyBody{}, "{}")) {
			return
		}
		name := r.PathValue("name")
		exists, err := a.scheduleExists(r.Context(), name)
		if err != nil {
			unavailable(w, "reading the schedule", err)
			return
		}
		if !exists {
			writeJSON(w, http.StatusNotFound, apiError{"there is no schedule named " + name})
			return
		}
		if answer, ok := a.manage(w, r, user, "schedule "+verb+" "+pipeline.QuoteWord(name)); ok {
			writeJSON(w, http.StatusOK, answer)
		}
	}
}

func (a *API) scheduleExists(ctx context.Context, name string) (bool, error) {
	if a.Triggers == nil {
		return false, errors.New("this server has no schedules")
	}
	if access.ValidateName("schedule name", name) != nil {
		return false, nil
	}
	s, err := a.Triggers.LoadSchedule(ctx, name)
	return s.Exists(), err
}

// manage sends text as the token's user and waits for its reply. It
// writes the answer itself unless the change completed: then the caller
// writes it (after what it does next).
func (a *API) manage(w http.ResponseWriter, r *http.Request, user access.UserInfo, text string) (ManageAnswer, bool) {
	in := dispatch.RequestReceived{Adapter: "api", Room: "api", ChatUser: user.Username, Text: text, Sender: user.Username}.WithFreshMessageID()
	timeout := a.ReplyTimeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	waiting, stop := context.WithTimeout(r.Context(), timeout)
	defer stop()
	id, replies, err := a.Requests.ReceiveAndWait(r.Context(), waiting, in, user.Username)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"the change could not be recorded: " + err.Error()})
		return ManageAnswer{}, false
	}
	select {
	case reply := <-replies:
		answer := ManageAnswer{RequestID: id, Reply: &reply}
		switch {
		case reply.Problem == nil:
			return answer, true
		case reply.Problem.Status == dispatch.StatusDenied:
			writeJSON(w, http.StatusForbidden, apiError{reply.Text})
		default:
			writeJSON(w, http.StatusUnprocessableEntity, answer)
		}
	case <-waiting.Done():
		if r.Context().Err() == nil {
			writeJSON(w, http.StatusAccepted, ManageAnswer{RequestID: id})
		}
	}
	return ManageAnswer{}, false
}
