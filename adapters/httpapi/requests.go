package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// Requests is what the API needs of the dispatcher.
type Requests interface {
	Receive(ctx context.Context, in dispatch.RequestReceived, actor string) (string, error)
	// ReceiveAndWait records the request as Receive does, and hands over
	// its reply once it is posted, or at once when it was posted before
	// (a retry); it stops waiting when wait ends.
	ReceiveAndWait(ctx, wait context.Context, in dispatch.RequestReceived, actor string) (string, <-chan dispatch.Reply, error)
}

// Users answers who a token belongs to and what they may do.
type Users interface {
	UserForToken(token string) (access.UserInfo, bool)
	UserByUsername(username string) (access.UserInfo, bool)
	PermissionsOf(user string) []string
}

// LiveStreams hands out subscriptions to streams: what they hold, then
// each event as it is appended (eventstore.Hub).
type LiveStreams interface {
	Subscribe(ctx context.Context, streams ...string) (*eventstore.Subscription, error)
}

// API serves /v1: requests issued as the token's user (provider "api").
type API struct {
	Requests Requests
	Users    Users
	// ReplyTimeout bounds how long ?wait=1 waits for the reply (5m).
	ReplyTimeout time.Duration
	// History, Transcripts and Events serve the history, run and
	// transcript reads; Views, when set, lets a read wait for a lagging view.
	History     History
	Transcripts Transcripts
	Events      eventstore.Store
	Views       ViewProgress
	// Live serves followed transcripts: one follower of the log for every
	// open stream (an eventstore.Hub).
	Live LiveStreams
	// Access answers POST /v1/access/explain and GET /v1/access/who; nil
	// means Users, when it answers dispatch.Facts too (the dispatcher's
	// Facts does).
	Access dispatch.Facts
	// Permissions serves the user, group, role and permission views;
	// Bundles the bundle views (nil: Access, or Users as above).
	Permissions PermissionReader
	Bundles     BundleReader
	// Approvals serves the approvals view (nil: 501).
	Approvals ApprovalsReader
	// Secrets sets secrets and rotates their key (nil: 501).
	Secrets SecretWriter
	// Search serves GET /v1/search from the search view (nil: 501).
	Search Searcher
	// Executors lists the live executors on a NATS bus (nil: 501).
	Executors ExecutorLister
	// Exports reports the export stream's destinations (nil: 501).
	Exports ExportStatusReader
	// Triggers serves trigger calls and secrets; Sources the trigger and
	// schedule lists (nil: 501).
	Triggers TriggerStore
	Sources  SourcesReader
	// Logger logs refused trigger calls (zero: nothing is logged).
	Logger zerolog.Logger

	// refusals keeps a flood of refused trigger calls, which anyone can
	// send, to a few lines: the first ten, then one every 10 seconds,
	// each with the count so far.
	refusalsOnce sync.Once
	refusals     *rate.Sometimes
	refusalCount atomic.Int64

	verifier verifier
	heads    headCache
}

// maxBodyBytes bounds a request body; the command text itself is bounded
// by the dispatcher (16 KiB), which records and answers an oversized one.
const maxBodyBytes = 64 << 10

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// authenticated resolves the bearer token to a user, or answers 401
// without saying whether the token or the user was the problem.
func (a *API) authenticated(next func(http.ResponseWriter, *http.Request, access.UserInfo)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="logbook"`)
			writeJSON(w, http.StatusUnauthorized, apiError{"an Authorization: Bearer <token> header is required"})
			return
		}
		user, ok := a.Users.UserForToken(strings.TrimSpace(token))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="logbook", error="invalid_token"`)
			writeJSON(w, http.StatusUnauthorized, apiError{"the token is not valid"})
			return
		}
		next(w, r, user)
	}
}

// decodeBody reads r's JSON body into v: at most maxBodyBytes (413 over
// it), no unknown fields and nothing after the object (400, saying what is
// wrong and showing the shape expected).
func decodeBody(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("more follows the object")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig):
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{fmt.Sprintf("the body is over the %d KiB limit", maxBodyBytes>>10)})
	case errors.Is(err, io.EOF):
		writeJSON(w, http.StatusBadRequest, apiError{"the body is empty; expected a JSON object " + shape})
	default:
		writeJSON(w, http.StatusBadRequest, apiError{"the body is not a JSON object " + shape + ": " + err.Error()})
	}
	return false
}

// requestBody is POST /v1/requests.
type requestBody struct {
	Text      string `json:"text"`
	Room      string `json:"room,omitempty"`       // default "api"
	MessageID string `json:"message_id,omitempty"` // for idempotent retries, the token user's own; default a fresh id
	As        string `json:"as,omitempty"`         // another user's name; needs logbook:admin
}

// requestResponse answers it.
type requestResponse struct {
	RequestID string          `json:"request_id"`
	Reply     *dispatch.Reply `json:"reply,omitempty"`
}

func (a *API) postRequest(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if err := onlyParams(r.URL.Query(), []string{"wait"}); err != nil {
		writeParamError(w, err)
		return
	}
	var body requestBody
	if !decodeBody(w, r, &body, `{"text": ...}`) {
		return
	}
	if strings.TrimSpace(body.Text) == "" {
		writeJSON(w, http.StatusBadRequest, apiError{`"text" is required: the command to run, such as "echo hello"`})
		return
	}
	as := user
	if body.As != "" && body.As != user.Username {
		if !slices.Contains(a.Users.PermissionsOf(user.ID), "logbook:admin") {
			writeJSON(w, http.StatusForbidden, apiError{`"as" needs the logbook:admin permission`})
			return
		}
		other, ok := a.Users.UserByUsername(body.As)
		if !ok {
			writeJSON(w, http.StatusNotFound, apiError{"no user named " + body.As})
			return
		}
		as = other
	}
	if body.Room == "" {
		body.Room = "api"
	}
	// The chat prefix is optional here; "!!" becomes "!", which the
	// dispatcher reads as "run my previous request again".
	// The message id is the token user's own (Sender): another user's
	// request with the same message id is another request.
	in := dispatch.RequestReceived{Adapter: "api", MessageID: body.MessageID, Room: body.Room, ChatUser: as.Username, Text: strings.TrimPrefix(body.Text, "!"), Sender: user.Username}
	if body.MessageID == "" {
		in = in.WithFreshMessageID()
	}
	id := in.ID()
	timeout := a.ReplyTimeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	waiting, stopWaiting := context.WithTimeout(r.Context(), timeout)
	defer stopWaiting()
	var (
		wait <-chan dispatch.Reply
		err  error
	)
	if r.URL.Query().Get("wait") != "" {
		_, wait, err = a.Requests.ReceiveAndWait(r.Context(), waiting, in, user.Username)
	} else {
		_, err = a.Requests.Receive(r.Context(), in, user.Username)
	}
	if err != nil {
		if dispatch.KindOf(err) == dispatch.KindMessageIDTaken {
			writeJSON(w, http.StatusConflict, apiError{err.Error()})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, apiError{"the request could not be recorded: " + err.Error()})
		return
	}
	if wait == nil {
		writeJSON(w, http.StatusAccepted, requestResponse{RequestID: id})
		return
	}
	select {
	case reply := <-wait:
		writeJSON(w, http.StatusOK, requestResponse{RequestID: id, Reply: &reply})
	case <-waiting.Done():
		if r.Context().Err() == nil { // the reply timeout, not the client leaving
			writeJSON(w, http.StatusAccepted, requestResponse{RequestID: id})
		}
	}
}
