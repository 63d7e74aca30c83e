package bundle_test

import (
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain/bundle"
)

// approvalV4 is minimalV4 with a rule asking for approval and its
// approvers' permission declared.
var approvalV4 = strings.NewReplacer(
	"  - ops:deploy\n", "  - ops:deploy\n  - ops:approver\n",
	"      - must have ops:deploy\n", "      - must have ops:deploy with 2 approvals from ops:approver\n",
).Replace(minimalV4)

func TestAnApprovalsSectionNamesTheApproversRoom(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, section string
		want          bundle.Approvals
	}{
		{"a room on the request's provider", "approvals:\n  room: ops-approvals\n", bundle.Approvals{Room: "ops-approvals", Line: 16}},
		{"a room written with its #", "approvals:\n  room: \"#ops-approvals\"\n", bundle.Approvals{Room: "ops-approvals", Line: 16}},
		{"a room on another provider", "approvals:\n  room: approvers\n  provider: irc\n", bundle.Approvals{Room: "approvers", Provider: "irc", Line: 16}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := mustLoad(t, []byte(approvalV4+tc.section))
			if b.Approvals != tc.want {
				t.Fatalf("Approvals = %+v, want %+v", b.Approvals, tc.want)
			}
			if len(b.Warnings()) != 0 {
				t.Fatalf("warnings %v", b.Warnings())
			}
		})
	}
	t.Run("a Gort bundle takes the section too", func(t *testing.T) {
		t.Parallel()
		gort := "gort_bundle_version: 1\nname: ops\ndescription: Ops\nversion: 1.0.0\nimage: acme/ops:1\npermissions:\n  - approver\n" +
			"approvals:\n  room: ops-approvals\ncommands:\n  deploy:\n    executable: [/bin/deploy]\n    rules:\n      - allow with approval from ops:approver\n"
		b := mustLoad(t, []byte(gort))
		if b.Approvals.Room != "ops-approvals" {
			t.Fatalf("Approvals = %+v", b.Approvals)
		}
	})
}

func TestAMalformedApprovalsSectionIsASchemaError(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, section string
		line          int
		want          string
	}{
		{"no room", "approvals:\n  provider: slack\n", 16, `approvals: missing required field "room"`},
		{"an empty room", "approvals:\n  room: \"#\"\n", 17, "approvals.room: expected the name of a room"},
		{"a room with a line break", "approvals:\n  room: \"ops\\napprovers\"\n", 17, "approvals.room: expected the name of a room"},
		{"a provider that is not a name", "approvals:\n  room: ops\n  provider: Slack Enterprise\n", 18, "approvals.provider: expected the name of a chat provider"},
		{"a misspelt field", "approvals:\n  rooms: ops\n", 17, `approvals: unknown field "rooms" (did you mean "room"?)`},
		{"a list where a mapping belongs", "approvals:\n  - ops\n", 17, "approvals: expected a mapping, found a list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := loadErrors(t, approvalV4+tc.section)
			if !hasProblem(errs, tc.line, tc.want) {
				t.Fatalf("expected line %d: ...%s..., got %v", tc.line, tc.want, errs)
			}
		})
	}
}

func TestAnApproversRoomNoRuleUsesIsAWarning(t *testing.T) {
	t.Parallel()
	b := mustLoad(t, []byte(minimalV4+"approvals:\n  room: ops-approvals\n"))
	if !hasWarning(b.Warnings(), 15, "no rule of the bundle asks for approval") {
		t.Fatalf("warnings %v", b.Warnings())
	}
}

func TestARuleMayAskApproversOnlyForItsOwnOrSitePermissions(t *testing.T) {
	t.Parallel()
	b := mustLoad(t, []byte(strings.Replace(approvalV4, "from ops:approver", "from site:approver", 1)))
	deploy, _ := b.Command("deploy")
	if a, ok := deploy.Rules()[0].Parsed.Approval(); !ok || a.Permission != "site:approver" {
		t.Fatalf("approval %+v %v", a, ok)
	}
	cases := []struct {
		name, config string
		line         int
		want         string
	}{
		{"another bundle's permission", strings.Replace(approvalV4, "from ops:approver", "from dev:approver", 1), 15,
			"the rule asks approvers for dev:approver; a bundle's rules may ask approvers for only its own permissions (ops:...) or site: ones"},
		{"an undeclared permission", strings.Replace(approvalV4, "  - ops:approver\n", "", 1), 14,
			"the rule asks approvers for ops:approver, which is not declared in the bundle's permissions"},
		{"a malformed clause", strings.Replace(approvalV4, "2 approvals", "2 approval", 1), 15,
			"the rule does not parse at column 29: more than one approval is written `with 2 approvals from ...`"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := loadErrors(t, tc.config)
			if !hasProblem(errs, tc.line, tc.want) {
				t.Fatalf("expected line %d: ...%s..., got %v", tc.line, tc.want, errs)
			}
		})
	}
}

func TestQuotasAreReadFromTheBundlesExecutionSection(t *testing.T) {
	t.Parallel()
	b := mustLoad(t, []byte(minimalV4+"execution:\n  concurrency:\n    bundle: 4\n    user: 1\n    room: 2\n  rate: 10\n  queue: 0s\n"))
	q := b.Execution.Quotas
	if *q.BundleConcurrency != 4 || *q.UserConcurrency != 1 || *q.RoomConcurrency != 2 || *q.Rate != 10 || *q.Queue != 0 {
		t.Fatalf("quotas %+v", q)
	}
	deploy, _ := b.Command("deploy")
	if got := deploy.EffectiveExecution().Quotas; got.Rate == nil || *got.Rate != 10 {
		t.Fatalf("a command's effective execution lost the bundle's quotas: %+v", got)
	}
	if none := mustLoad(t, []byte(minimalV4)).Execution.Quotas; !none.IsZero() {
		t.Fatalf("a bundle without quotas has %+v", none)
	}
}

func TestMalformedQuotasAreSchemaErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, config string
		line         int
		want         string
	}{
		{"a bare concurrency count", minimalV4 + "execution:\n  concurrency: 2\n", 16, "execution.concurrency: say whose runs it bounds"},
		{"zero runs", minimalV4 + "execution:\n  concurrency:\n    user: 0\n", 17, "execution.concurrency.user: expected the most runs of one user at once, from 1 to 1000000"},
		{"an unknown scope", minimalV4 + "execution:\n  concurrency:\n    team: 1\n", 17, `execution.concurrency: unknown field "team"`},
		{"a rate that is not a count", minimalV4 + "execution:\n  rate: 10/m\n", 16, "execution.rate: expected a whole number"},
		{"a negative queue", minimalV4 + "execution:\n  queue: -1s\n", 16, "execution.queue: expected how long a request over a quota waits, from 0s"},
		{"a queue of a day", minimalV4 + "execution:\n  queue: 24h\n", 16, "execution.queue: expected how long"},
		{"a command's own quota", minimalV4 + "    execution:\n      rate: 1\n", 16, "commands.deploy.execution.rate: quotas hold for the whole bundle"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := loadErrors(t, tc.config)
			if !hasProblem(errs, tc.line, tc.want) {
				t.Fatalf("expected line %d: ...%s..., got %v", tc.line, tc.want, errs)
			}
		})
	}
}

func TestSiteQuotasOverrideTheBundlesAndDefaultTheRest(t *testing.T) {
	t.Parallel()
	site, err := bundle.ParseQuotaOverrides(" ops.concurrency.user = 1, ops.rate=0, *.rate=30,*.queue=45s, web.queue=0s ")
	if err != nil {
		t.Fatal(err)
	}
	five, ten := int64(5), int64(10)
	declared := bundle.Quotas{UserConcurrency: &five, Rate: &ten}
	ops := site.For("ops", declared)
	if *ops.UserConcurrency != 1 || *ops.Rate != 0 || *ops.Queue != 45*time.Second || ops.BundleConcurrency != nil {
		t.Fatalf("ops: %+v", ops)
	}
	web := site.For("web", declared)
	if *web.UserConcurrency != 5 || *web.Rate != 10 || *web.Queue != 0 {
		t.Fatalf("web: the bundle's own quotas win over the site's defaults: %+v", web)
	}
	other := site.For("other", bundle.Quotas{})
	if *other.Rate != 30 || *other.Queue != 45*time.Second {
		t.Fatalf("other: %+v", other)
	}
	if got := site.String(); got != "*.rate=30,*.queue=45s,ops.concurrency.user=1,ops.rate=0,web.queue=0s" {
		t.Fatalf("String() = %q", got)
	}
	if empty, err := bundle.ParseQuotaOverrides("  "); err != nil || len(empty) != 0 {
		t.Fatalf("an empty setting: %v %v", empty, err)
	}
}

func TestMalformedSiteQuotasAreRefusedNamingTheSetting(t *testing.T) {
	t.Parallel()
	cases := []struct{ text, want string }{
		{"ops.rate=5,", `setting 2 ("") is empty`},
		{"ops=5", `setting 1 ("ops=5"): write BUNDLE.KEY=VALUE`},
		{"ops.rate", "write BUNDLE.KEY=VALUE"},
		{"ops.speed=5", `unknown quota "speed"; expected one of concurrency.bundle, concurrency.user, concurrency.room, rate, queue`},
		{"ops.rate=-1", "expected a count from 0 (no bound) to 1000000"},
		{"ops.rate=many", "expected a count from 0"},
		{"ops.queue=30", "queue is how long a request over a quota waits"},
		{"ops.queue=2h", "from 0s to 1h0m0s"},
		{"my bundle.rate=1", `"my bundle" is not a bundle name`},
		{"ops.rate=1,ops.rate=2", "ops.rate is set twice"},
	}
	for _, tc := range cases {
		_, err := bundle.ParseQuotaOverrides(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseQuotaOverrides(%q) = %v, want an error containing %q", tc.text, err, tc.want)
		}
	}
}

// FuzzParseQuotaOverrides checks that no input panics and that what parses
// writes back to text that parses to the same overrides.
func FuzzParseQuotaOverrides(f *testing.F) {
	f.Add("ops.concurrency.user=1, ops.rate=5, *.queue=0s")
	f.Add("*.concurrency.bundle=0,web.concurrency.room=3,web.queue=1m30s")
	f.Add("ops.rate=1,ops.rate=2")
	f.Add(",,=.")
	f.Fuzz(func(t *testing.T, text string) {
		o, err := bundle.ParseQuotaOverrides(text)
		if err != nil {
			if o != nil {
				t.Fatalf("overrides %v with an error", o)
			}
			return
		}
		again, err := bundle.ParseQuotaOverrides(o.String())
		if err != nil {
			t.Fatalf("String() %q does not parse: %v", o.String(), err)
		}
		if again.String() != o.String() {
			t.Fatalf("String() is not stable: %q then %q", o.String(), again.String())
		}
		for name, q := range o {
			for _, n := range []*int64{q.BundleConcurrency, q.UserConcurrency, q.RoomConcurrency, q.Rate} {
				if n != nil && (*n < 0 || *n > 1_000_000) {
					t.Fatalf("%s: a count out of range: %d", name, *n)
				}
			}
			if q.Queue != nil && (*q.Queue < 0 || *q.Queue > bundle.MaxQueue) {
				t.Fatalf("%s: a queue out of range: %s", name, *q.Queue)
			}
		}
	})
}
