package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBenchExecSummarizeTakesNearestRankPercentiles(t *testing.T) {
	t.Parallel()
	r := benchExecResult{Name: "host"}
	for i := 10; i >= 1; i-- {
		r.samples = append(r.samples, time.Duration(i)*time.Millisecond)
	}
	benchExecSummarize(&r)
	if r.N != 10 || r.MinMS != 1 || r.P50MS != 5 || r.P90MS != 9 || r.MaxMS != 10 {
		t.Fatalf("summary = %+v, want n 10, min 1, p50 5, p90 9, max 10", r)
	}
}

func TestBenchExecPrintComparesFreshWithTheEngineAPI(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := benchExecPrint(&out, []benchExecResult{
		{Name: "engine_api", N: 3, P50MS: 200},
		{Name: "fresh", N: 3, P50MS: 210, CaptureMBPerS: 80, CaptureMemGrowthMiB: 5},
		{Name: "warm", Skipped: "no logbook-agent"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fresh p50 / engine_api p50 = 1.050", "skipped: no logbook-agent", "capture: 80 MB/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBenchExecRejectsAZeroRunCount(t *testing.T) {
	t.Parallel()
	cmd := newBenchExecCmd()
	cmd.SetArgs([]string{"--n", "0"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.Execute()
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("error = %v, want exit code 2", err)
	}
}
