// Package trigger is the trigger aggregate: an HTTP endpoint,
// POST /v1/triggers/NAME, that runs a stored pipeline as a configured
// user. Its stream is `trigger-<name>`; this package holds its events and
// the pure decider that keeps them consistent (one live trigger per name,
// enable and disable only what exists, a secret's versions never reused).
// The HMAC secret itself is never here: the vault holds it, the log only
// its version. A token is kept as its SHA-256, as API tokens are.
package trigger

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/pipeline"
)

// StreamPrefix is the category of trigger streams.
const StreamPrefix = "trigger-"

// Stream names the stream of the trigger name.
func Stream(name string) string { return StreamPrefix + name }

// Provider is the request provider of a trigger's calls in the history.
const Provider = "trigger"

// DefaultTimeout is how long a call waits for the pipeline's reply before
// it answers 202 with the request id; MaxTimeout bounds what may be set.
const (
	DefaultTimeout = 30 * time.Second
	MaxTimeout     = 5 * time.Minute
)

// DefaultSignatureHeader is GitHub's: "sha256=" and the hex HMAC-SHA256 of
// the raw body.
const DefaultSignatureHeader = "X-Hub-Signature-256"

// Created records a new trigger. RequireHMAC makes every call carry a
// valid signature in SignatureHeader; TokenSHA256, when set, makes every
// call carry the token whose SHA-256 it is. One of them is always set.
type Created struct {
	Name            string `json:"name"`
	Pipeline        string `json:"pipeline"`
	As              string `json:"as"` // username the pipeline runs as
	TimeoutMS       int64  `json:"timeout_ms"`
	Provider        string `json:"provider,omitempty"` // chat provider its redirects post on
	RequireHMAC     bool   `json:"require_hmac,omitempty"`
	SignatureHeader string `json:"signature_header,omitempty"`
	TokenSHA256     string `json:"token_sha256,omitempty"`
	By              string `json:"by"`
}

// Enabled and Disabled switch a trigger on and off; a disabled trigger
// refuses calls.
type Enabled struct {
	By string `json:"by"`
}
type Disabled struct {
	By string `json:"by"`
}

// Deleted removes a trigger; its name may be created again.
type Deleted struct {
	By string `json:"by"`
}

// SecretSet records that a new version of the trigger's HMAC secret was
// stored in the vault. Never the value, nor a hash of it.
type SecretSet struct {
	Version int    `json:"version"`
	By      string `json:"by"`
}

// TokenIssued replaces the trigger's token (its SHA-256): the old one
// stops working at once.
type TokenIssued struct {
	TokenSHA256 string `json:"token_sha256"`
	By          string `json:"by"`
}

func (TokenIssued) EventType() string { return "TriggerTokenIssued" }

func (Created) EventType() string   { return "TriggerCreated" }
func (Enabled) EventType() string   { return "TriggerEnabled" }
func (Disabled) EventType() string  { return "TriggerDisabled" }
func (Deleted) EventType() string   { return "TriggerDeleted" }
func (SecretSet) EventType() string { return "TriggerSecretSet" }

func init() {
	domain.Register[Created]()
	domain.Register[Enabled]()
	domain.Register[Disabled]()
	domain.Register[Deleted]()
	domain.Register[SecretSet]()
	domain.Register[TokenIssued]()
}

// Trigger is the state of one trigger stream. The zero value is a name
// with no trigger.
type Trigger struct {
	created       Created
	exists        bool
	enabled       bool
	secretVersion int // the current secret's; 0 while none is set
	lastVersion   int // the highest ever set, so a version is never reused
}

// Evolve folds one event.
func Evolve(t Trigger, e domain.Payload) Trigger {
	switch p := e.(type) {
	case Created:
		t.created, t.exists, t.enabled, t.secretVersion = p, true, true, 0
	case Enabled:
		t.enabled = t.exists
	case Disabled:
		t.enabled = false
	case Deleted:
		t.exists, t.enabled, t.secretVersion = false, false, 0
	case SecretSet:
		t.secretVersion = p.Version
		t.lastVersion = max(t.lastVersion, p.Version)
	case TokenIssued:
		if t.exists {
			t.created.TokenSHA256 = p.TokenSHA256
		}
	}
	return t
}

// Fold evolves the zero Trigger through events.
func Fold(events []domain.Payload) Trigger {
	var t Trigger
	for _, e := range events {
		t = Evolve(t, e)
	}
	return t
}

// Exists says the trigger was created and not deleted.
func (t Trigger) Exists() bool { return t.exists }

// Enabled says calls run.
func (t Trigger) Enabled() bool { return t.exists && t.enabled }

// Config is the trigger as created.
func (t Trigger) Config() Created { return t.created }

// Timeout is how long a call waits for the reply.
func (t Trigger) Timeout() time.Duration {
	if t.created.TimeoutMS <= 0 {
		return DefaultTimeout
	}
	return time.Duration(t.created.TimeoutMS) * time.Millisecond
}

// SecretVersion is the version of the HMAC secret in force (0: none set,
// and a trigger that requires a signature refuses every call).
func (t Trigger) SecretVersion() int { return t.secretVersion }

// Commands.
type (
	// Create makes a trigger.
	Create struct {
		Created
		// MayRunAsOthers says the actor holds logbook:admin: only then
		// may the trigger run as someone other than the actor.
		MayRunAsOthers bool
		Actor          string
	}
	Enable    struct{ By string }
	Disable   struct{ By string }
	Delete    struct{ By string }
	SetSecret struct{ By string }
	// IssueToken gives the trigger a new token, whose hash it carries.
	IssueToken struct{ TokenSHA256, By string }
)

// Errors a decision returns; each message names the trigger.
var (
	ErrNotFound = errors.New("no such trigger")
	ErrExists   = errors.New("a trigger of that name exists")
	ErrInvalid  = errors.New("invalid trigger")
)

// Decide checks a command against the trigger's state and returns what to
// record.
func Decide(t Trigger, cmd any) ([]domain.Payload, error) {
	switch c := cmd.(type) {
	case Create:
		if t.exists {
			return nil, fmt.Errorf("%w: trigger %s exists; delete it first, or pick another name", ErrExists, c.Name)
		}
		if err := Validate(c.Created); err != nil {
			return nil, err
		}
		if c.As != c.Actor && !c.MayRunAsOthers {
			return nil, fmt.Errorf("%w: trigger %s would run as %s, and running as another user needs logbook:admin", ErrInvalid, c.Name, c.As)
		}
		created := c.Created
		if created.TimeoutMS == 0 {
			created.TimeoutMS = DefaultTimeout.Milliseconds()
		}
		if created.RequireHMAC && created.SignatureHeader == "" {
			created.SignatureHeader = DefaultSignatureHeader
		}
		return []domain.Payload{created}, nil
	case Enable:
		if !t.exists {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, t.created.Name)
		}
		if t.enabled {
			return nil, nil
		}
		return []domain.Payload{Enabled{By: c.By}}, nil
	case Disable:
		if !t.exists {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, t.created.Name)
		}
		if !t.enabled {
			return nil, nil
		}
		return []domain.Payload{Disabled{By: c.By}}, nil
	case Delete:
		if !t.exists {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, t.created.Name)
		}
		return []domain.Payload{Deleted{By: c.By}}, nil
	case SetSecret:
		if !t.exists {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, t.created.Name)
		}
		return []domain.Payload{SecretSet{Version: t.lastVersion + 1, By: c.By}}, nil
	case IssueToken:
		if !t.exists {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, t.created.Name)
		}
		if c.TokenSHA256 == "" {
			return nil, fmt.Errorf("%w: a token needs its hash", ErrInvalid)
		}
		return []domain.Payload{TokenIssued{TokenSHA256: c.TokenSHA256, By: c.By}}, nil
	}
	return nil, fmt.Errorf("%w: unknown command %T", ErrInvalid, cmd)
}

// Validate checks what a trigger is created with, naming what is wrong.
func Validate(c Created) error {
	if err := access.ValidateName("trigger name", c.Name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if strings.TrimSpace(c.Pipeline) == "" {
		return fmt.Errorf("%w: trigger %s has no pipeline; give one with --pipeline 'echo hi'", ErrInvalid, c.Name)
	}
	parsed, err := pipeline.Parse(c.Pipeline)
	if err != nil {
		return fmt.Errorf("%w: trigger %s: the pipeline does not parse: %v", ErrInvalid, c.Name, err)
	}
	for _, rd := range parsed.Redirects {
		if rd.PostsToChat() && c.Provider == "" {
			return fmt.Errorf("%w: trigger %s posts to %s (column %d); name the chat provider it is on with --provider", ErrInvalid, c.Name, rd.Target, rd.Column)
		}
	}
	if err := access.ValidateUsername(c.As); err != nil {
		return fmt.Errorf("%w: trigger %s: --as: %v", ErrInvalid, c.Name, err)
	}
	if c.TimeoutMS < 0 || time.Duration(c.TimeoutMS)*time.Millisecond > MaxTimeout {
		return fmt.Errorf("%w: trigger %s: the timeout %s is outside 0 to %s", ErrInvalid, c.Name, time.Duration(c.TimeoutMS)*time.Millisecond, MaxTimeout)
	}
	if c.Provider != "" {
		if err := access.ValidateProvider(c.Provider); err != nil {
			return fmt.Errorf("%w: trigger %s: --provider: %v", ErrInvalid, c.Name, err)
		}
	}
	if c.SignatureHeader != "" && !validHeaderName(c.SignatureHeader) {
		return fmt.Errorf("%w: trigger %s: %q is not an HTTP header name", ErrInvalid, c.Name, c.SignatureHeader)
	}
	if !c.RequireHMAC && c.TokenSHA256 == "" {
		return fmt.Errorf("%w: trigger %s would take calls from anyone; it needs a token or an HMAC signature", ErrInvalid, c.Name)
	}
	return nil
}

func validHeaderName(h string) bool {
	if h == "" || len(h) > 128 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// TokenMatches compares a presented token with the kept hash in constant
// time.
func (t Trigger) TokenMatches(token string) bool {
	want := t.created.TokenSHA256
	got := access.HashToken(token)
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// SignatureHeader is the header the signature comes in.
func (t Trigger) SignatureHeader() string {
	return http.CanonicalHeaderKey(t.created.SignatureHeader)
}
