package main

import (
	"strings"
	"testing"
	"time"

	"github.com/logbookhq/logbook/adapters/docker"
)

func TestTheWarmPoolSettingsAreReadAndChecked(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		want    docker.WarmConfig
		wantErr []string
	}{
		{name: "unset: WarmConfig's defaults", env: nil, want: docker.WarmConfig{}},
		{name: "every setting", env: map[string]string{"LOGBOOK_WARM_POOL_SIZE": "16", "LOGBOOK_WARM_PREWARM": "4", "LOGBOOK_WARM_MAX_RUNS": "100", "LOGBOOK_WARM_IDLE_EXPIRY": "90s"},
			want: docker.WarmConfig{PoolSize: 16, Prewarm: 4, MaxInvocations: 100, IdleExpiry: 90 * time.Second}},
		{name: "not numbers, out of range", env: map[string]string{"LOGBOOK_WARM_POOL_SIZE": "lots", "LOGBOOK_WARM_PREWARM": "0", "LOGBOOK_WARM_MAX_RUNS": "-1"},
			wantErr: []string{`LOGBOOK_WARM_POOL_SIZE "lots" is not a number of containers from 1 to 256`, `LOGBOOK_WARM_PREWARM "0"`, `LOGBOOK_WARM_MAX_RUNS "-1" is not a number of runs`}},
		{name: "an idle expiry that is not a duration", env: map[string]string{"LOGBOOK_WARM_IDLE_EXPIRY": "5"},
			wantErr: []string{`LOGBOOK_WARM_IDLE_EXPIRY "5" is not a duration of 1s or more`}},
		{name: "more prewarmed than the pool holds", env: map[string]string{"LOGBOOK_WARM_POOL_SIZE": "2", "LOGBOOK_WARM_PREWARM": "3"},
			wantErr: []string{"LOGBOOK_WARM_PREWARM (3) is more than LOGBOOK_WARM_POOL_SIZE (2)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := warmSettings(func(key string) string { return tc.env[key] })
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error for %v", tc.env)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}
