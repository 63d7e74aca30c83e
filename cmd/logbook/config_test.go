package main

import (
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/domain/dispatch"
)

func TestTheApprovalTTLAndTheSitesQuotasAreReadAndChecked(t *testing.T) {
	cases := []struct {
		name, ttl, quotas string
		wantTTL           time.Duration
		wantErr           string
	}{
		{name: "the defaults", wantTTL: dispatch.DefaultApprovalTTL},
		{name: "a TTL and quotas", ttl: "2m", quotas: "ops.concurrency.user=1, *.rate=30", wantTTL: 2 * time.Minute},
		{name: "a TTL without a unit", ttl: "15", wantErr: `LOGBOOK_APPROVAL_TTL "15" is not a duration above zero`},
		{name: "a TTL of zero", ttl: "0s", wantErr: "LOGBOOK_APPROVAL_TTL"},
		{name: "a TTL of a year", ttl: "8760h", wantErr: "at most 168h"},
		{name: "a quota that is not one", quotas: "ops.speed=1", wantErr: `LOGBOOK_QUOTAS: setting 1 ("ops.speed=1"): unknown quota "speed"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LOGBOOK_APPROVAL_TTL", tc.ttl)
			t.Setenv("LOGBOOK_QUOTAS", tc.quotas)
			c, err := loadConfig()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.ApprovalTTL != tc.wantTTL {
				t.Fatalf("TTL %s, want %s", c.ApprovalTTL, tc.wantTTL)
			}
			if tc.quotas != "" && c.Quotas.String() != "*.rate=30,ops.concurrency.user=1" {
				t.Fatalf("quotas %q", c.Quotas.String())
			}
		})
	}
}
