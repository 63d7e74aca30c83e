package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/pipeline"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/schedule"
	"github.com/logbookhq/logbook/domain/trigger"
	"github.com/logbookhq/logbook/projections"
)

const (
	triggerUsage  = "trigger create NAME --pipeline 'PIPELINE' [--as USER] [--timeout 30s] [--provider irc] [--require-hmac] [--hmac-header H] [--token] | token NAME | enable NAME | disable NAME | delete NAME | list"
	scheduleUsage = "schedule add \"SPEC\" 'PIPELINE' [--name N] [--tz Europe/Berlin] [--missed skip|run-once] [--provider P] [--room R] [> #room] | pause NAME | resume NAME | delete NAME | list"
)

var (
	triggerValueOptions  = []string{"pipeline", "as", "timeout", "provider", "hmac-header"}
	scheduleValueOptions = []string{"name", "tz", "missed", "provider", "room"}
)

// sourceSpecs are the trigger and schedule builtins.
func (a *admin) sourceSpecs() []dispatch.Builtin {
	var out []dispatch.Builtin
	for _, s := range []struct {
		name, description, usage, rule string
		options                        []string
		run                            func(*adminCall) (run.Result, error)
	}{
		{"trigger", "Runs a pipeline on an HTTP call.", triggerUsage,
			"when command is logbook:trigger must have logbook:manage_triggers", triggerValueOptions, a.trigger},
		{"schedule", "Runs a pipeline on a clock, as you.", scheduleUsage,
			"when command is logbook:schedule must have logbook:manage_schedules", scheduleValueOptions, a.schedule},
	} {
		b, err := dispatch.NewBuiltin(s.name, s.description, s.usage, []string{s.rule}, a.wrap(s.run))
		if err != nil {
			panic(err) // the rules above are fixed text
		}
		b.Changes, b.ValueOptions = true, s.options
		out = append(out, b)
	}
	return out
}

func (a *admin) trigger(c *adminCall) (run.Result, error) {
	sub, args, err := subcommand(c, triggerUsage, "create", "token", "enable", "disable", "delete", "list")
	if err != nil {
		return run.Result{}, err
	}
	if sub == "list" {
		return a.triggerList(c)
	}
	if err := needArgs(args, 1, triggerUsage); err != nil {
		return run.Result{}, err
	}
	name := args[0]
	history, version, err := a.load(c.ctx, trigger.Stream(name))
	if err != nil {
		return run.Result{}, err
	}
	state := trigger.Fold(history)
	by := c.actor.Username
	var cmd any
	var done string
	var token string
	switch sub {
	case "create":
		if cmd, token, err = a.triggerCreate(c, name); err != nil {
			return run.Result{}, err
		}
	case "token":
		var hash string
		token, hash = access.NewToken()
		cmd = trigger.IssueToken{TokenSHA256: hash, By: by}
	case "enable":
		cmd, done = trigger.Enable{By: by}, "Trigger "+name+" is enabled."
	case "disable":
		cmd, done = trigger.Disable{By: by}, "Trigger "+name+" is disabled: calls are refused until it is enabled."
	case "delete":
		cmd, done = trigger.Delete{By: by}, "Trigger "+name+" is deleted."
	}
	if !state.Exists() && sub != "create" {
		return run.Result{}, fmt.Errorf("there is no trigger named %s", name)
	}
	events, err := trigger.Decide(state, cmd)
	if err != nil {
		return run.Result{}, err
	}
	if len(events) > 0 {
		a.record(c, trigger.Stream(name), version, events...)
	}
	if sub == "token" {
		return dispatch.BodyResult("Trigger " + name + "'s new token, shown this once (the old one no longer works): " + c.facts.KeepSecret(c.Invocation.PipelineID, token)), nil
	}
	if sub != "create" {
		if len(events) == 0 {
			done = "Nothing to do: " + strings.TrimSuffix(strings.ToLower(done[:1])+done[1:], ".") + " already."
		}
		return dispatch.BodyResult(done), nil
	}
	created := events[0].(trigger.Created)
	lines := []string{fmt.Sprintf("Trigger %s runs `%s` as %s: POST /v1/triggers/%s (answers within %s, else 202).", name, created.Pipeline, created.As, name, time.Duration(created.TimeoutMS)*time.Millisecond)}
	if token != "" {
		lines = append(lines, "Its token, shown this once (Logbook keeps only its hash): "+c.facts.KeepSecret(c.Invocation.PipelineID, token),
			"Send it as Authorization: Bearer TOKEN or X-Logbook-Token.")
	}
	if created.RequireHMAC {
		lines = append(lines, fmt.Sprintf("Calls must be signed in %s; set the secret with `logbook trigger secret %s` (standard input). Until then every call is refused.", created.SignatureHeader, name))
	}
	return dispatch.BodyResult(lines...), nil
}

func (a *admin) triggerCreate(c *adminCall, name string) (any, string, error) {
	if _, given := c.Options["hmac-secret"]; given {
		return nil, "", errors.New("a secret never goes in a command, which is recorded as typed; create the trigger with --require-hmac and set the secret with `logbook trigger secret NAME` from standard input")
	}
	pipe, _, err := stringOption(c, "pipeline")
	if err != nil {
		return nil, "", err
	}
	as, given, err := stringOption(c, "as")
	if err != nil {
		return nil, "", err
	}
	if !given {
		as = c.actor.Username
	}
	if u, ok := c.facts.UserByUsername(as); !ok || u.Disabled {
		return nil, "", fmt.Errorf("--as: there is no enabled user named %s", as)
	}
	timeout := trigger.DefaultTimeout
	if raw, given, err := stringOption(c, "timeout"); err != nil {
		return nil, "", err
	} else if given {
		if timeout, err = time.ParseDuration(raw); err != nil || timeout <= 0 {
			return nil, "", fmt.Errorf("--timeout %q is not a duration such as 30s", raw)
		}
	}
	provider, _, err := stringOption(c, "provider")
	if err != nil {
		return nil, "", err
	}
	header, _, err := stringOption(c, "hmac-header")
	if err != nil {
		return nil, "", err
	}
	requireHMAC, err := flagOption(c, "require-hmac")
	if err != nil {
		return nil, "", err
	}
	wantToken, err := flagOption(c, "token")
	if err != nil {
		return nil, "", err
	}
	created := trigger.Created{Name: name, Pipeline: pipe, As: as, TimeoutMS: timeout.Milliseconds(), Provider: provider,
		RequireHMAC: requireHMAC || header != "", SignatureHeader: header, By: c.actor.Username}
	var token string
	if wantToken || !created.RequireHMAC {
		token, created.TokenSHA256 = access.NewToken()
	}
	admin := slices.Contains(c.facts.PermissionsOf(c.actor.ID), "logbook:admin")
	return trigger.Create{Created: created, Actor: c.actor.Username, MayRunAsOthers: admin}, token, nil
}

func (a *admin) triggerList(c *adminCall) (run.Result, error) {
	if a.cfg.Sources == nil {
		return run.Result{}, errors.New("this server lists triggers only with its views")
	}
	rows, err := a.cfg.Sources.Triggers(c.ctx)
	if err != nil {
		return run.Result{}, fmt.Errorf("reading the triggers: %v", err)
	}
	if len(rows) == 0 {
		return dispatch.BodyResult("There are no triggers; create one with `trigger create NAME --pipeline 'echo hi'`."), nil
	}
	lines := make([]string, 0, len(rows))
	for _, r := range rows {
		state := "enabled"
		if !r.Enabled {
			state = "disabled"
		}
		auth := []string{}
		if r.HasToken {
			auth = append(auth, "token")
		}
		if r.RequireHMAC {
			auth = append(auth, fmt.Sprintf("HMAC in %s (secret v%d)", r.SignatureHeader, r.SecretVersion))
		}
		lines = append(lines, fmt.Sprintf("%s (%s): `%s` as %s, %s", r.Name, state, r.Pipeline, r.RunAs, strings.Join(auth, " and ")))
	}
	return dispatch.BodyResult(lines...), nil
}

func (a *admin) schedule(c *adminCall) (run.Result, error) {
	sub, args, err := subcommand(c, scheduleUsage, "add", "pause", "resume", "delete", "list")
	if err != nil {
		return run.Result{}, err
	}
	switch sub {
	case "list":
		return a.scheduleList(c)
	case "add":
		return a.scheduleAdd(c, args)
	}
	if err := needArgs(args, 1, scheduleUsage); err != nil {
		return run.Result{}, err
	}
	name := args[0]
	history, version, err := a.load(c.ctx, schedule.Stream(name))
	if err != nil {
		return run.Result{}, err
	}
	state := schedule.Fold(history)
	if !state.Exists() {
		return run.Result{}, fmt.Errorf("there is no schedule named %s", name)
	}
	by, now := c.actor.Username, c.At
	var cmd any
	var done string
	switch sub {
	case "pause":
		cmd, done = schedule.Pause{By: by, At: now}, "Schedule "+name+" is paused."
	case "resume":
		cmd, done = schedule.Resume{By: by, At: now}, "Schedule "+name+" runs again from its next tick."
	case "delete":
		cmd, done = schedule.Delete{By: by}, "Schedule "+name+" is deleted."
	}
	events, err := schedule.Decide(state, cmd)
	if err != nil {
		return run.Result{}, err
	}
	if len(events) == 0 {
		return dispatch.BodyResult("Nothing to do: schedule " + name + " is " + sub + "d already."), nil
	}
	a.record(c, schedule.Stream(name), version, events...)
	return dispatch.BodyResult(done), nil
}

// scheduleAdd adds a schedule owned by the actor. Its replies go where
// the request came from (a chat room), or where --provider and --room, or
// the request's own redirect (> #room), say.
func (a *admin) scheduleAdd(c *adminCall, args []string) (run.Result, error) {
	if len(args) != 2 {
		return run.Result{}, fmt.Errorf("usage: %s", scheduleUsage)
	}
	spec, pipe := args[0], args[1]
	opt := map[string]string{}
	for _, name := range scheduleValueOptions {
		v, _, err := stringOption(c, name)
		if err != nil {
			return run.Result{}, err
		}
		opt[name] = v
	}
	received, redirects, err := a.requestOf(c)
	if err != nil {
		return run.Result{}, err
	}
	provider, room := opt["provider"], opt["room"]
	if !dispatch.AuthenticatedAdapters[received.Adapter] && provider == "" {
		provider = received.Adapter
		if room == "" {
			room = received.Room
		}
	}
	if len(redirects) > 0 {
		// The request's redirect is the schedule's: its replies go there.
		targets := make([]string, len(redirects))
		for i, rd := range redirects {
			targets[i] = rd.Target
		}
		pipe += " > " + strings.Join(targets, " ")
	}
	if room != "" && provider == "" {
		return run.Result{}, errors.New("--room needs --provider (the chat provider the room is on)")
	}
	name := opt["name"]
	if name == "" {
		name = "s-" + strings.ReplaceAll(uuid.NewSHA1(uuid.NameSpaceURL, []byte(c.RunID)).String(), "-", "")[:8]
	}
	history, version, err := a.load(c.ctx, schedule.Stream(name))
	if err != nil {
		return run.Result{}, err
	}
	addedEvent := schedule.Added{ID: uuid.NewSHA1(uuid.NameSpaceURL, []byte("schedule/"+c.RunID)).String(), Name: name, Spec: spec, TZ: opt["tz"],
		Pipeline: pipe, Owner: c.actor.Username, Provider: provider, Room: room, Missed: opt["missed"], Anchor: c.At, By: c.actor.Username}
	events, err := schedule.Decide(schedule.Fold(history), schedule.Add{Added: addedEvent})
	if err != nil {
		return run.Result{}, err
	}
	a.record(c, schedule.Stream(name), version, events...)
	added := events[0].(schedule.Added)
	parsed, _ := schedule.ParseSpec(added.Spec, added.TZ)
	where := "recorded only (no room)"
	if added.Provider != "" {
		where = "posted on " + added.Provider
		if added.Room != "" {
			where += " to " + added.Room
		}
	}
	lines := []string{fmt.Sprintf("Schedule %s runs `%s` as %s, %s; replies are %s; missed ticks: %s.", name, added.Pipeline, added.Owner, parsed.Describe(), where, added.Missed)}
	if next, ok := parsed.Next(added.Anchor, added.Anchor); ok {
		lines = append(lines, "Next tick: "+next.Format(time.RFC3339)+".")
	}
	return dispatch.BodyResult(lines...), nil
}

// requestOf reads the request this builtin runs for: who sent it from
// where, and its redirects.
func (a *admin) requestOf(c *adminCall) (dispatch.RequestReceived, []pipeline.Redirect, error) {
	history, _, err := a.load(c.ctx, dispatch.Stream(c.Invocation.PipelineID))
	if err != nil {
		return dispatch.RequestReceived{}, nil, err
	}
	req := dispatch.Fold(history)
	return req.Received(), req.Redirects(), nil
}

func (a *admin) scheduleList(c *adminCall) (run.Result, error) {
	if a.cfg.Sources == nil {
		return run.Result{}, errors.New("this server lists schedules only with its views")
	}
	rows, err := a.cfg.Sources.Schedules(c.ctx, "")
	if err != nil {
		return run.Result{}, fmt.Errorf("reading the schedules: %v", err)
	}
	if len(rows) == 0 {
		return dispatch.BodyResult("There are no schedules; add one with `schedule add \"every 1h\" 'echo hi'`."), nil
	}
	lines := make([]string, 0, len(rows))
	for _, r := range rows {
		state := "active"
		if r.Paused {
			state = "paused"
		}
		line := fmt.Sprintf("%s (%s): `%s` as %s, %s", r.Name, state, r.Pipeline, r.Owner, r.Spec)
		if r.TZ != "" {
			line += " (" + r.TZ + ")"
		}
		if r.LastOutcome != "" {
			line += "; last tick " + r.LastOutcome
		}
		lines = append(lines, line)
	}
	return dispatch.BodyResult(lines...), nil
}

// SourcesReader lists triggers and schedules (projections.SourcesReader).
type SourcesReader interface {
	Triggers(ctx context.Context) ([]projections.TriggerRow, error)
	Schedules(ctx context.Context, owner string) ([]projections.ScheduleRow, error)
}
