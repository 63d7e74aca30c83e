package dispatch

import (
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain/bundle"
)

// withQuotas gives the ops bundle an execution section of quotas.
func withQuotas(t testing.TB, section string) func(*StaticFacts) {
	return func(f *StaticFacts) {
		f.Installed[0] = InstalledBundle{Bundle: loadBundle(t, opsBundle+"execution:\n"+section), Enabled: true}
		f.Clock = t0
	}
}

func TestARequestWithinItsQuotasStarts(t *testing.T) {
	t.Parallel()
	s := given(t).withFacts(withQuotas(t, "  concurrency: {user: 2, room: 2, bundle: 5}\n  rate: 3\n")).
		withFacts(func(f *StaticFacts) {
			f.Usages = map[string]Usage{"ops": {Running: 4, UserRunning: 1, RoomRunning: 1, Requests: 2}}
		})
	d := s.then(received("U1", "ops:status"))
	wantTypes(t, d, "IdentityResolved PipelineParsed PermissionChecked StageStarted")
}

func TestARequestOverAQuotaWaitsThenStartsWhenRoomFrees(t *testing.T) {
	t.Parallel()
	s := given(t).withFacts(withQuotas(t, "  concurrency: {user: 1}\n")).
		withFacts(func(f *StaticFacts) { f.Usages = map[string]Usage{"ops": {Running: 1, UserRunning: 1}} })
	trigger := received("U1", "ops:status")
	d := s.then(trigger)
	wantTypes(t, d, "IdentityResolved PipelineParsed PermissionChecked QuotaWaiting")
	w := find[QuotaWaiting](t, d.Request)
	if w.Quota != QuotaUserConcurrency || w.Limit != 1 || w.Current != 1 || w.Bundle != "ops" || !w.Since.Equal(t0) || !w.Until.Equal(t0.Add(DefaultQuotaQueue)) {
		t.Fatalf("waiting %+v", w)
	}
	if len(d.Runs) != 0 || d.Reply != nil {
		t.Fatalf("decision %+v", d)
	}
	s.record(trigger, d)
	if st := Fold(s.history).Status(); st != StatusQueued {
		t.Fatalf("status %s", st)
	}

	if d := s.then(QuotaCheck{At: t0.Add(10 * time.Second)}); !d.IsZero() {
		t.Fatalf("a check while still over the quota decided %s", typesOf(d.Request))
	}
	if d := s.then(RequestTimedOut{At: t0.Add(time.Hour)}); !d.IsZero() {
		t.Fatalf("the request deadline ended a queued request: %s", typesOf(d.Request))
	}

	s.withFacts(func(f *StaticFacts) { f.Usages = map[string]Usage{"ops": {}}; f.Clock = t0.Add(12 * time.Second) })
	check := QuotaCheck{At: t0.Add(12 * time.Second)}
	d = s.then(check)
	wantTypes(t, d, "QuotaAdmitted StageStarted")
	if got := find[QuotaAdmitted](t, d.Request).WaitedMS; got != 12000 {
		t.Fatalf("waited %d ms", got)
	}
	if len(d.Runs) != 1 {
		t.Fatalf("runs %+v", d.Runs)
	}
}

func TestARequestStillOverAQuotaAtItsBoundIsDeniedNamingTheQuota(t *testing.T) {
	t.Parallel()
	s := given(t).withFacts(withQuotas(t, "  concurrency: {room: 2}\n  queue: 1m\n")).
		withFacts(func(f *StaticFacts) { f.Usages = map[string]Usage{"ops": {RoomRunning: 2}} })
	trigger := received("U1", "ops:status")
	d := s.then(trigger)
	if w := find[QuotaWaiting](t, d.Request); !w.Until.Equal(t0.Add(time.Minute)) || w.Quota != QuotaRoomConcurrency {
		t.Fatalf("waiting %+v", w)
	}
	s.record(trigger, d)
	check := QuotaCheck{At: t0.Add(time.Minute)}
	d = s.then(check)
	wantTypes(t, d, "QuotaExceeded RequestDenied")
	wantReply(t, d, "Denied: over a quota: ops allows 2 runs per room at once (2 running from this room), and it did not free up in 1m0s")
	if e := find[QuotaExceeded](t, d.Request); e.WaitedMS != 60000 || e.Quota != QuotaRoomConcurrency {
		t.Fatalf("exceeded %+v", e)
	}
}

func TestAQuotaWithoutAQueueRefusesAtOnce(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		section string
		usage   Usage
		want    string
	}{
		{"the user's runs", "  concurrency: {user: 1}\n  queue: 0s\n", Usage{UserRunning: 1}, "ops allows 1 run per user at once (you have 1 running)"},
		{"the bundle's runs", "  concurrency: {bundle: 3}\n  queue: 0s\n", Usage{Running: 3}, "ops allows 3 runs of its commands at once (3 running)"},
		{"the rate", "  rate: 5\n  queue: 0s\n", Usage{Requests: 5}, "ops allows 5 requests per user a minute (you started 5 in the last minute)"},
		{"the user's quota is named before the room's", "  concurrency: {user: 1, room: 1}\n  queue: 0s\n", Usage{UserRunning: 1, RoomRunning: 1}, "ops allows 1 run per user at once"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := given(t).withFacts(withQuotas(t, tc.section)).withFacts(func(f *StaticFacts) { f.Usages = map[string]Usage{"ops": tc.usage} })
			d := s.then(received("U1", "ops:status"))
			wantTypes(t, d, "IdentityResolved PipelineParsed PermissionChecked QuotaExceeded RequestDenied")
			wantReply(t, d, "Denied: over a quota: "+tc.want)
		})
	}
}

func TestTheSiteOverridesABundlesQuotas(t *testing.T) {
	t.Parallel()
	lifted, err := bundle.ParseQuotaOverrides("ops.concurrency.user=0")
	if err != nil {
		t.Fatal(err)
	}
	s := given(t).withFacts(withQuotas(t, "  concurrency: {user: 1}\n  queue: 0s\n")).withFacts(func(f *StaticFacts) {
		f.Usages = map[string]Usage{"ops": {UserRunning: 5}}
		f.Config.Quotas = lifted
	})
	wantTypes(t, s.then(received("U1", "ops:status")), "IdentityResolved PipelineParsed PermissionChecked StageStarted")

	everywhere, err := bundle.ParseQuotaOverrides("*.rate=1,*.queue=0s")
	if err != nil {
		t.Fatal(err)
	}
	s = given(t).withFacts(func(f *StaticFacts) {
		f.Usages = map[string]Usage{"web": {Requests: 1}}
		f.Config.Quotas = everywhere
	})
	d := s.then(received("U1", "web:status"))
	wantTypes(t, d, "IdentityResolved PipelineParsed PermissionChecked QuotaExceeded RequestDenied")
	wantReply(t, d, "web allows 1 request per user a minute")
}

func TestBuiltinsHaveNoQuotas(t *testing.T) {
	t.Parallel()
	everywhere, err := bundle.ParseQuotaOverrides("*.rate=1,*.queue=0s")
	if err != nil {
		t.Fatal(err)
	}
	s := given(t).withFacts(func(f *StaticFacts) {
		f.Usages = map[string]Usage{"logbook": {Requests: 100, UserRunning: 100}}
		f.Config.Quotas = everywhere
	})
	wantTypes(t, s.then(received("U1", "echo hi")), "IdentityResolved PipelineParsed PermissionChecked StageStarted")
}

func TestAnApprovedRequestIsAdmittedAgainstItsQuotas(t *testing.T) {
	t.Parallel()
	quoted := strings.Replace(relBundle, "commands:\n", "execution:\n  concurrency: {bundle: 1}\ncommands:\n", 1)
	s, _ := awaiting(t, "rel:prod web")
	s.withFacts(func(f *StaticFacts) {
		f.Installed[len(f.Installed)-1] = InstalledBundle{Bundle: loadBundle(t, quoted), Enabled: true}
		f.Usages = map[string]Usage{"rel": {Running: 1}}
	})
	d := s.then(answerBy("bob", VerdictApprove, t0.Add(time.Minute), "a1"))
	wantTypes(t, d, "ApprovalGranted RequestApproved QuotaWaiting")
	if len(d.Runs) != 0 {
		t.Fatalf("runs %+v", d.Runs)
	}
}
