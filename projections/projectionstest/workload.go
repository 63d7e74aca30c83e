// Package projectionstest makes realistic event workloads (requests, runs
// with output, access changes, bundle installs) with the real event types,
// for the projection tests and `logbook bench seed`, and dumps view tables
// for comparison.
package projectionstest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
	"github.com/logbookhq/logbook/domain/schedule"
	"github.com/logbookhq/logbook/domain/trigger"
)

// Append is one append to one stream.
type Append struct {
	Stream string
	Events []domain.NewEvent
}

// Workload generates events. It is not safe for concurrent use; give each
// producer its own (with its own seed).
type Workload struct {
	rng      *rand.Rand
	users    []string // usernames; user ids are "u-<username>"
	adapters []string
	rooms    []string
	commands []string // bundle:command
	// Unknown, when true, sprinkles events of a type no build knows, which
	// every view must skip.
	Unknown bool
	// MaxChunks bounds output chunks per run (default 4).
	MaxChunks int
	// Approvals, when true, makes some requests ask for approval
	// (answered, refused, rejected or left to expire) or wait for a quota.
	Approvals bool
	// TextOutput, when true, makes output lines of words, hosts, private
	// addresses and trace ids (what a search looks for) instead of
	// random bytes.
	TextOutput bool
}

// OutputWords are the words TextOutput lines are made of.
var OutputWords = []string{"checking", "status", "healthy", "degraded", "deploying", "rolled", "back", "pod", "node",
	"latency", "error", "warning", "timeout", "connection", "refused", "restarted", "replica", "ready", "pending",
	"volume", "mounted", "certificate", "expires", "cache", "miss", "queue", "depth", "disk", "usage", "memory"}

// textLine is one line of TextOutput: words, a host, an address in
// 10.0.0.0/16 and a trace id.
func (w *Workload) textLine() string {
	var b strings.Builder
	for range 3 + w.rng.IntN(5) {
		b.WriteString(w.pick(OutputWords))
		b.WriteByte(' ')
	}
	fmt.Fprintf(&b, "host web-%d 10.0.%d.%d trace=%016x\n", w.rng.IntN(5000), w.rng.IntN(256), w.rng.IntN(256), w.rng.Uint64())
	return b.String()
}

// NewWorkload returns a generator seeded with seed, over users users.
func NewWorkload(seed uint64, users int) *Workload {
	w := &Workload{
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		adapters:  []string{"slack", "irc", "web", "api"},
		rooms:     []string{"#ops", "#dev", "#incidents", "#deploys", "#random", "#db", "#sre", "#infra"},
		MaxChunks: 4,
	}
	for i := range max(users, 1) {
		w.users = append(w.users, fmt.Sprintf("user%03d", i))
	}
	for _, b := range []string{"ops", "k8s", "aws", "pagerduty", "github", "statuspage"} {
		for _, c := range []string{"status", "deploy", "rollback", "list", "describe", "logs"} {
			w.commands = append(w.commands, b+":"+c)
		}
	}
	return w
}

func enc(p domain.Payload, correlation string) domain.NewEvent {
	return domain.MustEncode(p, domain.Metadata{CorrelationID: correlation, Actor: "workload"})
}

func (w *Workload) pick(list []string) string { return list[w.rng.IntN(len(list))] }

func (w *Workload) chance(percent int) bool { return w.rng.IntN(100) < percent }

// UserID is the id of a workload username.
func UserID(username string) string { return "u-" + username }

// Setup creates every user with a handle on each adapter, groups and roles,
// and installs the bundles with their permissions.
func (w *Workload) Setup() []Append {
	var out []Append
	for _, b := range []string{"ops", "k8s", "aws", "pagerduty", "github", "statuspage"} {
		perms := []string{b + ":read", b + ":write", b + ":admin"}
		out = append(out, Append{Stream: bundle.Stream(b), Events: []domain.NewEvent{
			enc(bundle.BundleInstalled{Name: b, Version: "1.0.0", Config: "name: " + b + "\nversion: 1.0.0\n", Permissions: perms}, ""),
			enc(bundle.BundleEnabled{Name: b, Version: "1.0.0"}, ""),
		}})
	}
	for _, u := range w.users {
		events := []domain.NewEvent{enc(access.UserCreated{User: UserID(u), Username: u, Email: u + "@example.com"}, "")}
		for _, a := range w.adapters {
			events = append(events, enc(access.ChatHandleLinked{User: UserID(u), Provider: a, Handle: a + "-" + u}, ""))
		}
		out = append(out, Append{Stream: access.UserStream(UserID(u)), Events: events})
	}
	for _, role := range []string{"reader", "operator", "admin"} {
		events := []domain.NewEvent{enc(access.RoleCreated{Role: role}, "")}
		for _, b := range []string{"ops", "k8s", "aws"} {
			events = append(events, enc(access.PermissionGranted{Role: role, Permission: b + ":read"}, ""))
			if role != "reader" {
				events = append(events, enc(access.PermissionGranted{Role: role, Permission: b + ":write"}, ""))
			}
		}
		out = append(out, Append{Stream: access.RoleStream(role), Events: events})
	}
	for i, group := range []string{"everyone", "oncall", "admins"} {
		events := []domain.NewEvent{enc(access.GroupCreated{Group: group}, ""),
			enc(access.RoleGranted{Group: group, Role: []string{"reader", "operator", "admin"}[i]}, "")}
		for j, u := range w.users {
			if j%(i+1) == 0 {
				events = append(events, enc(access.MemberAdded{Group: group, User: UserID(u)}, ""))
			}
		}
		out = append(out, Append{Stream: access.GroupStream(group), Events: events})
	}
	return out
}

// AccessChange is one random change to the directory or a bundle.
func (w *Workload) AccessChange() Append {
	u := UserID(w.pick(w.users))
	group := w.pick([]string{"everyone", "oncall", "admins"})
	role := w.pick([]string{"reader", "operator", "admin"})
	b := w.pick([]string{"ops", "k8s", "aws", "pagerduty"})
	switch w.rng.IntN(9) {
	case 0:
		return Append{access.UserStream(u), []domain.NewEvent{enc(access.UserDisabled{User: u}, "")}}
	case 1:
		return Append{access.UserStream(u), []domain.NewEvent{enc(access.UserEnabled{User: u}, "")}}
	case 2:
		return Append{access.GroupStream(group), []domain.NewEvent{enc(access.MemberAdded{Group: group, User: u}, "")}}
	case 3:
		return Append{access.GroupStream(group), []domain.NewEvent{enc(access.MemberRemoved{Group: group, User: u}, "")}}
	case 4:
		return Append{access.RoleStream(role), []domain.NewEvent{enc(access.PermissionGranted{Role: role, Permission: b + ":" + w.pick([]string{"read", "write", "admin"})}, "")}}
	case 5:
		return Append{access.RoleStream(role), []domain.NewEvent{enc(access.PermissionRevoked{Role: role, Permission: b + ":write"}, "")}}
	case 6:
		return Append{access.GroupStream(group), []domain.NewEvent{enc(access.RoleGranted{Group: group, Role: role}, "")}}
	case 7:
		provider := w.pick(w.adapters)
		return Append{access.UserStream(u), []domain.NewEvent{
			enc(access.ChatHandleUnlinked{User: u, Provider: provider, Handle: provider + "-" + strings.TrimPrefix(u, "u-")}, ""),
			enc(access.ChatHandleLinked{User: u, Provider: provider, Handle: provider + "-" + strings.TrimPrefix(u, "u-")}, "")}}
	default:
		v := fmt.Sprintf("1.%d.0", w.rng.IntN(5))
		perms := []string{b + ":read", b + ":write"}
		if w.chance(50) {
			perms = append(perms, b+":admin", "other:stolen") // the foreign one is skipped
		}
		return Append{bundle.Stream(b), []domain.NewEvent{enc(bundle.BundleInstalled{Name: b, Version: v, Config: "name: " + b, Permissions: perms}, "")}}
	}
}

// Request is one chat request from arrival to reply, with its runs, as the
// appends the dispatcher and executor would make, in order.
func (w *Workload) Request() []Append {
	adapter, username := w.pick(w.adapters), w.pick(w.users)
	messageID := uuid.NewString()
	id := dispatch.RequestID(adapter, messageID)
	stream := dispatch.Stream(id)
	room := w.pick(w.rooms)
	stages := 1
	if w.chance(20) {
		stages = 2
	}
	commands := make([]string, stages)
	for i := range commands {
		commands[i] = w.pick(w.commands)
	}
	text := strings.Join(commands, " prod | ")
	head := []domain.NewEvent{enc(dispatch.RequestReceived{Adapter: adapter, MessageID: messageID, Room: room, ChatUser: adapter + "-" + username, Text: text}, id)}
	if w.chance(3) {
		head = append(head, enc(dispatch.IdentityUnknown{Adapter: adapter, ChatUser: adapter + "-" + username}, id))
		return []Append{{stream, head}}
	}
	head = append(head, enc(dispatch.IdentityResolved{User: UserID(username), Username: username}, id))
	if w.chance(3) {
		head = append(head, enc(dispatch.PipelineRejected{Error: "expected a command name", Column: 1}, id))
		return []Append{{stream, head}}
	}
	type stage struct {
		Command string `json:"command"`
		Bundle  string `json:"bundle"`
		Name    string `json:"name"`
	}
	parsed := make([]stage, stages)
	for i, c := range commands {
		b, n, _ := strings.Cut(c, ":")
		parsed[i] = stage{Command: c, Bundle: b, Name: n}
	}
	stagesJSON, _ := json.Marshal(parsed)
	head = append(head, enc(dispatch.PipelineParsed{Stages: stagesJSON, Redirects: json.RawMessage("[]")}, id))
	denied := w.chance(5)
	for i, c := range commands {
		head = append(head, enc(dispatch.PermissionChecked{Stage: i, Command: c, Granted: !denied, Reason: "rule"}, id))
	}
	if denied {
		head = append(head, enc(dispatch.RequestDenied{Reason: "missing " + commands[0] + " permission"}, id))
		return []Append{{stream, head}}
	}
	var out []Append
	if w.Approvals && w.chance(15) {
		var ended bool
		out, head, ended = w.approval(stream, id, username, text, head)
		if ended {
			return out
		}
	}
	if w.Approvals && w.chance(10) {
		head = append(head, enc(dispatch.QuotaWaiting{QuotaHit: dispatch.QuotaHit{Bundle: "ops", Quota: dispatch.QuotaUserConcurrency, Limit: 1, Current: 1}}, id))
		out = append(out, Append{stream, head})
		head = []domain.NewEvent{enc(dispatch.QuotaAdmitted{WaitedMS: 1200}, id)}
	}
	for i, c := range commands {
		runID := uuid.NewString()
		head = append(head, enc(dispatch.StageStarted{Stage: i, RunID: runID}, id))
		out = append(out, Append{stream, head})
		head = nil
		runEvents, ok := w.run(runID, id, i, c, username, room)
		out = append(out, Append{run.Stream(runID), runEvents})
		if !ok {
			out = append(out, Append{stream, []domain.NewEvent{enc(dispatch.RequestFailed{Reason: "stage failed", Stage: i, RunID: runID}, id)}})
			return out
		}
	}
	tail := []domain.NewEvent{enc(dispatch.RequestCompleted{Output: json.RawMessage(`[{"body":["ok"]}]`)}, id),
		enc(dispatch.ReplyPosted{Adapter: adapter, Room: room}, id)}
	if w.Unknown && w.chance(10) {
		tail = append(tail, domain.NewEvent{ID: domain.NewEventID(), Type: "ReactionAddedFromTheFuture", Data: json.RawMessage(`{"emoji":"tada"}`)})
	}
	return append(out, Append{stream, tail})
}

// approval asks for approval after the checks in head and answers: the
// requester's own approval refused, approvals counted, then approved (the
// request goes on with head), rejected or expired (ended is true). The
// answers come in appends of their own, as they do.
func (w *Workload) approval(stream, id, requester, text string, head []domain.NewEvent) (out []Append, rest []domain.NewEvent, ended bool) {
	approvers := []string{w.pick(w.users), w.pick(w.users)}
	needed := 1 + w.rng.IntN(2)
	head = append(head, enc(dispatch.ApprovalRequested{
		Requirements: []dispatch.ApprovalRequirement{{Permission: "ops:admin", Needed: needed, Stages: []int{0}}},
		Text:         text, Requester: UserID(requester), RequesterName: requester, Approvers: approvers,
		ExpiresAt: time.Now().UTC().Add(15 * time.Minute),
	}, id))
	out = append(out, Append{stream, head})
	var answers []domain.NewEvent
	if w.chance(30) {
		answers = append(answers, enc(dispatch.ApprovalRefused{Verdict: dispatch.VerdictApprove, User: UserID(requester), Username: requester, Via: uuid.NewString(), Reason: "your own"}, id))
	}
	switch w.rng.IntN(4) {
	case 0:
		answers = append(answers, enc(dispatch.ApprovalRejected{User: UserID(approvers[0]), Username: approvers[0], Reason: "not now", Via: uuid.NewString()}, id),
			enc(dispatch.RequestDenied{Reason: approvers[0] + " rejected it: not now"}, id))
		return append(out, Append{stream, answers}), nil, true
	case 1:
		answers = append(answers, enc(dispatch.ApprovalExpired{At: time.Now().UTC()}, id), enc(dispatch.RequestDenied{Reason: "it expired"}, id))
		return append(out, Append{stream, answers}), nil, true
	}
	for i := range needed {
		answers = append(answers, enc(dispatch.ApprovalGranted{User: UserID(approvers[i]), Username: approvers[i], Reason: "ok", Via: uuid.NewString(), Permissions: []string{"ops:admin"}}, id))
		out = append(out, Append{stream, answers})
		answers = nil
	}
	return out, []domain.NewEvent{enc(dispatch.RequestApproved{Approvers: approvers[:needed]}, id)}, false
}

// run makes one run's events; ok is false when it did not succeed.
func (w *Workload) run(runID, requestID string, stageIndex int, command, username, room string) ([]domain.NewEvent, bool) {
	b, name, _ := strings.Cut(command, ":")
	image := "registry.example/" + b + ":1.0.0"
	events := []domain.NewEvent{
		enc(run.RunRequested{RequestID: requestID, Stage: stageIndex, Bundle: b, Version: "1.0.0", Command: name, Image: image,
			Argv: []string{"/bin/" + name}, Args: []string{"prod"}, Mode: run.ModeFresh, Invocation: run.Invocation{Room: room, Username: username}}, requestID),
	}
	if w.chance(2) {
		return append(events, enc(run.RunLost{Reason: "executor went away"}, requestID)), false
	}
	container := fmt.Sprintf("%x", w.rng.Uint64())
	events = append(events,
		enc(run.ContainerCreated{ContainerID: container, Image: image, ImageDigest: fmt.Sprintf("sha256:%064x", w.rng.Uint64())}, requestID),
		enc(run.ContainerStarted{ContainerID: container}, requestID))
	start := time.Now().UTC()
	chunks := w.rng.IntN(w.MaxChunks + 1)
	for seq := range chunks {
		data := make([]byte, 1+w.rng.IntN(200))
		for i := range data {
			data[i] = byte(w.rng.IntN(256)) // binary, invalid UTF-8 included
		}
		if w.TextOutput {
			var text strings.Builder
			for range 1 + w.rng.IntN(3) {
				text.WriteString(w.textLine())
			}
			data = []byte(text.String())
		}
		stream := run.Stdout
		if w.chance(25) {
			stream = run.Stderr
		}
		chunk := enc(run.OutputChunk{Seq: int64(seq), Stream: stream, Bytes: data, At: start.Add(time.Duration(seq) * 3 * time.Millisecond)}, requestID)
		events = append(events, chunk)
		if w.chance(5) { // a redelivered chunk: same seq, different bytes; the first stays
			events = append(events, enc(run.OutputChunk{Seq: int64(seq), Stream: stream, Bytes: []byte("again"), At: start}, requestID))
		}
	}
	if chunks > 0 && w.chance(5) {
		events = append(events, enc(run.OutputTruncated{LimitBytes: 1024, AfterSeq: int64(chunks - 1)}, requestID))
	}
	exit := 0
	if w.chance(10) {
		exit = 1 + w.rng.IntN(3)
	}
	events = append(events, enc(run.ContainerStopped{ExitCode: exit, DurationMS: int64(5 + w.rng.IntN(500))}, requestID))
	ok := true
	switch {
	case w.chance(2):
		events = append(events, enc(run.RunTimedOut{TimeoutMS: 60000}, requestID))
		ok = false
	case w.chance(2):
		events = append(events, enc(run.RunCancelled{Reason: "cancelled by " + username}, requestID))
		ok = false
	case exit != 0:
		events = append(events, enc(run.RunFailed{Reason: fmt.Sprintf("exit status %d", exit)}, requestID))
		ok = false
	default:
		events = append(events, enc(run.RunSucceeded{}, requestID))
	}
	return append(events, enc(run.ContainerRemoved{ContainerID: container}, requestID)), ok
}

// AppendAll appends in order through the real Store.
func AppendAll(ctx context.Context, s eventstore.Store, appends []Append) error {
	for _, a := range appends {
		if _, err := s.Append(ctx, a.Stream, eventstore.Any, a.Events...); err != nil {
			return fmt.Errorf("append to %s: %w", a.Stream, err)
		}
	}
	return nil
}

// Dump reads every row of each table as text lines, sorted, for comparing
// two builds of the same views.
func Dump(ctx context.Context, db *sql.DB, tables []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, table := range tables {
		rows, err := db.QueryContext(ctx, "SELECT * FROM "+table)
		if err != nil {
			return nil, fmt.Errorf("dump %s: %w", table, err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			values := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range values {
				ptrs[i] = &values[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, err
			}
			parts := make([]string, len(values))
			for i, v := range values {
				switch v := v.(type) {
				case []byte:
					parts[i] = fmt.Sprintf("%q", v)
				case bool: // Postgres booleans; SQLite stores 0/1
					parts[i] = "0"
					if v {
						parts[i] = "1"
					}
				default:
					parts[i] = fmt.Sprint(v)
				}
			}
			lines = append(lines, strings.Join(parts, " | "))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		sort.Strings(lines)
		out[table] = lines
	}
	return out, nil
}

// SourceChange is one random change to a trigger or a schedule: created or
// added (again after a delete), switched, a secret version, a tick
// decided, skipped or abandoned, deleted.
func (w *Workload) SourceChange() Append {
	by := w.pick(w.users)
	at := time.Date(2026, 12, 6, 10, w.rng.IntN(60), 0, 0, time.UTC)
	if w.chance(50) {
		name := w.pick([]string{"deploy", "alerts", "github-push"})
		var p domain.Payload
		switch w.rng.IntN(6) {
		case 5:
			p = trigger.TokenIssued{TokenSHA256: "def", By: by}
		case 0:
			p = trigger.Created{Name: name, Pipeline: "echo hi", As: by, TimeoutMS: 30000, TokenSHA256: "abc", RequireHMAC: w.chance(50), By: by}
		case 1:
			p = trigger.Enabled{By: by}
		case 2:
			p = trigger.Disabled{By: by}
		case 3:
			p = trigger.SecretSet{Version: 1 + w.rng.IntN(5), By: by}
		default:
			p = trigger.Deleted{By: by}
		}
		return Append{trigger.Stream(name), []domain.NewEvent{enc(p, "")}}
	}
	name := w.pick([]string{"nightly", "every5", "standup"})
	var p domain.Payload
	switch w.rng.IntN(7) {
	case 0:
		p = schedule.Added{ID: uuid.NewString(), Name: name, Spec: "*/5 * * * *", TZ: "Europe/Berlin", Pipeline: "echo hi", Owner: by, Provider: "irc", Room: "ops", Missed: schedule.MissedSkip, Anchor: at, By: by}
	case 1:
		p = schedule.Paused{By: by, At: at}
	case 2:
		p = schedule.Resumed{By: by, At: at}
	case 3:
		p = schedule.TickDecided{Scheduled: at, RequestID: uuid.NewString(), MessageID: "m", Late: w.chance(30), Missed: w.rng.IntN(3)}
	case 4:
		p = schedule.TicksSkipped{First: at, Last: at.Add(10 * time.Minute), Count: 3, Reason: "missed"}
	case 5:
		p = schedule.TickAbandoned{Scheduled: at, RequestID: uuid.NewString(), Reason: "late"}
	default:
		p = schedule.Deleted{By: by}
	}
	return Append{schedule.Stream(name), []domain.NewEvent{enc(p, "")}}
}
